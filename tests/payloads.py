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


GOOGLE_EVENTS_URL = f"{GOOGLE_API}/calendars/ada%40example.com/events"


def google_event(
    event_id: str,
    summary: str = "Meeting",
    start: str = "2026-12-07T10:00:00+01:00",
    end: str = "2026-12-07T11:00:00+01:00",
    *,
    zone: str = "Europe/Berlin",
    updated: str = "2026-11-20T08:00:00.000Z",
    etag: str | None = None,
    status: str = "confirmed",
    all_day: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A Google Calendar event resource as events.list returns it."""
    when: tuple[dict[str, str], dict[str, str]]
    if all_day:
        when = ({"date": start}, {"date": end})
    else:
        when = ({"dateTime": start, "timeZone": zone}, {"dateTime": end, "timeZone": zone})
    body: dict[str, Any] = {
        "kind": "calendar#event",
        "etag": etag or f'"{abs(hash((event_id, summary, start, updated))) % 10**16}"',
        "id": event_id,
        "status": status,
        "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
        "created": "2026-11-01T08:00:00.000Z",
        "updated": updated,
        "summary": summary,
        "creator": {"email": GOOGLE_EMAIL, "self": True},
        "organizer": {"email": GOOGLE_EMAIL, "self": True},
        "start": when[0],
        "end": when[1],
        "iCalUID": f"{event_id}@google.com",
        "sequence": 0,
        "reminders": {"useDefault": True},
        "eventType": "default",
    }
    body.update(extra)
    return body


def google_cancelled(event_id: str, **extra: Any) -> dict[str, Any]:
    """A deleted event as an incremental events.list returns it."""
    return {
        "kind": "calendar#event",
        "etag": '"3181161784712000"',
        "id": event_id,
        "status": "cancelled",
        **extra,
    }


def google_list(
    items: list[dict[str, Any]], *, next_page: str | None = None, sync_token: str | None = None
) -> dict[str, Any]:
    """An events.list page: nextSyncToken only on the last one."""
    body: dict[str, Any] = {
        "kind": "calendar#events",
        "etag": '"p33c9lb0tq7bf80g"',
        "summary": GOOGLE_EMAIL,
        "updated": "2026-11-24T09:00:00.000Z",
        "timeZone": "Europe/Berlin",
        "accessRole": "owner",
        "defaultReminders": [{"method": "popup", "minutes": 10}],
        "items": items,
    }
    if next_page:
        body["nextPageToken"] = next_page
    else:
        body["nextSyncToken"] = sync_token or "CPDAlvWDx70CEPDAlvWDx70CGAU="
    return body


GRAPH_CALENDAR_URL = f"{GRAPH}/me/calendars/{OUTLOOK_CALENDAR_ID.replace('=', '%3D')}"


def graph_event(
    event_id: str,
    subject: str = "Meeting",
    start: str = "2026-12-07T09:00:00.0000000",
    end: str = "2026-12-07T10:00:00.0000000",
    *,
    original_zone: str = "W. Europe Standard Time",
    modified: str = "2026-11-20T08:00:00.0000000Z",
    change_key: str | None = None,
    kind: str = "singleInstance",
    all_day: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A Graph event as a calendarView delta returns it with `outlook.timezone="UTC"`."""
    body: dict[str, Any] = {
        "@odata.etag": f'W/"{change_key or event_id}"',
        "id": event_id,
        "createdDateTime": "2026-11-01T08:00:00.0000000Z",
        "lastModifiedDateTime": modified,
        "changeKey": change_key or f"ck-{abs(hash((event_id, subject, start, modified))) % 10**8}",
        "categories": [],
        "originalStartTimeZone": original_zone,
        "originalEndTimeZone": original_zone,
        "iCalUId": f"040000008200E00074C5B7101A82E008{event_id}",
        "reminderMinutesBeforeStart": 15,
        "isReminderOn": True,
        "subject": subject,
        "bodyPreview": "",
        "importance": "normal",
        "sensitivity": "normal",
        "isAllDay": all_day,
        "isCancelled": False,
        "isOrganizer": True,
        "showAs": "busy",
        "type": kind,
        "seriesMasterId": None,
        "body": {"contentType": "text", "content": ""},
        "start": {"dateTime": start, "timeZone": "UTC"},
        "end": {"dateTime": end, "timeZone": "UTC"},
        "location": {"displayName": "", "locationType": "default"},
        "recurrence": None,
        "organizer": {"emailAddress": {"name": "Grace Hopper", "address": OUTLOOK_EMAIL}},
    }
    body.update(extra)
    return body


def graph_removed(event_id: str) -> dict[str, Any]:
    """A delta entry for an event gone from the view."""
    return {
        "@odata.type": "#microsoft.graph.event",
        "id": event_id,
        "@removed": {"reason": "deleted"},
    }


def graph_page(
    items: list[dict[str, Any]], *, next_link: str | None = None, delta_link: str | None = None
) -> dict[str, Any]:
    """A calendarView delta page: deltaLink only on the last one."""
    body: dict[str, Any] = {
        "@odata.context": f"{GRAPH}/$metadata#Collection(event)",
        "value": items,
    }
    if next_link:
        body["@odata.nextLink"] = next_link
    else:
        body["@odata.deltaLink"] = (
            delta_link or f"{GRAPH_CALENDAR_URL}/calendarView/delta?$deltatoken=D1"
        )
    return body
