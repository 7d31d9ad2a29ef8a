"""Outlook sync: token refresh and rotation, `invalid_grant`, retries and refused requests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from urllib3 import HTTPResponse

from calendar_connections.config import get_settings
from calendar_connections.crypto import get_cipher
from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, OAuthToken, utcnow
from calendar_connections.providers.session import retry_policy
from calendar_connections.token_store import load_token

from .support import payloads as p
from .support.connections import OUTLOOK, connect
from .support.outlook import DELTA, SYNC, counts, delta_link, serve, status, sync, with_window

ACCESS_DENIED = p.graph_error(
    "ErrorAccessDenied", "Access is denied. Check credentials and try again."
)
EXPIRED = p.graph_error(
    "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
)


@pytest.fixture(autouse=True)
def linked(client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock) -> None:
    """An Outlook connection, not synced yet."""
    assert connect(client, auth, http, OUTLOOK).status_code == 200


def expire_soon(app: Flask) -> None:
    """The stored access token expires within Authlib's leeway."""
    with app.app_context():
        token = db.session.execute(select(OAuthToken)).scalar_one()
        token.expires_at = utcnow() + timedelta(seconds=30)
        db.session.commit()


def stored_token(app: Flask) -> tuple[dict[str, Any], OAuthToken]:
    with app.app_context():
        connection = db.session.execute(select(CalendarConnection)).scalar_one()
        token = load_token(connection, get_cipher())
        assert token is not None and connection.token is not None
        db.session.expunge(connection.token)
        return token, connection.token


def test_refresh_before_expiry_and_on_401_stores_rotated_refresh_tokens(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask
) -> None:
    """Each refresh stores Microsoft's new refresh token (encrypted) and the next one uses it."""
    expire_soon(app)
    first = http.post(
        p.OUTLOOK_TOKEN_URL, json=p.outlook_token("eyJ0eXAi.access-2", "M.R3_BAY.refresh-2")
    )
    listing = serve(http, None, [], delta="D1")

    assert counts(sync(client, auth)) == (0, 0, 0, 0)

    sent = parse_qs(first.calls[0].request.body)
    assert sent["grant_type"] == ["refresh_token"]
    assert sent["refresh_token"] == ["M.R3_BAY.refresh-1"]
    assert sent["client_id"] == ["outlook-client-id"]
    assert "offline_access" in sent["scope"][0].split()
    assert listing[0].calls[0].request.headers["Authorization"] == "Bearer eyJ0eXAi.access-2"
    token, row = stored_token(app)
    assert (token["access_token"], token["refresh_token"]) == (
        "eyJ0eXAi.access-2",
        "M.R3_BAY.refresh-2",
    )
    assert token["expires_at"] > (utcnow() + timedelta(minutes=50)).timestamp()
    assert "refresh-2" not in (row.refresh_token_encrypted or "")
    assert "access-2" not in row.access_token_encrypted

    # Graph refuses the access token: one refresh (with the rotated token), one retry.
    refused = http.get(delta_link("D1"), status=401, json=EXPIRED)
    listing = serve(http, "D1", [], delta="D2")
    second = http.post(
        p.OUTLOOK_TOKEN_URL, json=p.outlook_token("eyJ0eXAi.access-3", "M.R3_BAY.refresh-3")
    )

    assert counts(sync(client, auth)) == (0, 0, 0, 0)

    assert len(refused.calls) == 1 and len(second.calls) == 1
    assert parse_qs(second.calls[0].request.body)["refresh_token"] == ["M.R3_BAY.refresh-2"]
    assert listing[0].calls[0].request.headers["Authorization"] == "Bearer eyJ0eXAi.access-3"
    token, _ = stored_token(app)
    assert (token["access_token"], token["refresh_token"]) == (
        "eyJ0eXAi.access-3",
        "M.R3_BAY.refresh-3",
    )


@pytest.mark.parametrize("when", ["before-expiry", "on-401"])
def test_invalid_grant_disconnects_and_asks_to_reconnect(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask, when: str
) -> None:
    """AADSTS70008 on refresh: `success: false`, `connected: false`, FAILED, reconnect."""
    if when == "before-expiry":
        expire_soon(app)
    else:
        http.get(DELTA, status=401, json=EXPIRED, match=[with_window])
    refresh = http.post(p.OUTLOOK_TOKEN_URL, status=400, json=p.MICROSOFT_INVALID_GRANT)

    result = sync(client, auth)

    assert len(refresh.calls) == 1
    assert result["success"] is False
    assert "reconnect" in result["error"]
    state = status(client, auth)
    assert state["connected"] is False
    assert state["lastSyncStatus"] == "FAILED"
    assert state["lastSyncError"] == result["error"]
    assert state["lastSyncAt"] is None
    response = client.post(SYNC, headers=auth)
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize(
    ("code", "headers"),
    [(429, {"Retry-After": "2"}), (503, {"Retry-After": "1"}), (500, {})],
    ids=["429-retry-after", "503", "500"],
)
def test_throttling_and_server_errors_are_retried(
    make_app: Callable[..., Flask],
    auth: dict[str, str],
    http: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    headers: dict[str, str],
) -> None:
    """A 429 or 5xx is retried and the sync then succeeds."""
    app = make_app(SYNC_RETRY_BACKOFF=0)
    client = app.test_client()
    busy = p.graph_error("ApplicationThrottled" if code == 429 else "ServiceNotAvailable", "Busy.")
    failed = http.get(DELTA, status=code, json=busy, headers=headers, match=[with_window])
    listing = serve(http, None, [p.graph_event("AAMkAD-a=")], delta="D1")

    assert counts(sync(client, auth)) == (1, 0, 0, 0)

    assert len(failed.calls) == 1 and len(listing[0].calls) == 1
    assert status(client, auth)["lastSyncStatus"] == "SUCCESS"
    # `responses` does not sleep between retries: check that the policy waits Retry-After.
    slept: list[float] = []
    monkeypatch.setattr("urllib3.util.retry.time.sleep", slept.append)
    retry = retry_policy(get_settings(app)).build()
    retry.sleep(HTTPResponse(status=code, headers=headers))
    assert slept == ([float(headers["Retry-After"])] if headers else [])


def test_retries_are_bounded(
    make_app: Callable[..., Flask], auth: dict[str, str], http: responses.RequestsMock
) -> None:
    """A provider that keeps failing fails the sync after the configured attempts."""
    client = make_app(SYNC_RETRY_BACKOFF=0, SYNC_RETRY_ATTEMPTS=2).test_client()
    down = http.get(DELTA, status=503, json=p.graph_error("ServiceNotAvailable", "Busy."))

    result = sync(client, auth)

    assert len(down.calls) == 3
    assert result["success"] is False and "503" in result["error"]
    state = status(client, auth)
    assert (state["lastSyncStatus"], state["connected"]) == ("FAILED", True)


def test_forbidden_fails_the_sync_with_a_clear_error(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock
) -> None:
    """A 403 is not retried: the sync fails and `lastSyncError` says why."""
    denied = http.get(DELTA, status=403, json=ACCESS_DENIED)

    result = sync(client, auth)

    assert len(denied.calls) == 1
    assert result["success"] is False
    assert "403" in result["error"] and "Access is denied" in result["error"]
    state = status(client, auth)
    assert state["lastSyncStatus"] == "FAILED"
    assert state["lastSyncError"] == result["error"]
    assert state["connected"] is True
