"""Connecting Google and Outlook: authorize URL, callback, state checks, provider errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from calendar_connections.crypto import get_cipher
from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, OAuthState, utcnow
from calendar_connections.token_store import load_token

from .support import payloads as p
from .support.connections import BASE, GOOGLE, OUTLOOK, Case, authorize, connect


def test_authorize_url_has_pkce_scopes_and_offline_access(
    client: FlaskClient, auth: dict[str, str], case: Case, app: Flask
) -> None:
    body = authorize(client, auth, case)
    url = urlsplit(body["authorizationUrl"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert (url.scheme, url.netloc, url.path) == ("https", case.authorize_host, case.authorize_path)
    assert query["response_type"] == "code"
    assert query["client_id"] == app.config[f"{case.name}_CLIENT_ID"]
    assert query["redirect_uri"] == app.config[f"{case.name}_REDIRECT_URI"]
    assert query["state"] == body["state"] and len(body["state"]) >= 32
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43  # base64url SHA-256, no padding
    assert set(query["scope"].split()) == case.scopes
    if case.name == "GOOGLE":
        assert query["access_type"] == "offline"
        assert query["prompt"] == "consent"
    else:
        assert "offline_access" in query["scope"].split()
        assert query["response_mode"] == "query"


def test_state_is_stored_server_side_hashed(
    client: FlaskClient, auth: dict[str, str], case: Case, app: Flask
) -> None:
    body = authorize(client, auth, case)
    assert "Set-Cookie" not in client.get(f"{BASE}/{case.slug}/authorize", headers=auth).headers
    with app.app_context():
        states = db.session.execute(select(OAuthState)).scalars().all()
        assert {s.user_id for s in states} == {"user-1"}
        assert all(s.provider == case.name for s in states)
        assert body["state"] not in {s.state_hash for s in states}
        assert all(s.expires_at - s.created_at == timedelta(minutes=10) for s in states)


def test_full_connect_exchanges_code_with_verifier_and_stores_tokens(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, case: Case, app: Flask
) -> None:
    body = authorize(client, auth, case)
    challenge = parse_qs(urlsplit(body["authorizationUrl"]).query)["code_challenge"][0]
    token_call = http.post(case.token_url, json=case.token())
    case.mock_account(http)

    response = client.get(
        f"{BASE}/{case.slug}/callback",
        query_string={"code": "the-code", "state": body["state"], "scope": "ignored"},
        headers=auth,
    )

    assert response.status_code == 200, response.json
    assert response.json == {
        "provider": case.name,
        "connected": True,
        "calendarId": case.calendar_id,
        "accountEmail": case.email,
        "lastSyncAt": None,
        "lastSyncStatus": "PENDING",
        "lastSyncError": None,
        "pushActive": False,
        "pushExpiresAt": None,
    }
    sent = parse_qs(token_call.calls[0].request.body)
    assert sent["grant_type"] == ["authorization_code"]
    assert sent["code"] == ["the-code"]
    assert sent["redirect_uri"] == [app.config[f"{case.name}_REDIRECT_URI"]]
    assert sent["client_id"] == [app.config[f"{case.name}_CLIENT_ID"]]
    assert create_s256_code_challenge(sent["code_verifier"][0]) == challenge
    with app.app_context():
        connection = db.session.execute(select(CalendarConnection)).scalar_one()
        token = load_token(connection, get_cipher())
        assert token is not None
        assert token["access_token"] == case.token()["access_token"]
        assert token["refresh_token"] == case.token()["refresh_token"]


@pytest.mark.parametrize("bad", ["unknown", "expired", "reused", "other-user", "other-provider"])
def test_bad_state_is_a_400_problem(
    client: FlaskClient,
    auth: dict[str, str],
    token_for: Callable[[str], dict[str, str]],
    http: responses.RequestsMock,
    case: Case,
    app: Flask,
    bad: str,
) -> None:
    other = OUTLOOK if case is GOOGLE else GOOGLE
    headers = auth
    slug = case.slug
    if bad == "unknown":
        state = "never-issued-state-value"
    elif bad == "expired":
        state = authorize(client, auth, case)["state"]
        with app.app_context():
            db.session.execute(
                update(OAuthState).values(expires_at=utcnow() - timedelta(seconds=1))
            )
            db.session.commit()
    elif bad == "reused":
        assert connect(client, auth, http, case).status_code == 200
        state = authorize(client, auth, case)["state"]
        http.post(case.token_url, json=case.token(2))
        case.mock_account(http)
        assert (
            client.get(f"{BASE}/{slug}/callback?code=c&state={state}", headers=auth).status_code
            == 200
        )
    elif bad == "other-user":
        state = authorize(client, auth, case)["state"]
        headers = token_for("user-2")
    else:
        state = authorize(client, auth, other)["state"]

    token_calls = len(http.calls)
    response = client.get(f"{BASE}/{slug}/callback?code=c&state={state}", headers=headers)

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    problem = response.json
    assert problem["type"].endswith("invalid-oauth-state")
    expected = {
        "unknown": "Unknown authorization state",
        "expired": "expired",
        "reused": "already used",
        "other-user": "Unknown authorization state",
        "other-provider": "was issued for",
    }[bad]
    assert expected in problem["detail"]
    assert len(http.calls) == token_calls  # nothing was exchanged
    with app.app_context():
        if bad == "other-user":
            # The rightful owner can still use it: another user's attempt burns nothing.
            assert db.session.execute(select(OAuthState.used_at)).scalar_one() is None


def test_access_denied_is_a_400_and_burns_the_state(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, case: Case
) -> None:
    state = authorize(client, auth, case)["state"]
    response = client.get(
        f"{BASE}/{case.slug}/callback",
        query_string={"error": "access_denied", "state": state},
        headers=auth,
    )
    assert response.status_code == 400
    assert response.json["type"].endswith("oauth-denied")
    assert "declined" in response.json["detail"]
    assert len(http.calls) == 0
    again = client.get(f"{BASE}/{case.slug}/callback?code=c&state={state}", headers=auth)
    assert "already used" in again.json["detail"]


@pytest.mark.parametrize(
    ("status", "body", "expected_status", "kind"),
    [
        (400, {"error": "invalid_grant", "error_description": "Bad Request"}, 400, "invalid-grant"),
        (
            401,
            {"error": "invalid_client", "error_description": "Unauthorized"},
            502,
            "provider-error",
        ),
        (503, None, 502, "provider-unavailable"),
        (200, {"token_type": "Bearer"}, 502, "provider-unavailable"),
    ],
    ids=["invalid-grant", "invalid-client", "token-endpoint-down", "no-access-token"],
)
def test_token_endpoint_errors_are_clear_problems(
    client: FlaskClient,
    auth: dict[str, str],
    http: responses.RequestsMock,
    case: Case,
    app: Flask,
    status: int,
    body: dict[str, Any] | None,
    expected_status: int,
    kind: str,
) -> None:
    if case.name == "OUTLOOK" and body and body.get("error") == "invalid_grant":
        body = p.MICROSOFT_INVALID_GRANT
    state = authorize(client, auth, case)["state"]
    if body is None:
        http.post(case.token_url, body="<html>Service Unavailable</html>", status=status)
    else:
        http.post(case.token_url, json=body, status=status)

    response = client.get(f"{BASE}/{case.slug}/callback?code=c&state={state}", headers=auth)

    assert response.status_code == expected_status
    assert response.mimetype == "application/problem+json"
    assert response.json["type"].endswith(kind)
    assert "Traceback" not in response.json["detail"]
    if kind == "invalid-grant":
        assert "connect the calendar again" in response.json["detail"]
    with app.app_context():
        assert db.session.execute(select(CalendarConnection)).first() is None


def test_account_read_failure_is_a_502(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, case: Case
) -> None:
    state = authorize(client, auth, case)["state"]
    http.post(case.token_url, json=case.token())
    case.mock_account(http, status=403)
    response = client.get(f"{BASE}/{case.slug}/callback?code=c&state={state}", headers=auth)
    assert response.status_code == 502
    assert "HTTP 403" in response.json["detail"]


def test_reconnect_replaces_tokens_and_keeps_one_connection(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, case: Case, app: Flask
) -> None:
    assert connect(client, auth, http, case, n=1).status_code == 200
    assert connect(client, auth, http, case, n=2).status_code == 200
    with app.app_context():
        connection = db.session.execute(select(CalendarConnection)).scalar_one()
        token = load_token(connection, get_cipher())
        assert token is not None
        assert token["access_token"] == case.token(2)["access_token"]
        assert token["refresh_token"] == case.token(2)["refresh_token"]


def test_reconnect_without_refresh_token_keeps_the_old_one(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask
) -> None:
    assert connect(client, auth, http, GOOGLE, n=1).status_code == 200
    assert connect(client, auth, http, GOOGLE, n=2, refresh=False).status_code == 200
    with app.app_context():
        connection = db.session.execute(select(CalendarConnection)).scalar_one()
        token = load_token(connection, get_cipher())
        assert token is not None
        assert token["access_token"] == "ya29.access-2"
        assert token["refresh_token"] == "1//refresh-1"


def test_unconfigured_provider_is_a_503_naming_the_variables(
    make_app: Callable[..., Flask], token_for: Callable[[str], dict[str, str]]
) -> None:
    app = make_app(GOOGLE_CLIENT_ID=None, GOOGLE_CLIENT_SECRET=None)
    response = app.test_client().get(f"{BASE}/google/authorize", headers=token_for("u"))
    assert response.status_code == 503
    assert "GOOGLE_CLIENT_ID" in response.json["detail"]
