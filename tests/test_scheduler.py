"""The scheduler: rounds over due and stale connections, the first sync after connecting,
probes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select, update

from calendar_connections import scheduler
from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, utcnow
from calendar_connections.scheduler import SyncScheduler, get_scheduler, run_round
from calendar_connections.sync import lease

from .support.sandbox import CONNECTIONS, sandbox_connect


def connect_users(app: Flask, token_for: Callable[[str], dict[str, str]], users: list[str]) -> None:
    client = app.test_client()
    for user in users:
        sandbox_connect(client, token_for(user), "google")


def statuses(app: Flask) -> dict[str, str]:
    with app.app_context():
        rows = db.session.execute(select(CalendarConnection)).scalars()
        return {row.user_id: row.last_sync_status for row in rows}


def test_round_syncs_stale_connections_oldest_first_and_skips_fresh_ones(
    sandboxed_app: Flask, token_for: Callable[[str], dict[str, str]]
) -> None:
    connect_users(sandboxed_app, token_for, ["a", "b", "c", "d"])
    with sandboxed_app.app_context():
        now = utcnow()
        ages = {"a": timedelta(minutes=10), "b": timedelta(hours=2), "c": timedelta(seconds=30)}
        for user, age in ages.items():
            db.session.execute(
                update(CalendarConnection)
                .where(CalendarConnection.user_id == user)
                .values(last_sync_at=now - age)
            )
        db.session.commit()

    synced: list[str] = []
    first = run_round(sandboxed_app, limit=2, on_result=lambda r: synced.append(r.provider))
    assert first.claimed == 2
    # Never synced (d) first, then the oldest (b).
    assert statuses(sandboxed_app)["d"] == "SUCCESS"
    with sandboxed_app.app_context():
        b = db.session.execute(
            select(CalendarConnection).where(CalendarConnection.user_id == "b")
        ).scalar_one()
        assert b.last_sync_status == "SUCCESS"
    second = run_round(sandboxed_app)
    assert second.claimed == 1  # a; c synced 30 s ago is fresh
    assert statuses(sandboxed_app)["c"] == "PENDING"
    assert run_round(sandboxed_app).claimed == 0


def test_round_leaves_a_connection_another_sync_holds(
    sandboxed_app: Flask, token_for: Callable[[str], dict[str, str]]
) -> None:
    connect_users(sandboxed_app, token_for, ["a", "b"])
    with sandboxed_app.app_context():
        held = db.session.execute(
            select(CalendarConnection.id).where(CalendarConnection.user_id == "a")
        ).scalar_one()
        assert lease.claim(db.session(), held, "someone-else", timedelta(minutes=1))
    assert run_round(sandboxed_app).claimed == 1
    assert statuses(sandboxed_app) == {"a": "PENDING", "b": "SUCCESS"}


def test_without_scheduler_nothing_syncs_on_its_own(
    sandboxed_app: Flask, token_for: Callable[[str], dict[str, str]]
) -> None:
    assert sandboxed_app.config["SCHEDULER_ENABLED"] is False
    assert get_scheduler(sandboxed_app) is None
    connect_users(sandboxed_app, token_for, ["a"])
    time.sleep(0.3)
    assert statuses(sandboxed_app) == {"a": "PENDING"}


def test_a_new_connection_is_synced_right_after_its_callback(
    make_app: Callable[..., Flask],
    sandbox: Flask,
    token_for: Callable[[str], dict[str, str]],
) -> None:
    app = make_app(
        PROVIDER_SANDBOX_URL="http://sandbox.test", SCHEDULER_ENABLED=True, SYNC_INTERVAL=3600
    )
    scheduler = get_scheduler(app)
    assert isinstance(scheduler, SyncScheduler)
    scheduler.start()
    try:
        time.sleep(0.3)  # the start-up round finds nothing to do
        connect_users(app, token_for, ["a"])
        deadline = time.monotonic() + 10
        while statuses(app)["a"] != "SUCCESS" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert statuses(app)["a"] == "SUCCESS"
    finally:
        scheduler.shutdown()
    with app.app_context():
        row = db.session.execute(select(CalendarConnection)).scalar_one()
        assert row.lease_owner is None  # released


def test_scheduler_shutdown_is_clean_and_idempotent(make_app: Callable[..., Flask]) -> None:
    app = make_app(SCHEDULER_ENABLED=True, SYNC_INTERVAL=3600)
    scheduler = get_scheduler(app)
    assert scheduler is not None
    scheduler.start()
    scheduler.start()
    scheduler.shutdown()
    scheduler.shutdown()


def test_health_probes(client: object) -> None:
    assert client.get("/healthz").json == {"status": "ok"}  # type: ignore[attr-defined]
    assert client.get("/readyz").json == {"status": "ready"}  # type: ignore[attr-defined]


def test_readyz_is_a_503_problem_when_the_database_is_gone(make_app: Callable[..., Flask]) -> None:
    bad = make_app(DATABASE_URL="sqlite:////nonexistent-dir/x.sqlite")
    response = bad.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_need_no_token(client: object, path: str) -> None:
    assert client.get(path).status_code == 200  # type: ignore[attr-defined]


def test_status_endpoint_still_lists_after_a_round(
    sandboxed_app: Flask, token_for: Callable[[str], dict[str, str]]
) -> None:
    connect_users(sandboxed_app, token_for, ["a"])
    run_round(sandboxed_app)
    body = sandboxed_app.test_client().get(f"{CONNECTIONS}/status", headers=token_for("a")).json
    assert body[0]["lastSyncStatus"] == "SUCCESS" and body[0]["lastSyncAt"]


# The scheduler's claim: due, or stale by SYNC_STALE_AFTER without push and
# SYNC_STALE_AFTER_PUSH with it.


def test_the_claim_takes_due_connections_and_honours_the_push_staleness(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(SYNC_STALE_AFTER=300, SYNC_STALE_AFTER_PUSH=3600)
    now = utcnow()
    ago = {
        "fresh": timedelta(seconds=30),
        "old": timedelta(minutes=10),
        "older": timedelta(hours=2),
    }
    later, earlier = now + timedelta(days=1), now - timedelta(minutes=1)
    rows = {
        # name: (last synced, push_expires_at, push_due_at, claimed?)
        "polled fresh": ("fresh", None, None, False),
        "polled stale": ("old", None, None, True),
        "push fresh": ("old", later, None, False),
        "push stale": ("older", later, None, True),
        "push expired": ("old", earlier, None, True),
        "push due": ("fresh", later, earlier, True),
        "due in the future": ("fresh", later, now + timedelta(minutes=1), False),
    }
    with app.app_context():
        for name, (age, expires, due, _) in rows.items():
            db.session.add(
                CalendarConnection(
                    user_id=name,
                    provider="GOOGLE",
                    connected=True,
                    last_sync_at=now - ago[age],
                    push_expires_at=expires,
                    push_due_at=due,
                )
            )
        db.session.add(
            CalendarConnection(
                user_id="disconnected", provider="GOOGLE", connected=False, push_due_at=earlier
            )
        )
        db.session.commit()
    claimed: list[str] = []

    def record(app: Flask, connection_id: int, owner: str | None = None) -> None:
        with app.app_context():
            row = db.session.get(CalendarConnection, connection_id)
            assert row is not None and row.lease_owner == owner and row.push_due_at is None
            claimed.append(row.user_id)
            db.session.remove()

    monkeypatch.setattr(scheduler, "sync_connection_by_id", record)
    outcome = run_round(app)
    assert outcome.claimed == len(claimed)
    assert sorted(claimed) == sorted(name for name, row in rows.items() if row[3])
