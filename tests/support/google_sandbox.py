"""The sandbox's Google side driven directly: OAuth with PKCE, events."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient

from .sandbox_direct import pkce_pair

REDIRECT = "http://localhost:3000/oauth/google/callback"
EVENTS = "/google/calendar/v3/calendars/primary/events"
SCOPE = "https://www.googleapis.com/auth/calendar.events"


def authorize(client: FlaskClient, challenge: str, **extra: str) -> dict[str, list[str]]:
    params = {
        "client_id": "crm-client",
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": SCOPE,
        "state": "state-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "access_type": "offline",
        "prompt": "consent",
        **extra,
    }
    answer = client.get("/google/o/oauth2/v2/auth", query_string=params)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


def exchange(client: FlaskClient, code: str, verifier: str) -> Any:
    return client.post(
        "/google/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": "crm-client",
            "client_secret": "secret",
        },
    )


def connect(client: FlaskClient, email: str = "alice@gmail.test") -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    query = authorize(client, challenge, login_hint=email)
    answer = exchange(client, query["code"][0], verifier)
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json
    return body


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def timed(day: int, hour: int, **extra: Any) -> dict[str, Any]:
    return {
        "summary": f"Meeting {day}/{hour}",
        "start": {"dateTime": f"2026-12-{day:02d}T{hour:02d}:00:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": f"2026-12-{day:02d}T{hour + 1:02d}:00:00", "timeZone": "Europe/Berlin"},
        **extra,
    }


def list_all(client: FlaskClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    pages = []
    token = None
    while True:
        query = {**params, **({"pageToken": token} if token else {})}
        page = client.get(EVENTS, headers=headers, query_string=query).json
        pages.append(page)
        token = page.get("nextPageToken")
        if not token:
            return pages
