"""Operator commands: `flask calendar ...` (and --help on every command)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import click
import pytest
import requests
from flask import Flask
from flask.cli import cli as flask_cli
from provider_sandbox.cli import sandbox_cli

from calendar_connections.cli import (
    auth_cli,
    calendar_cli,
    logs_after_bar,
    parse_duration,
    tokens_cli,
)
from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection

from .support.sandbox import SANDBOX, sandbox_connect, sandbox_insert_google


@pytest.fixture
def connected(sandboxed_app: Flask, token_for: Callable[[str], dict[str, str]]) -> Flask:
    client = sandboxed_app.test_client()
    sandbox_connect(client, token_for("ada"), "google")
    sandbox_connect(client, token_for("ada"), "outlook")
    sandbox_connect(client, token_for("bob"), "google")
    return sandboxed_app


@pytest.mark.parametrize(
    "group", [calendar_cli, auth_cli, tokens_cli, sandbox_cli], ids=lambda g: g.name
)
def test_every_command_has_help(app: Flask, group: click.Group) -> None:
    # Through the `flask` command itself: the sandbox's group comes from its entry point.
    runner = app.test_cli_runner()
    assert runner.invoke(flask_cli, args=[group.name, "--help"]).exit_code == 0
    for name in group.commands:
        result = runner.invoke(flask_cli, args=[group.name, name, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output


def test_status_shows_a_table_of_connections(connected: Flask) -> None:
    runner = connected.test_cli_runner()
    result = runner.invoke(args=["calendar", "status"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "USER",
        "PROVIDER",
        "CONNECTED",
        "ACCOUNT",
        "STATUS",
        "LAST",
        "SYNC",
        "PUSH",
        "ERROR",
    ]
    assert len(lines) == 4
    only_bob = runner.invoke(args=["calendar", "status", "--user", "bob"]).output.splitlines()
    assert len(only_bob) == 2 and only_bob[1].startswith("bob")
    assert "PENDING" in only_bob[1] and "never" in only_bob[1] and " off" in only_bob[1]
    nobody = runner.invoke(args=["calendar", "status", "--user", "carol"])
    assert "No connections for carol." in nobody.output


def test_sync_prints_the_sync_result(connected: Flask) -> None:
    sandbox_insert_google("sandbox.user@gmail.test", "Standup")
    runner = connected.test_cli_runner()
    result = runner.invoke(args=["calendar", "sync", "--user", "ada", "--provider", "google"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["provider"] == "GOOGLE" and body["success"] is True
    assert body["eventsCreated"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "carol", "--provider", "GOOGLE"], "not connected"),
        (["--user", "ada", "--provider", "yahoo"], "is not a provider"),
        (["--provider", "GOOGLE"], "Missing option '--user'"),
    ],
)
def test_sync_refuses_clearly(connected: Flask, args: list[str], message: str) -> None:
    result = connected.test_cli_runner().invoke(args=["calendar", "sync", *args])
    assert result.exit_code != 0
    assert message in result.output


def test_sync_stale_syncs_all_with_a_summary(connected: Flask) -> None:
    runner = connected.test_cli_runner()
    result = runner.invoke(args=["calendar", "sync-stale"])
    assert result.exit_code == 0, result.output
    assert "3 stale connection(s): 3 synced, 0 failed." in result.output
    again = runner.invoke(args=["calendar", "sync-stale", "--older-than", "5m"])
    assert "0 stale connection(s)" in again.output
    everything = runner.invoke(args=["calendar", "sync-stale", "--older-than", "0"])
    assert "3 stale connection(s): 3 synced" in everything.output


def test_sync_stale_exits_non_zero_when_a_sync_fails(connected: Flask) -> None:
    requests.post(f"{SANDBOX}/sandbox/revoke-grants", timeout=5).raise_for_status()
    requests.post(f"{SANDBOX}/sandbox/expire-access-tokens", timeout=5).raise_for_status()
    result = connected.test_cli_runner().invoke(args=["calendar", "sync-stale"])
    assert result.exit_code == 1
    assert "3 stale connection(s): 0 synced, 3 failed." in result.output
    assert "reconnect" in result.output
    with connected.app_context():
        rows = db.session.query(CalendarConnection).all()
        assert all(not row.connected and row.last_sync_status == "FAILED" for row in rows)


def test_disconnect_command(connected: Flask) -> None:
    runner = connected.test_cli_runner()
    result = runner.invoke(
        args=["calendar", "disconnect", "--user", "ada", "--provider", "outlook"]
    )
    assert result.exit_code == 0
    assert "Disconnected Outlook for ada." in result.output
    again = runner.invoke(args=["calendar", "disconnect", "--user", "ada", "--provider", "outlook"])
    assert "ada had no Outlook connection." in again.output


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("5m", 300), ("1h", 3600), ("2d", 172800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_sync_stale_shows_a_bar_with_its_total(
    connected: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    import click._termui_impl

    # The runner's output is no terminal: make the bar draw as it would on one.
    monkeypatch.setattr(click._termui_impl, "isatty", lambda stream: True)
    result = connected.test_cli_runner().invoke(args=["calendar", "sync-stale"])
    assert result.exit_code == 0, result.output
    assert "0/3" in result.output
    assert "3/3" in result.output


def test_log_lines_wait_until_the_bar_is_done() -> None:
    seen: list[str] = []

    class Remember(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    root = logging.getLogger()
    remember = Remember()
    root.addHandler(remember)
    try:
        with logs_after_bar():
            logging.getLogger("calendar_connections.sync").warning("during the bar")
            assert seen == []
        assert seen == ["during the bar"]
        assert remember in root.handlers
    finally:
        root.removeHandler(remember)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["calendar", "sync-stale", "--older-than", "soon"], "'--older-than'"),
        (["auth", "issue-token", "u", "--expires", "never"], "'--expires'"),
        (["auth", "issue-token", "u", "--expires", "0"], "'--expires'"),
    ],
)
def test_cli_errors_name_the_option(app: Flask, args: list[str], option: str) -> None:
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 2, result.output
    assert option in result.output
