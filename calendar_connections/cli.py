"""Operator commands: `flask calendar ...`, `flask auth ...`, `flask tokens ...`."""

from __future__ import annotations

import json
import logging
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from .auth import issue_token
from .config import get_settings
from .crypto import get_cipher
from .extensions import db
from .models import CalendarConnection, Provider, utcnow
from .operations import connections
from .operations.connections import push_active
from .operations.tokens import rotate_keys
from .providers.registry import label
from .scheduler import SyncScheduler, renew_push_channels, run_round
from .schemas.connections import SyncResultSchema
from .sync.channels import retire_channels
from .sync.engine import SyncAlreadyRunning
from .sync.service import NotConnected, sync_provider

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``5m``, ``1h`` or ``2d`` as a timedelta."""
    match = _DURATION.match(text.lower())
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration such as 300, 5m, 1h or 2d")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


class DurationType(click.ParamType[timedelta]):
    """A duration option: errors name the option (``--older-than``, ``--expires``)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        match = _DURATION.match(str(value).lower())
        if not match:
            self.fail(f"{value!r} is not a duration such as 300, 5m, 1h or 2d", param, ctx)
        return parse_duration(str(value))


class _HeldLogs(logging.Handler):
    """Keeps log records while a progress bar is drawn, then hands them on."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def logs_after_bar() -> Iterator[None]:
    """Log lines written while the bar is drawn come after it, never across it."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    held = _HeldLogs()
    for handler in handlers:
        root.removeHandler(handler)
    root.addHandler(held)
    try:
        yield
    finally:
        root.removeHandler(held)
        for handler in handlers:
            root.addHandler(handler)
        for record in held.records:
            root.handle(record)


class ProviderType(click.ParamType[Provider]):
    """GOOGLE or OUTLOOK, any case."""

    name = "provider"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        provider = Provider.parse(str(value))
        if provider is None:
            self.fail(f"{value!r} is not a provider: use GOOGLE or OUTLOOK", param, ctx)
        return provider


auth_cli = AppGroup("auth", help="Bearer tokens for local use.")
tokens_cli = AppGroup("tokens", help="Stored OAuth tokens.")
calendar_cli = AppGroup("calendar", help="Connections and their syncs.")


@auth_cli.command("issue-token")
@click.argument("user_id")
@click.option(
    "--expires",
    type=DurationType(),
    default="1h",
    show_default=True,
    help="Lifetime: 300, 5m, 1h, 2d.",
)
def issue_token_command(user_id: str, expires: timedelta) -> None:
    """Print a Bearer token for USER_ID, signed with the configured HS256 secret."""
    algorithm = get_settings().jwt_algorithm
    if not algorithm.startswith("HS"):
        raise click.ClickException(
            f"JWT_ALGORITHM is {algorithm}: tokens are issued by the CRM auth service, "
            "which holds the private key; this command only signs HS256 tokens."
        )
    if expires.total_seconds() <= 0:
        raise click.BadParameter("must be longer than zero", param_hint="'--expires'")
    click.echo(issue_token(user_id, expires))


@tokens_cli.command("rotate-keys")
def rotate_keys_command() -> None:
    """Re-encrypt every stored token under the first key of TOKEN_ENCRYPTION_KEYS."""
    outcome = rotate_keys(db.session(), get_cipher())
    db.session.commit()
    click.echo(
        f"Re-encrypted {outcome.rotated} token(s) and {outcome.rotated_states} pending "
        "authorization(s)."
    )
    if outcome.unreadable:
        click.echo(
            f"Skipped {len(outcome.unreadable)} token(s) no configured key can decrypt; "
            "these connections must reconnect:",
            err=True,
        )
        for stored in outcome.unreadable:
            click.echo(f"  {stored.connection.user_id} {stored.connection.provider}", err=True)


@calendar_cli.command("status")
@click.option("--user", "user_id", help="Only this CRM user's connections.")
def status_command(user_id: str | None) -> None:
    """Show connections and their last sync as a table."""
    query = select(CalendarConnection).order_by(
        CalendarConnection.user_id, CalendarConnection.provider
    )
    if user_id is not None:
        query = query.where(CalendarConnection.user_id == user_id)
    now = utcnow()
    rows = [
        (
            c.user_id,
            c.provider,
            "yes" if c.connected else "no",
            c.account_email or "-",
            c.last_sync_status,
            c.last_sync_at.isoformat(timespec="seconds") if c.last_sync_at else "never",
            _push_column(c, now),
            "; ".join(error for error in (c.last_sync_error, c.push_error) if error),
        )
        for c in db.session.execute(query).scalars()
    ]
    if not rows:
        click.echo("No connections." if user_id is None else f"No connections for {user_id}.")
        return
    header = ("USER", "PROVIDER", "CONNECTED", "ACCOUNT", "STATUS", "LAST SYNC", "PUSH", "ERROR")
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


def _push_column(connection: CalendarConnection, now: datetime) -> str:
    if push_active(connection.push_expires_at, now):
        assert connection.push_expires_at is not None
        return "until " + connection.push_expires_at.isoformat(timespec="seconds")
    return "off"


@calendar_cli.command("sync")
@click.option("--user", "user_id", required=True, help="CRM user id.")
@click.option("--provider", required=True, type=ProviderType(), help="GOOGLE or OUTLOOK.")
def sync_command(user_id: str, provider: Provider) -> None:
    """Sync one connection now and print the SyncResult."""
    try:
        result = sync_provider(db.session(), user_id, provider, get_settings(), get_cipher())
    except NotConnected as exc:
        raise click.ClickException(str(exc)) from exc
    except SyncAlreadyRunning as exc:
        raise click.ClickException("A sync of this connection is already running.") from exc
    click.echo(json.dumps(SyncResultSchema().dump(result), indent=2))
    if not result.success:
        raise SystemExit(1)


@calendar_cli.command("sync-stale")
@click.option(
    "--older-than",
    type=DurationType(),
    default=None,
    help="Stale after (300, 5m, 1h); SYNC_STALE_AFTER.",
)
def sync_stale_command(older_than: timedelta | None) -> None:
    """Sync every stale connection, with a progress bar and a summary."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    failures: list[str] = []
    with logs_after_bar(), click.progressbar(length=0, label="Syncing", show_pos=True) as bar:

        def on_claimed(total: int) -> None:
            bar.length = total
            bar.render_progress()

        def on_result(result: Any) -> None:
            bar.update(1)
            if not result.success:
                failures.append(f"{result.provider}: {result.error}")

        outcome = run_round(app, older_than=older_than, on_result=on_result, on_claimed=on_claimed)
    click.echo(
        f"{outcome.claimed} stale connection(s): {len(outcome.results) - outcome.failed} "
        f"synced, {outcome.failed} failed."
    )
    for failure in failures:
        click.echo(f"  failed: {failure}", err=True)
    if outcome.failed:
        raise SystemExit(1)


@calendar_cli.command("push-renew")
def push_renew_command() -> None:
    """Renew the push channels whose renewal time has come (the scheduler does it too).

    Without WEBHOOK_BASE_URL (push turned off), stop every channel still open instead.
    """
    settings = get_settings()
    if not settings.webhook_base_url:
        stopped = 0
        while batch := retire_channels(db.session(), settings, limit=settings.sync_batch_size):
            stopped += batch
        click.echo(
            f"WEBHOOK_BASE_URL is not set: stopped the push channels of {stopped} connection(s)."
        )
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    click.echo(f"{renew_push_channels(app)} push channel(s) renewed.")


@calendar_cli.command("disconnect")
@click.option("--user", "user_id", required=True, help="CRM user id.")
@click.option("--provider", required=True, type=ProviderType(), help="GOOGLE or OUTLOOK.")
def disconnect_command(user_id: str, provider: Provider) -> None:
    """Disconnect a user's provider: revoke where possible, forget tokens and sync state."""
    removed = connections.disconnect(
        db.session(), get_cipher(), user_id=user_id, provider=provider, settings=get_settings()
    )
    db.session.commit()
    click.echo(
        f"Disconnected {label(provider)} for {user_id}."
        if removed
        else f"{user_id} had no {label(provider)} connection."
    )


@calendar_cli.command("scheduler")
def scheduler_command() -> None:
    """Run the sync scheduler as a process of its own, until SIGTERM or Ctrl-C."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    scheduler = SyncScheduler(app)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    scheduler.start()
    click.echo(f"Scheduler running: a round every {scheduler.interval} s.")
    stop.wait()
    click.echo("Stopping: running syncs finish first.")
    scheduler.shutdown()


def init_app(app: Flask) -> None:
    """Register the command groups."""
    for group in (auth_cli, tokens_cli, calendar_cli):
        app.cli.add_command(group)
