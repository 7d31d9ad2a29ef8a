"""A stored token no configured key can decrypt (its key was dropped from
TOKEN_ENCRYPTION_KEYS): the connection asks to be reconnected, disconnect still works, and
key rotation skips it instead of failing."""

from __future__ import annotations

from collections.abc import Callable

import responses
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from calendar_connections.crypto import get_cipher
from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, OAuthToken
from calendar_connections.token_store import load_token

from .support.app import ENCRYPTION_KEY
from .support.connections import BASE, GOOGLE, OUTLOOK, Case, authorize, connect


def status_of(client: FlaskClient, auth: dict[str, str], case: Case) -> dict[str, object]:
    response = client.get(f"{BASE}/status", headers=auth)
    assert response.status_code == 200
    return next(s for s in response.json if s["provider"] == case.name)  # type: ignore[union-attr]


def app_without_the_old_key(make_app: Callable[..., Flask]) -> Flask:
    """The service after its operator replaced the only key the tokens were encrypted with."""
    return make_app(TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode())


def rows(app: Flask, model: type[CalendarConnection] | type[OAuthToken]) -> int:
    with app.app_context():
        return int(db.session.execute(select(func.count()).select_from(model)).scalar_one())


def test_unreadable_token_fails_the_sync_asking_to_reconnect(
    client: FlaskClient,
    auth: dict[str, str],
    http: responses.RequestsMock,
    make_app: Callable[..., Flask],
    case: Case,
) -> None:
    assert connect(client, auth, http, case).status_code == 200
    calls_before = len(http.calls)
    rekeyed = app_without_the_old_key(make_app).test_client()

    response = rekeyed.post(f"{BASE}/{case.slug}/sync", headers=auth)

    assert response.status_code == 200, response.json
    result = response.json
    assert result["success"] is False and "reconnect" in result["error"]
    assert len(http.calls) == calls_before  # nothing was sent to the provider
    state = status_of(rekeyed, auth, case)
    assert state["connected"] is False and state["lastSyncStatus"] == "FAILED"
    assert state["lastSyncError"] == result["error"]
    assert "encryption key was retired" in result["error"]  # the cause, not a revoked grant


def test_disconnect_with_an_unreadable_token_forgets_the_connection(
    client: FlaskClient,
    auth: dict[str, str],
    http: responses.RequestsMock,
    make_app: Callable[..., Flask],
    case: Case,
) -> None:
    assert connect(client, auth, http, case).status_code == 200
    calls_before = len(http.calls)
    rekeyed_app = app_without_the_old_key(make_app)

    response = rekeyed_app.test_client().delete(f"{BASE}/{case.slug}/disconnect", headers=auth)

    assert response.status_code == 204, response.json
    assert len(http.calls) == calls_before  # no revoke: there is no token to send
    assert rows(rekeyed_app, CalendarConnection) == 0
    assert rows(rekeyed_app, OAuthToken) == 0
    assert status_of(rekeyed_app.test_client(), auth, case)["connected"] is False


def _encrypt_outlook_token_under(app: Flask, key: str) -> None:
    """Store Outlook's token encrypted under ``key``, a key the service does not hold."""
    lost = Fernet(key.encode())
    with app.app_context():
        stored = db.session.execute(
            select(OAuthToken)
            .join(CalendarConnection)
            .where(CalendarConnection.provider == "OUTLOOK")
        ).scalar_one()
        stored.access_token_encrypted = lost.encrypt(b"eyJ0eXAi.access-1").decode()
        stored.refresh_token_encrypted = lost.encrypt(b"M.R3_BAY.refresh-1").decode()
        db.session.commit()


def test_rotate_keys_skips_and_reports_an_unreadable_token(
    client: FlaskClient,
    auth: dict[str, str],
    http: responses.RequestsMock,
    app: Flask,
    make_app: Callable[..., Flask],
) -> None:
    for each in (GOOGLE, OUTLOOK):
        assert connect(client, auth, http, each).status_code == 200
    _encrypt_outlook_token_under(app, Fernet.generate_key().decode())
    new_key = Fernet.generate_key().decode()
    rotating = make_app(TOKEN_ENCRYPTION_KEYS=f"{new_key},{ENCRYPTION_KEY}")

    result = rotating.test_cli_runner().invoke(args=["tokens", "rotate-keys"])

    assert result.exit_code == 0, result.output
    assert "Re-encrypted 1 token(s)" in result.output
    assert "1 token(s) no configured key can decrypt" in result.output
    assert "user-1 OUTLOOK" in result.output and "reconnect" in result.output
    with make_app(TOKEN_ENCRYPTION_KEYS=new_key).app_context():
        google = db.session.execute(
            select(CalendarConnection).where(CalendarConnection.provider == "GOOGLE")
        ).scalar_one()
        token = load_token(google, get_cipher())
        assert token is not None and token["refresh_token"] == "1//refresh-1"


def test_a_callback_whose_verifier_key_was_retired_asks_to_start_again(
    client: FlaskClient,
    auth: dict[str, str],
    http: responses.RequestsMock,
    make_app: Callable[..., Flask],
    case: Case,
) -> None:
    """The key changed between authorize and callback: a 400 problem, no code exchange."""
    state = authorize(client, auth, case)["state"]
    rekeyed = app_without_the_old_key(make_app).test_client()
    calls_before = len(http.calls)

    response = rekeyed.get(f"{BASE}/{case.slug}/callback?code=c&state={state}", headers=auth)

    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    assert "start it again" in response.json["detail"]
    assert len(http.calls) == calls_before
    assert rows(make_app(), CalendarConnection) == 0
