"""Calendar Connections: two-way sync of CRM calendars with Google Calendar and Outlook."""

from __future__ import annotations

from typing import Any

from flask import Flask


def create_app(
    test_config: dict[str, Any] | None = None, *, instance_path: str | None = None
) -> Flask:
    """Build the application: configuration, extensions, blueprints, commands."""
    from . import (
        api,
        auth,
        cli,
        cors,
        crypto,
        docs,
        errors,
        health,
        logs,
        push_dispatch,
        scheduler,
    )
    from .config import load_config
    from .extensions import api as smorest_api
    from .extensions import db, migrate

    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path)
    load_config(app, test_config)
    logs.init_app(app)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()))
    crypto.init_app(app)
    auth.init_app(app)
    smorest_api.init_app(app)
    errors.init_app(app)
    api.init_app(app)
    docs.init_app(app)
    cors.init_app(app)
    health.init_app(app)
    cli.init_app(app)
    scheduler.init_app(app)
    push_dispatch.init_app(app)
    return app


def _migrations_dir() -> Any:
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"
