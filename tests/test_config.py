"""Production refuses missing or default secrets; development makes shared throwaway ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import Flask

from calendar_connections import create_app
from calendar_connections.config import ConfigurationError, get_settings

from .support.app import JWT_SECRET

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


def good_production(tmp_path: Path, **config: object) -> dict[str, object]:
    return production(tmp_path, JWT_SECRET_KEY=JWT_SECRET, TOKEN_ENCRYPTION_KEYS=GOOD_KEY, **config)


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"PROVIDER_SANDBOX_URL": "http://127.0.0.1:18090"}, "PROVIDER_SANDBOX_URL"),
        ({"GOOGLE_TOKEN_URL": "http://oauth2.googleapis.com/token"}, "GOOGLE_TOKEN_URL"),
        ({"GOOGLE_API_BASE_URL": "http://evil.test/calendar/v3"}, "GOOGLE_API_BASE_URL"),
        ({"OUTLOOK_GRAPH_BASE_URL": "ftp://graph.test"}, "OUTLOOK_GRAPH_BASE_URL"),
        ({"OUTLOOK_AUTHORITY_URL": "http://login.test"}, "OUTLOOK_AUTHORITY_URL"),
        ({"GOOGLE_REDIRECT_URI": "http://crm.test/cb"}, "GOOGLE_REDIRECT_URI"),
        ({"OUTLOOK_REDIRECT_URI": "http://crm.test/cb"}, "OUTLOOK_REDIRECT_URI"),
        ({"JWT_ALGORITHM": "none"}, "JWT_ALGORITHM"),
        ({"JWT_ALGORITHM": "HS512"}, "JWT_ALGORITHM"),
        ({"WEBHOOK_BASE_URL": "http://crm.example.com"}, "WEBHOOK_BASE_URL"),
        ({"WEBHOOK_BASE_URL": "crm.example.com"}, "WEBHOOK_BASE_URL"),
    ],
)
def test_production_refuses_unsafe_settings_naming_the_variable(
    tmp_path: Path, config: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        create_app(good_production(tmp_path, **config))


def test_development_accepts_the_sandbox_and_http(tmp_path: Path) -> None:
    app = create_app(
        {
            "APP_ENV": "development",
            "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite",
            "PROVIDER_SANDBOX_URL": "http://127.0.0.1:18090",
        },
        instance_path=str(tmp_path / "instance"),
    )
    assert app.config["GOOGLE_TOKEN_URL"].startswith("http://127.0.0.1:18090")


def test_webhook_base_url_is_https_in_production_and_may_be_http_in_development(
    tmp_path: Path,
) -> None:
    app = create_app(good_production(tmp_path, WEBHOOK_BASE_URL="https://crm.example.com/"))
    assert get_settings(app).webhook_base_url == "https://crm.example.com"
    development = {"APP_ENV": "development", "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite"}
    instance = str(tmp_path / "instance")
    app = create_app(
        {**development, "WEBHOOK_BASE_URL": "http://127.0.0.1:18080"}, instance_path=instance
    )
    assert get_settings(app).webhook_base_url == "http://127.0.0.1:18080"
    for wrong in ("ftp://crm.test", "http://", "https://crm.test/?a=1", "127.0.0.1:18080"):
        with pytest.raises(ConfigurationError, match="WEBHOOK_BASE_URL must be an absolute"):
            create_app({**development, "WEBHOOK_BASE_URL": wrong}, instance_path=instance)
    assert get_settings(create_app(development, instance_path=instance)).webhook_base_url is None


def test_cors_origins_and_body_limit_are_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://crm.example.test, https://admin.example.test")
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "2048")
    app = create_app(good_production(tmp_path))
    assert app.config["CORS_ORIGINS"] == ("https://crm.example.test", "https://admin.example.test")
    assert app.config["MAX_CONTENT_LENGTH"] == 2048
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["hide_parameters"] is True


REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def refusing_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "GOOGLE_", "OUTLOOK_"))}
    env.update(
        APP_ENV="production",
        DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite",
        JWT_SECRET_KEY=JWT_SECRET,
        TOKEN_ENCRYPTION_KEYS=GOOD_KEY,
        GOOGLE_REDIRECT_URI="https://crm.example.test/oauth/google",
        OUTLOOK_REDIRECT_URI="https://crm.example.test/oauth/outlook",
        PROVIDER_SANDBOX_URL="http://127.0.0.1:18090",
        PORT="0",
        HOST="127.0.0.1",
    )
    return env


@pytest.mark.parametrize(
    "command",
    [
        [str(BIN / "flask"), "calendar", "status"],
        [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"],
    ],
    ids=["flask", "gunicorn"],
)
def test_a_refusal_is_one_line_on_stderr(tmp_path: Path, command: list[str]) -> None:
    result = subprocess.run(
        command,
        cwd=REPO,
        env=refusing_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "PROVIDER_SANDBOX_URL" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.e2e
def test_gunicorn_announces_itself_once_a_worker_has_loaded_the_app(tmp_path: Path) -> None:
    env = refusing_env(tmp_path)
    env.update(APP_ENV="development", WEB_CONCURRENCY="1", SCHEDULER_ENABLED="false")
    del env["PROVIDER_SANDBOX_URL"]
    lines: list[str] = []
    with subprocess.Popen(
        [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stderr is not None
            for line in process.stderr:
                lines.append(line)
                if "serving on" in line or len(lines) > 50:
                    break
        finally:
            process.terminate()
            process.wait(timeout=30)
    text = "".join(lines)
    assert "serving on" in text, text
    assert text.index("Booting worker") < text.index("serving on")
    assert text.count("serving on") == 1
