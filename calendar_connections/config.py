"""Configuration: defaults, the documented environment variables, and the secrets check.

Order of precedence, lowest first: the defaults below, ``instance/config.py``, environment
variables, then the mapping a test passes to ``create_app``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from cryptography.fernet import Fernet
from flask import Flask, current_app

log = logging.getLogger(__name__)


class ConfigurationError(click.ClickException):
    """The configuration cannot run: the message names the variable to set.

    A ClickException, so that ``flask`` prints it as one line, not as a traceback.
    """


@dataclass(frozen=True)
class Setting:
    """One environment variable the service reads."""

    name: str
    default: Any
    help: str
    kind: type = str


# The one table of environment variables; README.md mirrors it.
SETTINGS: tuple[Setting, ...] = (
    Setting("APP_ENV", "production", "`production` (refuses default secrets) or `development`"),
    Setting("DATABASE_URL", None, "SQLAlchemy URL; default SQLite file in `instance/`"),
    Setting("JWT_SECRET_KEY", None, "HS256 secret shared with the CRM auth service"),
    Setting("JWT_PUBLIC_KEY", None, "PEM public key when tokens are RS256-signed"),
    Setting("JWT_ALGORITHM", "HS256", "`HS256` or `RS256`"),
    Setting("JWT_DECODE_AUDIENCE", None, "required `aud` claim, if any"),
    Setting("JWT_DECODE_ISSUER", None, "required `iss` claim, if any"),
    Setting("TOKEN_ENCRYPTION_KEYS", None, "comma-separated Fernet keys; first encrypts"),
    Setting("GOOGLE_CLIENT_ID", None, "Google OAuth client id"),
    Setting("GOOGLE_CLIENT_SECRET", None, "Google OAuth client secret"),
    Setting(
        "GOOGLE_REDIRECT_URI",
        "http://localhost:3000/oauth/google/callback",
        "front-end page Google redirects the browser to",
    ),
    Setting(
        "GOOGLE_AUTHORIZE_URL",
        "https://accounts.google.com/o/oauth2/v2/auth",
        "Google authorization endpoint",
    ),
    Setting("GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token", "Google token endpoint"),
    Setting("GOOGLE_REVOKE_URL", "https://oauth2.googleapis.com/revoke", "Google revocation"),
    Setting(
        "GOOGLE_API_BASE_URL",
        "https://www.googleapis.com/calendar/v3",
        "Google Calendar API base URL",
    ),
    Setting(
        "GOOGLE_BATCH_URL",
        "https://www.googleapis.com/batch/calendar/v3",
        "Google Calendar batch endpoint (50 writes per request)",
    ),
    Setting("OUTLOOK_CLIENT_ID", None, "Microsoft identity platform application id"),
    Setting("OUTLOOK_CLIENT_SECRET", None, "Microsoft application client secret"),
    Setting(
        "OUTLOOK_REDIRECT_URI",
        "http://localhost:3000/oauth/outlook/callback",
        "front-end page Microsoft redirects the browser to",
    ),
    Setting("OUTLOOK_TENANT", "common", "`common`, `organizations`, `consumers` or a tenant id"),
    Setting(
        "OUTLOOK_AUTHORITY_URL",
        "https://login.microsoftonline.com",
        "Microsoft identity platform authority",
    ),
    Setting(
        "OUTLOOK_GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0", "Microsoft Graph base URL"
    ),
    Setting("OAUTH_STATE_TTL", 600, "seconds an authorization `state` stays valid", int),
    Setting("HTTP_TIMEOUT", 20, "seconds for one request to a provider", int),
    Setting("LOG_LEVEL", "INFO", "Python logging level"),
    Setting("SCHEDULER_ENABLED", True, "sync stale connections in the background", bool),
    Setting("SYNC_INTERVAL", 60, "seconds between scheduler rounds", int),
    Setting("SYNC_CONCURRENCY", 4, "syncs a scheduler runs at once", int),
    Setting("SYNC_BATCH_SIZE", 100, "connections one scheduler claims per round", int),
    Setting("PROVIDER_SANDBOX_URL", None, "point every provider URL at `flask sandbox run`"),
    Setting("SYNC_STALE_AFTER", 300, "seconds after which a connection's last sync is stale", int),
    Setting("SYNC_WINDOW_PAST", 30 * 86400, "seconds of history a full listing reads", int),
    Setting("SYNC_WINDOW_FUTURE", 365 * 86400, "seconds ahead an Outlook window reaches", int),
    Setting("SYNC_WINDOW_SHIFT", 7 * 86400, "seconds before the window moves forward", int),
    Setting("SYNC_LEASE_TTL", 120, "seconds a sync lease lasts without renewal", int),
    Setting("SYNC_RETRY_ATTEMPTS", 5, "retries of a provider call on 429/5xx", int),
    Setting("SYNC_RETRY_BACKOFF", 0.5, "backoff factor (seconds) between retries", float),
    Setting("SYNC_RETRY_BACKOFF_MAX", 30.0, "longest wait between two retries, seconds", float),
    Setting("SYNC_RETRY_AFTER_MAX", 60, "longest Retry-After the service waits, seconds", int),
    Setting("OUTLOOK_PAGE_SIZE", 200, "`Prefer: odata.maxpagesize` for Graph delta pages", int),
    Setting("MAX_CONTENT_LENGTH", 1024 * 1024, "largest request body in bytes (413 beyond)", int),
    Setting("JWT_LEEWAY", 30, "seconds of clock skew allowed on `exp`, `iat` and `nbf`", int),
    Setting("CORS_ORIGINS", (), "comma-separated origins whose browsers may call the API", list),
    Setting("WEBHOOK_BASE_URL", None, "public URL of this service for provider push (https)"),
    Setting("PUSH_CHANNEL_TTL", 7 * 86400, "seconds of channel lifetime asked of a provider", int),
    Setting("WEBHOOK_SYNC_DELAY", 2.0, "seconds before a notified connection syncs", float),
    Setting("SYNC_STALE_AFTER_PUSH", 3600, "stale after, for connections with active push", int),
)

# Where the sandbox (`flask sandbox run`) serves each provider URL, below its base URL.
SANDBOX_PATHS = {
    "GOOGLE_AUTHORIZE_URL": "/google/o/oauth2/v2/auth",
    "GOOGLE_TOKEN_URL": "/google/token",
    "GOOGLE_REVOKE_URL": "/google/revoke",
    "GOOGLE_API_BASE_URL": "/google/calendar/v3",
    "GOOGLE_BATCH_URL": "/google/batch/calendar/v3",
    "OUTLOOK_AUTHORITY_URL": "/microsoft",
    "OUTLOOK_GRAPH_BASE_URL": "/graph/v1.0",
}
SETTINGS_KEY = "calendar_connections.settings"


@dataclass(frozen=True)
class Settings:
    """The table above, read once and typed: one attribute per variable, lower-cased."""

    app_env: str
    database_url: str
    jwt_secret_key: str | None = field(repr=False)
    jwt_public_key: str | None
    jwt_algorithm: str
    jwt_decode_audience: str | None
    jwt_decode_issuer: str | None
    token_encryption_keys: str = field(repr=False)  # made in development when unset
    google_client_id: str | None
    google_client_secret: str | None = field(repr=False)
    google_redirect_uri: str
    google_authorize_url: str
    google_token_url: str
    google_revoke_url: str | None
    google_api_base_url: str
    google_batch_url: str
    outlook_client_id: str | None
    outlook_client_secret: str | None = field(repr=False)
    outlook_redirect_uri: str
    outlook_tenant: str
    outlook_authority_url: str
    outlook_graph_base_url: str
    oauth_state_ttl: int
    http_timeout: int
    log_level: str
    scheduler_enabled: bool
    sync_interval: int
    sync_concurrency: int
    sync_batch_size: int
    provider_sandbox_url: str | None
    sync_stale_after: int
    sync_window_past: int
    sync_window_future: int
    sync_window_shift: int
    sync_lease_ttl: int
    sync_retry_attempts: int
    sync_retry_backoff: float
    sync_retry_backoff_max: float
    sync_retry_after_max: int
    outlook_page_size: int
    max_content_length: int
    jwt_leeway: int
    cors_origins: tuple[str, ...]
    webhook_base_url: str | None
    push_channel_ttl: int
    webhook_sync_delay: float
    sync_stale_after_push: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Settings:
        """The settings of a loaded app configuration (see ``load_config``)."""
        return cls(**{setting.name.lower(): _typed(setting, config) for setting in SETTINGS})


def _typed(setting: Setting, config: dict[str, Any]) -> Any:
    value = config.get(setting.name)
    if value is None:
        return None
    if setting.kind is list:
        return _parse(setting, value) if isinstance(value, str) else tuple(value)
    if setting.kind is bool and isinstance(value, str):
        return _parse(setting, value)
    return setting.kind(value)


def get_settings(app: Flask | None = None) -> Settings:
    """The settings of ``app`` (the current app by default)."""
    settings: Settings = (app or current_app).extensions[SETTINGS_KEY]
    return settings


JWT_ALGORITHMS = ("HS256", "RS256")
# Every URL the service sends a client secret, a code or a user's token to.
PROVIDER_URLS = (
    "GOOGLE_AUTHORIZE_URL",
    "GOOGLE_TOKEN_URL",
    "GOOGLE_REVOKE_URL",
    "GOOGLE_API_BASE_URL",
    "GOOGLE_BATCH_URL",
    "GOOGLE_REDIRECT_URI",
    "OUTLOOK_AUTHORITY_URL",
    "OUTLOOK_GRAPH_BASE_URL",
    "OUTLOOK_REDIRECT_URI",
)

# Values shipped in examples: a deployment still using one of them has no secret at all.
KNOWN_DEFAULT_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev", "development"})
MIN_HMAC_SECRET_BYTES = 32


def _parse(setting: Setting, raw: str) -> Any:
    if setting.kind in (int, float):
        try:
            return setting.kind(raw)
        except ValueError as exc:
            raise ConfigurationError(f"{setting.name} must be a number, got {raw!r}") from exc
    if setting.kind is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if setting.kind is list:
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    return raw


def load_config(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill ``app.config`` from defaults, ``instance/config.py``, the environment and tests."""
    for setting in SETTINGS:
        app.config[setting.name] = setting.default
    app.config.from_pyfile("config.py", silent=True)
    for setting in SETTINGS:
        raw = os.environ.get(setting.name)
        if raw is not None and raw != "":
            app.config[setting.name] = _parse(setting, raw)
    if test_config:
        app.config.update(test_config)
    _point_at_sandbox(app, set(test_config or ()))

    if not app.config["DATABASE_URL"]:
        database = Path(app.instance_path) / "calendar_connections.sqlite"
        app.config["DATABASE_URL"] = f"sqlite:///{database}"
    app.config["SQLALCHEMY_DATABASE_URI"] = app.config["DATABASE_URL"]
    engine_options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    engine_options.setdefault("pool_pre_ping", True)
    # SQL parameters are calendar data: never in an error message or a log line.
    engine_options["hide_parameters"] = True
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options
    _configure_jwt(app)
    _configure_openapi(app)
    check_secrets(app)
    check_production(app)
    check_webhook_base_url(app)
    app.extensions[SETTINGS_KEY] = Settings.from_config(app.config)


def preflight() -> None:
    """Read the configuration as the app will, without building it: refusals surface early.

    gunicorn calls it in its master, so that a refusal is one line before any worker starts.
    """
    load_config(Flask("calendar_connections", instance_relative_config=True), None)


def _point_at_sandbox(app: Flask, given: set[str]) -> None:
    """With PROVIDER_SANDBOX_URL, provider URLs not set explicitly point at the sandbox."""
    base = app.config.get("PROVIDER_SANDBOX_URL")
    if not base:
        return
    explicit = given | {name for name in os.environ if os.environ[name]}
    for name, path in SANDBOX_PATHS.items():
        if name not in explicit:
            app.config[name] = str(base).rstrip("/") + path
    for provider in ("GOOGLE", "OUTLOOK"):
        for part, default in (("CLIENT_ID", "sandbox-client"), ("CLIENT_SECRET", "sandbox-secret")):
            app.config[f"{provider}_{part}"] = app.config.get(f"{provider}_{part}") or default


def _configure_jwt(app: Flask) -> None:
    app.config["JWT_TOKEN_LOCATION"] = ["headers"]
    app.config["JWT_IDENTITY_CLAIM"] = "sub"
    # The CRM's auth service may put a JSON number in `sub`; we normalise it ourselves.
    app.config["JWT_VERIFY_SUB"] = False
    app.config["JWT_ERROR_MESSAGE_KEY"] = "detail"
    # The CRM's auth service runs on another clock: allow it to be a little ahead or behind.
    app.config["JWT_DECODE_LEEWAY"] = int(app.config["JWT_LEEWAY"])


def _configure_openapi(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "Calendar Connections")
    app.config.setdefault("API_VERSION", "1.0.0")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "docs")
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", "/api/v1/docs/assets/")
    # No validator badge: the docs page must not call anything off this machine.
    app.config.setdefault("OPENAPI_SWAGGER_UI_CONFIG", {"validatorUrl": None})


def is_development(app: Flask) -> bool:
    """True when the service runs for a developer, not in production."""
    return bool(app.config.get("TESTING")) or app.config["APP_ENV"] == "development"


def check_production(app: Flask) -> None:
    """Refuse settings that would hand secrets or users' tokens to the wrong host."""
    if is_development(app):
        return
    if app.config.get("PROVIDER_SANDBOX_URL"):
        raise ConfigurationError(
            "Refusing to start in production with PROVIDER_SANDBOX_URL set: it would send the "
            "client secrets and users' tokens to the sandbox. Unset it, or set "
            "APP_ENV=development."
        )
    for name in PROVIDER_URLS:
        value = app.config.get(name)
        if value and urlsplit(str(value)).scheme != "https":
            raise ConfigurationError(
                f"Refusing to start in production: {name} must be an https URL, not {str(value)!r}."
            )


def check_webhook_base_url(app: Flask) -> None:
    """A base URL providers can POST notifications to: https in production, no query."""
    value = app.config.get("WEBHOOK_BASE_URL")
    if not value:
        app.config["WEBHOOK_BASE_URL"] = None
        return
    parts = urlsplit(str(value).strip())
    allowed = ("http", "https") if is_development(app) else ("https",)
    if parts.scheme not in allowed or not parts.hostname or parts.query or parts.fragment:
        raise ConfigurationError(
            f"WEBHOOK_BASE_URL must be an absolute {' or '.join(allowed)} URL without a query "
            f"(such as https://crm.example.com), not {str(value)!r}; Google and Microsoft "
            "deliver push notifications to https URLs only."
        )
    app.config["WEBHOOK_BASE_URL"] = str(value).strip().rstrip("/")


def check_secrets(app: Flask) -> None:
    """Refuse missing or default secrets in production; make throwaway ones in development."""
    algorithm = str(app.config["JWT_ALGORITHM"]).upper()
    if algorithm not in JWT_ALGORITHMS:
        raise ConfigurationError(
            f"JWT_ALGORITHM is {app.config['JWT_ALGORITHM']!r}: use one of "
            f"{', '.join(JWT_ALGORITHMS)}."
        )
    app.config["JWT_ALGORITHM"] = algorithm
    needs_generated: list[str] = []

    if algorithm.startswith("HS"):
        secret = app.config.get("JWT_SECRET_KEY") or ""
        if secret in KNOWN_DEFAULT_SECRETS or len(secret.encode()) < MIN_HMAC_SECRET_BYTES:
            needs_generated.append("JWT_SECRET_KEY")
    elif not app.config.get("JWT_PUBLIC_KEY"):
        raise ConfigurationError(f"JWT_ALGORITHM is {algorithm}: set JWT_PUBLIC_KEY (PEM).")

    keys = app.config.get("TOKEN_ENCRYPTION_KEYS") or ""
    if not keys.strip():
        needs_generated.append("TOKEN_ENCRYPTION_KEYS")
    else:
        for key in keys.split(","):
            try:
                Fernet(key.strip().encode())
            except ValueError as exc:
                raise ConfigurationError(
                    "TOKEN_ENCRYPTION_KEYS holds a value that is not a Fernet key "
                    "(32 url-safe base64-encoded bytes); make one with "
                    '`python -c "from cryptography.fernet import Fernet; '
                    'print(Fernet.generate_key().decode())"`.'
                ) from exc

    if not needs_generated:
        return
    if not is_development(app):
        names = " and ".join(needs_generated)
        raise ConfigurationError(
            f"Refusing to start in production without {names}: set "
            f"{'them' if len(needs_generated) > 1 else 'it'} in the environment "
            "(JWT_SECRET_KEY needs at least 32 bytes), or set APP_ENV=development "
            "for throwaway local secrets."
        )
    generated = _development_secrets(Path(app.instance_path))
    for name in needs_generated:
        app.config[name] = generated[name]
    log.warning(
        "development mode: using throwaway %s from %s; never use these in production",
        ", ".join(needs_generated),
        Path(app.instance_path) / "dev-secrets.json",
    )


def _development_secrets(instance: Path) -> dict[str, str]:
    """Secrets shared by every worker of a development server, created once."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "dev-secrets.json"
    if not path.exists():
        candidate = {
            "JWT_SECRET_KEY": secrets.token_urlsafe(48),
            "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        }
        scratch = instance / f".dev-secrets.{os.getpid()}.tmp"
        scratch.write_text(json.dumps(candidate))
        scratch.chmod(0o600)
        try:
            # A hard link is atomic: of several workers starting at once, one file wins.
            os.link(scratch, path)
        except FileExistsError:
            pass
        finally:
            scratch.unlink()
    stored: dict[str, str] = json.loads(path.read_text())
    return stored
