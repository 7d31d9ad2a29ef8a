"""Two scheduler processes on one database share the work and sync each connection once."""

from __future__ import annotations

import re
import time

import pytest
import requests
import sqlalchemy as sa

from ..support.stack import BIN, Stack, connect, issue_token, wait_until

pytestmark = pytest.mark.e2e

GOOGLE_USERS = 10
OUTLOOK_USERS = 6


def synced_connections(database_url: str) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM calendar_connection "
                        "WHERE last_sync_status = 'SUCCESS' AND last_sync_at IS NOT NULL"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_two_schedulers_sync_every_stale_connection_exactly_once(stack: Stack) -> None:
    """Every stale connection is synced once per round, and both schedulers take a share."""
    stack.start_sandbox()
    web = stack.start_service()
    for number in range(max(GOOGLE_USERS, OUTLOOK_USERS)):
        token = issue_token(stack, f"user-{number}")
        if number < GOOGLE_USERS:
            connect(stack, token, "google")
        if number < OUTLOOK_USERS:
            connect(stack, token, "outlook")
    web.stop()
    requests.delete(f"{stack.sandbox_url}/sandbox/requests", timeout=10).raise_for_status()

    total = GOOGLE_USERS + OUTLOOK_USERS
    settings = {
        "SYNC_INTERVAL": "1",
        "SYNC_STALE_AFTER": "300",
        "SYNC_BATCH_SIZE": "2",
        "SYNC_CONCURRENCY": "2",
    }
    first = stack.start("scheduler-1", [str(BIN / "flask"), "calendar", "scheduler"], **settings)
    second = stack.start("scheduler-2", [str(BIN / "flask"), "calendar", "scheduler"], **settings)
    database_url = stack.env["DATABASE_URL"]
    wait_until(lambda: synced_connections(database_url) == total, 90, "every connection synced")
    time.sleep(3)  # more rounds: nothing is stale any more, so nothing may be synced again
    first.stop()
    second.stop()

    log = requests.get(f"{stack.sandbox_url}/sandbox/requests", timeout=10).json()
    listings = [
        entry
        for entry in log
        if entry["method"] == "GET"
        and (
            re.fullmatch(r"/google/calendar/v3/calendars/[^/]+/events", entry["path"])
            or entry["path"].endswith("/calendarView/delta")
        )
    ]
    google = [e for e in listings if e["path"].startswith("/google/")]
    outlook = [e for e in listings if e["path"].endswith("/calendarView/delta")]
    assert len(google) == GOOGLE_USERS
    assert len(outlook) == OUTLOOK_USERS

    shares = []
    for process in (first, second):
        output = process.output()
        assert "Traceback" not in output, output
        shares.append(sum(int(n) for n in re.findall(r"scheduler round: (\d+) synced", output)))
    assert sum(shares) == total
    assert all(share > 0 for share in shares), shares
