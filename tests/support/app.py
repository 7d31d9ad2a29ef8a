"""Fixtures: an app on a migrated database (SQLite, or PostgreSQL via DATABASE_URL), clients,
tokens, and HTTP mocked with `responses` so no test reaches a real provider."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from calendar_connections import create_app
from calendar_connections.auth import issue_token
from calendar_connections.extensions import db

from .relay import relay_batches

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-signing"
ENCRYPTION_KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A freshly migrated database for the whole run."""
    url = os.environ.get("DATABASE_URL") or (
        f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"
    )
    if url.startswith("postgresql"):
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    app = create_app(_test_config(url, tmp_path_factory.mktemp("instance")))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    yield url


def _test_config(url: str, instance: Path) -> dict[str, Any]:
    return {
        "TESTING": True,
        "DATABASE_URL": url,
        "JWT_SECRET_KEY": JWT_SECRET,
        "TOKEN_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "GOOGLE_CLIENT_ID": "google-client-id",
        "GOOGLE_CLIENT_SECRET": "google-client-secret",
        "GOOGLE_REDIRECT_URI": "https://crm.example.test/oauth/google",
        "OUTLOOK_CLIENT_ID": "outlook-client-id",
        "OUTLOOK_CLIENT_SECRET": "outlook-client-secret",
        "OUTLOOK_REDIRECT_URI": "https://crm.example.test/oauth/outlook",
        "SCHEDULER_ENABLED": False,
    }


@pytest.fixture
def make_app(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build apps on the test database; tables are emptied after the test."""
    built: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        config = _test_config(database_url, tmp_path)
        config.update(overrides)
        app = create_app(config)
        built.append(app)
        return app

    yield factory
    for app in built:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    empty_database(database_url)


def empty_database(url: str) -> None:
    """Delete every row of every table of the service."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask], request: pytest.FixtureRequest) -> Flask:
    """The service; a module or test sets its settings with ``pytest.mark.app_config(...)``."""
    marker = request.node.get_closest_marker("app_config")
    return make_app(**(marker.kwargs if marker else {}))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def token_for(app: Flask) -> Callable[[str], dict[str, str]]:
    """Authorization headers for a CRM user."""

    def headers(user_id: str) -> dict[str, str]:
        with app.app_context():
            return {"Authorization": f"Bearer {issue_token(user_id, timedelta(hours=1))}"}

    return headers


@pytest.fixture
def auth(token_for: Callable[[str], dict[str, str]]) -> dict[str, str]:
    """Headers of the default test user, `user-1`."""
    return token_for("user-1")


@pytest.fixture(autouse=True)
def http() -> Iterator[responses.RequestsMock]:
    """Every outgoing HTTP request must match a registered mock."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        relay_batches(mock)  # each call of a provider batch goes to the mocks registered for it
        yield mock
