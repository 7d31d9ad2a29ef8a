"""Production refuses missing or default secrets; development makes shared throwaway ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import Flask

from calendar_connections import create_app
from calendar_connections.config import ConfigurationError

from .conftest import JWT_SECRET

GOOD_KEY = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APP_ENV", "JWT_SECRET_KEY", "TOKEN_ENCRYPTION_KEYS", "JWT_ALGORITHM"):
        monkeypatch.delenv(name, raising=False)


def production(tmp_path: Path, **config: object) -> dict[str, object]:
    return {
        "APP_ENV": "production",
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite",
        "GOOGLE_REDIRECT_URI": "https://crm.example.test/oauth/google",
        "OUTLOOK_REDIRECT_URI": "https://crm.example.test/oauth/outlook",
        **config,
    }


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"TOKEN_ENCRYPTION_KEYS": GOOD_KEY}, "JWT_SECRET_KEY"),
        ({"JWT_SECRET_KEY": "change-me", "TOKEN_ENCRYPTION_KEYS": GOOD_KEY}, "JWT_SECRET_KEY"),
        ({"JWT_SECRET_KEY": "short", "TOKEN_ENCRYPTION_KEYS": GOOD_KEY}, "JWT_SECRET_KEY"),
        ({"JWT_SECRET_KEY": JWT_SECRET}, "TOKEN_ENCRYPTION_KEYS"),
        (
            {"JWT_SECRET_KEY": JWT_SECRET, "TOKEN_ENCRYPTION_KEYS": "not-a-key"},
            "TOKEN_ENCRYPTION_KEYS",
        ),
        ({"JWT_ALGORITHM": "RS256", "TOKEN_ENCRYPTION_KEYS": GOOD_KEY}, "JWT_PUBLIC_KEY"),
    ],
)
def test_production_refuses_missing_or_default_secrets(
    tmp_path: Path, config: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        create_app(production(tmp_path, **config))


def test_production_reads_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWT_SECRET_KEY", JWT_SECRET)
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", f"{GOOD_KEY},{Fernet.generate_key().decode()}")
    monkeypatch.setenv("OAUTH_STATE_TTL", "120")
    app = create_app(production(tmp_path))
    assert app.config["JWT_SECRET_KEY"] == JWT_SECRET
    assert app.config["OAUTH_STATE_TTL"] == 120


def test_bad_number_in_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_TIMEOUT", "ten")
    with pytest.raises(ConfigurationError, match="HTTP_TIMEOUT"):
        create_app(production(tmp_path, JWT_SECRET_KEY=JWT_SECRET, TOKEN_ENCRYPTION_KEYS=GOOD_KEY))


def test_development_generates_throwaway_secrets_shared_by_workers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_ENV", "development")

    def build() -> Flask:
        config = {"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite"}
        return create_app(config, instance_path=str(tmp_path / "instance"))

    first, second = build(), build()
    assert first.config["JWT_SECRET_KEY"] == second.config["JWT_SECRET_KEY"]
    assert len(first.config["JWT_SECRET_KEY"]) >= 32
    Fernet(first.config["TOKEN_ENCRYPTION_KEYS"].encode())
    stored = json.loads((tmp_path / "instance" / "dev-secrets.json").read_text())
    assert stored["JWT_SECRET_KEY"] == first.config["JWT_SECRET_KEY"]
    assert any("throwaway" in r.getMessage() for r in caplog.records)
