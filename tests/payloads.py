"""Canned provider payloads, shaped like the providers' real answers."""

from __future__ import annotations

from typing import Any

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GOOGLE_REVOKE_URL = "https://oauth2.googleapis.com/revoke"
GOOGLE_API = "https://www.googleapis.com/calendar/v3"
GOOGLE_PRIMARY_URL = f"{GOOGLE_API}/users/me/calendarList/primary"
OUTLOOK_TOKEN_URL = "https://login.microsoftonline.com/common/oauth2/v2.0/token"
GRAPH = "https://graph.microsoft.com/v1.0"

GOOGLE_EMAIL = "ada@example.com"
OUTLOOK_CALENDAR_ID = "AAMkAGI2TGuLAAA="
OUTLOOK_EMAIL = "grace@contoso.example"


def google_token(
    access: str = "ya29.access-1", refresh: str | None = "1//refresh-1"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": access,
        "expires_in": 3599,
        "scope": "https://www.googleapis.com/auth/calendar.events "
        "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
        "token_type": "Bearer",
    }
    if refresh:
        body["refresh_token"] = refresh
    return body


def google_primary(email: str = GOOGLE_EMAIL) -> dict[str, Any]:
    return {
        "kind": "calendar#calendarListEntry",
        "etag": '"1700000000000000"',
        "id": email,
        "summary": email,
        "timeZone": "Europe/Berlin",
        "accessRole": "owner",
        "primary": True,
    }


def outlook_token(
    access: str = "eyJ0eXAi.access-1", refresh: str = "M.R3_BAY.refresh-1"
) -> dict[str, Any]:
    return {
        "token_type": "Bearer",
        "scope": "https://graph.microsoft.com/Calendars.ReadWrite "
        "https://graph.microsoft.com/User.Read",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": access,
        "refresh_token": refresh,
    }


def outlook_calendar(calendar_id: str = OUTLOOK_CALENDAR_ID) -> dict[str, Any]:
    return {
        "@odata.context": f"{GRAPH}/$metadata#users('me')/calendar/$entity",
        "id": calendar_id,
        "name": "Calendar",
        "color": "auto",
        "canEdit": True,
        "owner": {"name": "Grace Hopper", "address": OUTLOOK_EMAIL},
    }


def outlook_me(email: str = OUTLOOK_EMAIL) -> dict[str, Any]:
    return {
        "@odata.context": f"{GRAPH}/$metadata#users/$entity",
        "id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd",
        "displayName": "Grace Hopper",
        "mail": email,
        "userPrincipalName": email,
    }


def oauth_error(error: str, description: str) -> dict[str, Any]:
    return {"error": error, "error_description": description}


MICROSOFT_INVALID_GRANT = {
    "error": "invalid_grant",
    "error_description": "AADSTS70008: The provided authorization code or refresh token has "
    "expired due to inactivity. Send a new interactive authorization request for this user "
    "and resource.",
    "error_codes": [70008],
    "timestamp": "2026-11-24 10:00:00Z",
    "trace_id": "0000aaaa-11bb-cccc-dd22-eeeeee333333",
    "correlation_id": "aaaa0000-bb11-2222-33cc-444444dddddd",
}
