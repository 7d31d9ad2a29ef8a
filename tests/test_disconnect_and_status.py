"""Status of 0/1/2 connections, disconnect with and without revoke failures, isolation."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, OAuthToken

from .support import payloads as p
from .support.connections import BASE, GOOGLE, OUTLOOK, Case, connect
from .support.sandbox import SANDBOX, sandbox_connect, sandbox_insert_google


def statuses(client: FlaskClient, headers: dict[str, str]) -> list[dict[str, object]]:
    response = client.get(f"{BASE}/status", headers=headers)
    assert response.status_code == 200
    return response.json  # type: ignore[return-value]


def test_status_without_connections_lists_both_providers_disconnected(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    assert statuses(client, auth) == [
        {
            "provider": name,
            "connected": False,
            "calendarId": None,
            "accountEmail": None,
            "lastSyncAt": None,
            "lastSyncStatus": None,
            "lastSyncError": None,
            "pushActive": False,
            "pushExpiresAt": None,
        }
        for name in ("GOOGLE", "OUTLOOK")
    ]


@pytest.mark.parametrize("cases", [[GOOGLE], [OUTLOOK], [GOOGLE, OUTLOOK], [OUTLOOK, GOOGLE]])
def test_status_with_one_or_two_connections(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, cases: list[Case]
) -> None:
    for case in cases:
        assert connect(client, auth, http, case).status_code == 200
    result = statuses(client, auth)
    assert [entry["provider"] for entry in result] == ["GOOGLE", "OUTLOOK"]
    connected = {case.name for case in cases}
    for entry in result:
        assert entry["connected"] is (entry["provider"] in connected)
        assert set(entry) == {
            "provider",
            "connected",
            "calendarId",
            "accountEmail",
            "lastSyncAt",
            "lastSyncStatus",
            "lastSyncError",
            "pushActive",
            "pushExpiresAt",
        }
        if entry["connected"]:
            assert entry["lastSyncStatus"] == "PENDING"
            assert entry["calendarId"]


def test_google_disconnect_revokes_and_forgets_tokens(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask
) -> None:
    assert connect(client, auth, http, GOOGLE).status_code == 200
    revoke = http.post(p.GOOGLE_REVOKE_URL, status=200, json={})

    response = client.delete(f"{BASE}/google/disconnect", headers=auth)

    assert response.status_code == 204
    assert response.data == b""
    assert parse_qs(revoke.calls[0].request.body)["token"] == ["1//refresh-1"]
    assert statuses(client, auth)[0]["connected"] is False
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OAuthToken)) == 0
        assert db.session.scalar(select(func.count()).select_from(CalendarConnection)) == 0


@pytest.mark.parametrize("failure", ["400", "500", "network"])
def test_google_revoke_failure_is_logged_not_fatal(
    client: FlaskClient,
    auth: dict[str, str],
    http: responses.RequestsMock,
    app: Flask,
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    assert connect(client, auth, http, GOOGLE).status_code == 200
    if failure == "network":
        http.post(p.GOOGLE_REVOKE_URL, body=requests.ConnectionError("connection reset"))
    else:
        http.post(p.GOOGLE_REVOKE_URL, status=int(failure), json={"error": "invalid_token"})

    response = client.delete(f"{BASE}/GOOGLE/disconnect", headers=auth)

    assert response.status_code == 204
    assert any("revoking the GOOGLE token failed" in r.getMessage() for r in caplog.records)
    assert all("1//refresh-1" not in r.getMessage() for r in caplog.records)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OAuthToken)) == 0


def test_outlook_disconnect_has_no_revoke_call(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask
) -> None:
    assert connect(client, auth, http, OUTLOOK).status_code == 200
    calls_before = len(http.calls)
    response = client.delete(f"{BASE}/Outlook/disconnect", headers=auth)
    assert response.status_code == 204
    assert len(http.calls) == calls_before
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OAuthToken)) == 0


@pytest.mark.parametrize("provider", ["GOOGLE", "outlook"])
def test_disconnect_when_not_connected_is_204(
    client: FlaskClient, auth: dict[str, str], provider: str
) -> None:
    assert client.delete(f"{BASE}/{provider}/disconnect", headers=auth).status_code == 204


@pytest.mark.parametrize("provider", ["yahoo", "GOOGLEX", "%20"])
def test_disconnect_unknown_provider_is_a_400_listing_allowed_values(
    client: FlaskClient, auth: dict[str, str], provider: str
) -> None:
    response = client.delete(f"{BASE}/{provider}/disconnect", headers=auth)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert "GOOGLE, OUTLOOK" in response.json["detail"]
    assert response.json["allowedValues"] == ["GOOGLE", "OUTLOOK"]


def test_users_never_see_or_change_each_others_connections(
    client: FlaskClient,
    auth: dict[str, str],
    token_for: Callable[[str], dict[str, str]],
    http: responses.RequestsMock,
    app: Flask,
) -> None:
    other = token_for("user-2")
    assert connect(client, auth, http, GOOGLE).status_code == 200

    assert all(entry["connected"] is False for entry in statuses(client, other))
    assert client.delete(f"{BASE}/google/disconnect", headers=other).status_code == 204
    assert statuses(client, auth)[0]["connected"] is True
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OAuthToken)) == 1


def test_numeric_sub_is_the_same_user_as_its_string(
    client: FlaskClient,
    token_for: Callable[[str], dict[str, str]],
    http: responses.RequestsMock,
    app: Flask,
) -> None:
    import time

    import jwt as pyjwt

    claims = {"sub": 42, "exp": int(time.time()) + 300}
    numeric = pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    assert connect(client, {"Authorization": f"Bearer {numeric}"}, http, GOOGLE).status_code == 200
    assert statuses(client, token_for("42"))[0]["connected"] is True


def test_disconnect_keeps_crm_events_and_reconnect_duplicates_nothing(
    sandboxed_app: Flask, token_for: Callable[[str], dict[str, str]]
) -> None:
    """Copies of the provider's events go with the connection; the CRM's own stay."""
    client = sandboxed_app.test_client()
    headers = token_for("ada")
    account = sandbox_connect(client, headers, "google")["accountEmail"]
    sandbox_insert_google(account, "Made in Google")
    made = client.post(
        "/api/v1/crm/calendar/events",
        json={
            "title": "Made in CRM",
            "start": f"{p.day(2)}T10:00:00Z",
            "end": f"{p.day(2)}T11:00:00Z",
        },
        headers=headers,
    )
    assert made.status_code == 201
    assert client.post(f"{BASE}/google/sync", headers=headers).json["success"]

    def crm() -> dict[str, dict[str, str]]:
        items = client.get("/api/v1/crm/calendar/events", headers=headers).json
        return {item["title"]: item["sources"] for item in items}

    assert set(crm()) == {"Made in CRM", "Made in Google"}
    assert client.delete(f"{BASE}/google/disconnect", headers=headers).status_code == 204
    assert crm() == {"Made in CRM": {}}

    sandbox_connect(client, headers, "google")
    result = client.post(f"{BASE}/google/sync", headers=headers).json
    assert result["success"] and result["eventsCreated"] == 1
    assert set(crm()) == {"Made in CRM", "Made in Google"}
    in_google = requests.get(f"{SANDBOX}/sandbox/google/{account}/events", timeout=5).json()
    titles = sorted(e["summary"] for e in in_google["items"] if e["status"] != "cancelled")
    assert titles == ["Made in CRM", "Made in Google"]
