"""OAuth tokens are encrypted at rest and can be re-encrypted under a new key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import responses
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from calendar_connections.crypto import get_cipher
from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, OAuthToken
from calendar_connections.token_store import load_token

from .support.app import ENCRYPTION_KEY
from .support.connections import BASE, GOOGLE, OUTLOOK, connect

SECRETS = ["ya29.access-1", "1//refresh-1", "eyJ0eXAi.access-1", "M.R3_BAY.refresh-1"]


def all_stored_text(app: Flask) -> str:
    """Every value of every table, as text."""
    chunks: list[str] = []
    with app.app_context(), db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                chunks.extend(str(value) for value in row)
    return "\n".join(chunks)


def test_no_plaintext_token_in_the_database(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask
) -> None:
    for case in (GOOGLE, OUTLOOK):
        assert connect(client, auth, http, case).status_code == 200
    text = all_stored_text(app)
    for secret in SECRETS:
        assert secret not in text
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        raw = Path(url.removeprefix("sqlite:///")).read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in raw


def test_tokens_never_appear_in_api_answers_or_logs(
    client: FlaskClient,
    auth: dict[str, str],
    http: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    answers = [
        connect(client, auth, http, case).get_data(as_text=True) for case in (GOOGLE, OUTLOOK)
    ]
    answers.append(client.get(f"{BASE}/status", headers=auth).get_data(as_text=True))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in SECRETS:
        assert all(secret not in answer for answer in answers)
        assert secret not in logged


def test_rotate_keys_reencrypts_under_the_first_key(
    client: FlaskClient,
    auth: dict[str, str],
    http: responses.RequestsMock,
    make_app: Callable[..., Flask],
) -> None:
    assert connect(client, auth, http, GOOGLE).status_code == 200
    new_key = Fernet.generate_key().decode()
    rotated_app = make_app(TOKEN_ENCRYPTION_KEYS=f"{new_key},{ENCRYPTION_KEY}")

    result = rotated_app.test_cli_runner().invoke(args=["tokens", "rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 1 token(s)" in result.output

    new_only = make_app(TOKEN_ENCRYPTION_KEYS=new_key)
    with new_only.app_context():
        connection = db.session.execute(select(CalendarConnection)).scalar_one()
        token = load_token(connection, get_cipher())
        assert token is not None and token["refresh_token"] == "1//refresh-1"
        stored = db.session.execute(select(OAuthToken)).scalar_one()
        Fernet(new_key.encode()).decrypt(stored.access_token_encrypted.encode())


def test_issue_token_command_mints_a_working_token(runner: object, client: FlaskClient) -> None:
    result = runner.invoke(args=["auth", "issue-token", "crm-7", "--expires", "5m"])  # type: ignore[attr-defined]
    assert result.exit_code == 0
    token = result.output.strip()
    response = client.get(f"{BASE}/status", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    bad = runner.invoke(args=["auth", "issue-token", "crm-7", "--expires", "soon"])  # type: ignore[attr-defined]
    assert bad.exit_code != 0
    assert "not a duration" in bad.output
