"""The sandbox's Microsoft side driven directly: identity platform, Graph events."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient

from .sandbox_direct import pkce_pair

REDIRECT = "http://localhost:3000/oauth/outlook/callback"
AUTHORITY = "/microsoft/common/oauth2/v2.0"
GRAPH = "/graph/v1.0"
SCOPE = "offline_access Calendars.ReadWrite User.Read"
WINDOW = {"startDateTime": "2026-12-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z"}
CRM_PROP = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name crmEventId"
UTC = 'outlook.timezone="UTC"'


def authorize(client: FlaskClient, challenge: str, **extra: str) -> dict[str, list[str]]:
    params = {
        "client_id": "crm-client",
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "response_mode": "query",
        "scope": SCOPE,
        "state": "state-9",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    answer = client.get(f"{AUTHORITY}/authorize", query_string=params)
    assert answer.status_code == 302
    return parse_qs(urlsplit(answer.headers["Location"]).query)


def exchange(client: FlaskClient, code: str, verifier: str) -> Any:
    return client.post(
        f"{AUTHORITY}/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "crm-client",
            "client_secret": "secret",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "scope": SCOPE,
        },
    )


def refresh(client: FlaskClient, token: str) -> Any:
    return client.post(
        f"{AUTHORITY}/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "crm-client",
            "refresh_token": token,
            "scope": SCOPE,
        },
    )


def connect(client: FlaskClient, email: str = "carol@outlook.test") -> dict[str, str]:
    verifier, challenge = pkce_pair()
    code = authorize(client, challenge, login_hint=email)["code"][0]
    tokens: dict[str, Any] = exchange(client, code, verifier).json
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def event(day: int, hour: int = 10, zone: str = "W. Europe Standard Time", **extra: Any) -> Any:
    return {
        "subject": f"Visit {day}",
        "body": {"contentType": "text", "content": "Agenda"},
        "location": {"displayName": "Office"},
        "start": {"dateTime": f"2026-12-{day:02d}T{hour:02d}:00:00", "timeZone": zone},
        "end": {"dateTime": f"2026-12-{day:02d}T{hour + 1:02d}:00:00", "timeZone": zone},
        **extra,
    }


def weekly(**extra: Any) -> Any:
    recurrence = {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
        "range": {"type": "numbered", "startDate": "2026-12-07", "numberOfOccurrences": 4},
    }
    return event(7, recurrence=recurrence, **extra)


def delta_round(
    client: FlaskClient, headers: dict[str, str], url: str, page_size: int = 10
) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks to the deltaLink: (items, deltaLink, pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    prefer = {"Prefer": f"odata.maxpagesize={page_size}, {UTC}"}
    while True:
        page = client.get(url, headers={**headers, **prefer})
        assert page.status_code == 200, page.json
        pages += 1
        items += page.json["value"]
        if "@odata.deltaLink" in page.json:
            return items, page.json["@odata.deltaLink"], pages
        url = page.json["@odata.nextLink"]


def first_delta(client: FlaskClient, headers: dict[str, str], **kw: Any) -> Any:
    query = "&".join(f"{k}={v}" for k, v in WINDOW.items())
    return delta_round(client, headers, f"{GRAPH}/me/calendarView/delta?{query}", **kw)
