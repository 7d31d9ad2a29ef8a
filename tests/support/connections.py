"""Connecting through mocked provider OAuth: one case per provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import responses
from flask.testing import FlaskClient

from . import payloads as p

BASE = "/api/v1/crm/calendar/connections"


@dataclass(frozen=True)
class Case:
    name: str  # GOOGLE / OUTLOOK
    slug: str
    authorize_host: str
    authorize_path: str
    token_url: str
    scopes: set[str]
    calendar_id: str
    email: str

    def mock_account(self, http: responses.RequestsMock, status: int = 200) -> None:
        if self.name == "GOOGLE":
            http.get(p.GOOGLE_PRIMARY_URL, json=p.google_primary(), status=status)
        else:
            http.get(f"{p.GRAPH}/me/calendar", json=p.outlook_calendar(), status=status)
            http.get(f"{p.GRAPH}/me", json=p.outlook_me(), status=status)

    def token(self, n: int = 1, refresh: bool = True) -> dict[str, Any]:
        if self.name == "GOOGLE":
            return p.google_token(f"ya29.access-{n}", f"1//refresh-{n}" if refresh else None)
        return p.outlook_token(f"eyJ0eXAi.access-{n}", f"M.R3_BAY.refresh-{n}")


GOOGLE = Case(
    "GOOGLE",
    "google",
    "accounts.google.com",
    "/o/oauth2/v2/auth",
    p.GOOGLE_TOKEN_URL,
    {
        "https://www.googleapis.com/auth/calendar.events",
        "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
    },
    p.GOOGLE_EMAIL,
    p.GOOGLE_EMAIL,
)
OUTLOOK = Case(
    "OUTLOOK",
    "outlook",
    "login.microsoftonline.com",
    "/common/oauth2/v2.0/authorize",
    p.OUTLOOK_TOKEN_URL,
    {"offline_access", "Calendars.ReadWrite", "User.Read"},
    p.OUTLOOK_CALENDAR_ID,
    p.OUTLOOK_EMAIL,
)


@pytest.fixture(params=[GOOGLE, OUTLOOK], ids=["google", "outlook"])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


def authorize(client: FlaskClient, auth: dict[str, str], case: Case) -> dict[str, Any]:
    response = client.get(f"{BASE}/{case.slug}/authorize", headers=auth)
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[return-value]


def connect(
    client: FlaskClient,
    auth: dict[str, str],
    http: responses.RequestsMock,
    case: Case,
    n: int = 1,
    refresh: bool = True,
) -> Any:
    state = authorize(client, auth, case)["state"]
    http.post(case.token_url, json=case.token(n, refresh))
    case.mock_account(http)
    return client.get(f"{BASE}/{case.slug}/callback?code=code-{n}&state={state}", headers=auth)
