"""``flask sandbox run``: serve the provider sandbox on a local port."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import click
from flask.cli import AppGroup
from werkzeug.serving import run_simple

from . import create_sandbox_app

sandbox_cli = AppGroup("sandbox", help="Local emulator of Google Calendar and Microsoft Graph.")

_ENV_SETTINGS = ("SANDBOX_CLIENT_ID", "SANDBOX_CLIENT_SECRET", "SANDBOX_TIME_ZONE")
_ENV_NUMBERS = (
    "SANDBOX_GRAPH_PAGE_SIZE",
    "SANDBOX_GRAPH_MAILBOX_CONCURRENCY",
    "SANDBOX_GRAPH_MAILBOX_SUBSCRIPTIONS",
    "SANDBOX_GOOGLE_CHANNEL_SECONDS",
    "SANDBOX_GRAPH_SUBSCRIPTION_SECONDS",
    "SANDBOX_PUSH_RETRIES",
)


def config_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The sandbox settings given in ``environ`` (whole numbers read as such)."""
    config: dict[str, Any] = {name: environ[name] for name in _ENV_SETTINGS if environ.get(name)}
    for name in _ENV_NUMBERS:
        if environ.get(name):
            config[name] = int(environ[name])
    return config


def service_settings(base_url: str) -> dict[str, str]:
    """The service's environment variables that point it at a sandbox on ``base_url``."""
    return {
        "GOOGLE_AUTHORIZE_URL": f"{base_url}/google/o/oauth2/v2/auth",
        "GOOGLE_TOKEN_URL": f"{base_url}/google/token",
        "GOOGLE_REVOKE_URL": f"{base_url}/google/revoke",
        "GOOGLE_API_BASE_URL": f"{base_url}/google/calendar/v3",
        "GOOGLE_BATCH_URL": f"{base_url}/google/batch/calendar/v3",
        "OUTLOOK_AUTHORITY_URL": f"{base_url}/microsoft",
        "OUTLOOK_GRAPH_BASE_URL": f"{base_url}/graph/v1.0",
    }


@sandbox_cli.command("run")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=18090, show_default=True, type=int, help="Port to listen on.")
def run_command(host: str, port: int) -> None:
    """Serve the provider sandbox (threaded) until interrupted."""
    app = create_sandbox_app(config_from_env(os.environ))
    base_url = f"http://{host}:{port}"
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.secho(
            "Warning: the sandbox has no authentication on /sandbox; keep it on loopback.",
            fg="yellow",
            err=True,
        )
    click.echo(f"Provider sandbox on {base_url}")
    click.echo(f"Point the service at it with PROVIDER_SANDBOX_URL={base_url}, which sets:")
    for name, value in service_settings(base_url).items():
        click.echo(f"  {name}={value}")
    run_simple(host, port, app, threaded=True, use_reloader=False)
