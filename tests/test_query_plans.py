"""The push's pending query and the scheduler's claim: one statement each, on their indexes
(PostgreSQL's EXPLAIN), with statistics that are fresh and with statistics taken while the
tables were still empty (as after a bulk load that autovacuum has not caught up with)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event as sa_event

from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, utcnow
from calendar_connections.sync import lease
from calendar_connections.sync.push import pending_events

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not (os.environ.get("DATABASE_URL") or "").startswith("postgresql"),
        reason="PostgreSQL's planner",
    ),
]

USER = "planned"
CALENDAR = 5_000  # the synced user's events, all linked and synced: a no-change push
OTHERS = 15_000  # other users' events
CONNECTIONS = 20_000  # for the claim, of which STALE are stale
STALE = 100
TABLES = ("calendar_event", "event_link", "calendar_connection")


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (and their parameters) sent while the block runs."""
    sent: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)


def explain(engine: sa.Engine, statement: str, parameters: Any) -> str:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars()
        return "\n".join(rows)


NEVER_ANALYZED = "never analyzed"  # as after a bulk load into a new table
ANALYZED_EMPTY = "analyzed while empty"  # as after a bulk load that autovacuum has not seen
FRESH = "fresh statistics"


def fill(engine: sa.Engine, statistics: str) -> int:
    """The synced user's connection and calendar, other users' events, and many connections
    of which a few are stale, with ``statistics``; the synced connection's id."""
    now = utcnow()
    with engine.begin() as conn:
        if statistics == NEVER_ANALYZED:
            # A new relation file: the table's size statistics are those of a new table.
            conn.exec_driver_sql(f"TRUNCATE {', '.join(TABLES)} CASCADE")
        if statistics == ANALYZED_EMPTY:
            for table in TABLES:
                conn.exec_driver_sql(f"ANALYZE {table}")
        # Every connection but the synced one was synced a minute ago, the stale ones a day ago.
        conn.execute(
            sa.text(
                "INSERT INTO calendar_connection (user_id, provider, connected, last_sync_at,"
                " last_sync_status, created_at, updated_at, full_round)"
                " SELECT 'user-' || n, 'GOOGLE', true,"
                " CASE WHEN n <= :stale THEN :day_ago ELSE :minute_ago END,"
                " 'SUCCESS', :now, :now, 1 FROM generate_series(1, :n) AS n"
            ),
            {
                "stale": STALE,
                "n": CONNECTIONS,
                "day_ago": now - timedelta(days=1),
                "minute_ago": now - timedelta(minutes=1),
                "now": now,
            },
        )
        connection_id = conn.execute(
            sa.text(
                "INSERT INTO calendar_connection (user_id, provider, connected, last_sync_at,"
                " last_sync_status, created_at, updated_at, full_round)"
                " VALUES (:user, 'GOOGLE', true, :now, 'SUCCESS', :now, :now, 1) RETURNING id"
            ),
            {"user": USER, "now": now},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO calendar_event (uid, user_id, title, all_day, start_at, end_at,"
                " status, origin, version, created_at, updated_at)"
                " SELECT md5(n::text), CASE WHEN n <= :calendar THEN :user ELSE 'other-' || n % 50"
                " END, 'event ' || n, false, :now + n * interval '1 hour',"
                " :now + n * interval '1 hour' + interval '30 minutes',"
                " 'confirmed', 'CRM', 1, :now, :now FROM generate_series(1, :n) AS n"
            ),
            {"calendar": CALENDAR, "user": USER, "now": now, "n": CALENDAR + OTHERS},
        )
        conn.execute(
            sa.text(
                "INSERT INTO event_link (connection_id, event_id, external_id, kind,"
                " synced_version, seen_round)"
                " SELECT :connection, id, 'ext-' || id, 'event', version, 1"
                " FROM calendar_event WHERE user_id = :user"
            ),
            {"connection": connection_id, "user": USER},
        )
        if statistics == FRESH:
            for table in TABLES:
                conn.exec_driver_sql(f"ANALYZE {table}")
    return int(connection_id)


@pytest.fixture(params=[NEVER_ANALYZED, ANALYZED_EMPTY, FRESH])
def filled(app: Flask, request: pytest.FixtureRequest) -> Callable[[], int]:
    def load() -> int:
        return fill(db.engine, request.param)

    return load


# The claim's table is rewritten by every sync, so autovacuum keeps it analyzed; never analyzed
# at all, the planner's default selectivities make a sequential scan look cheaper (README,
# "Scheduler").
@pytest.fixture(params=[ANALYZED_EMPTY, FRESH])
def filled_analyzed(app: Flask, request: pytest.FixtureRequest) -> Callable[[], int]:
    def load() -> int:
        return fill(db.engine, request.param)

    return load


def assert_no_seq_scan(plan: str, *tables: str) -> None:
    for table in tables:
        assert f"Seq Scan on {table}" not in plan, plan


def test_the_pending_query_is_one_statement_probing_the_link_index(
    app: Flask, filled: Callable[[], int]
) -> None:
    with app.app_context():
        connection_id = filled()
        connection = db.session.get(CalendarConnection, connection_id)
        assert connection is not None
        with statements(db.engine) as sent:
            pending = pending_events(db.session, connection, utcnow() - timedelta(days=30))
        assert pending == []
        assert len(sent) == 1
        plan = explain(db.engine, *sent[0])
    assert "ix_event_link_event_id_connection_id_kind" in plan, plan
    assert "pk_event_link" not in plan, plan
    assert_no_seq_scan(plan, "calendar_event", "event_link")
    # Each event's link is looked up on its own: no join whose inner side is every link of the
    # connection, rescanned per event (the plan stale statistics used to give).
    assert "Materialize" not in plan, plan


def test_the_pending_query_finds_changed_and_new_events_among_synced_ones(
    app: Flask, filled: Callable[[], int]
) -> None:
    with app.app_context():
        connection_id = filled()
        connection = db.session.get(CalendarConnection, connection_id)
        assert connection is not None
        changed, linked = db.session.execute(
            sa.text(
                "SELECT e.id, l.id FROM calendar_event e JOIN event_link l ON l.event_id = e.id"
                " WHERE e.user_id = :user ORDER BY e.id LIMIT 1"
            ),
            {"user": USER},
        ).one()
        db.session.execute(
            sa.text("UPDATE calendar_event SET version = version + 1 WHERE id = :id"),
            {"id": changed},
        )
        new = db.session.execute(
            sa.text(
                "INSERT INTO calendar_event (uid, user_id, title, all_day, start_at, end_at,"
                " status, origin, version, created_at, updated_at) VALUES ('new', :user, 'new',"
                " false, :now, :now, 'confirmed', 'CRM', 1, :now, :now) RETURNING id"
            ),
            {"user": USER, "now": utcnow() + timedelta(days=1)},
        ).scalar_one()
        pending = pending_events(db.session, connection, utcnow() - timedelta(days=30))
        db.session.rollback()
    assert pending == [(changed, linked), (new, None)]


def test_the_claim_is_one_update_walking_the_sync_order_index(
    app: Flask, filled_analyzed: Callable[[], int]
) -> None:
    with app.app_context():
        filled_analyzed()
        with statements(db.engine) as sent:
            claimed = lease.claim_stale(
                db.session(),
                owner="planner",
                ttl=timedelta(minutes=5),
                stale_before=utcnow() - timedelta(hours=1),
                limit=STALE,
            )
        # Every stale connection, and no other (the synced user's is fresh too).
        assert len(claimed) == STALE
        stale = db.session.execute(
            sa.text("SELECT id FROM calendar_connection WHERE user_id LIKE 'user-%' ORDER BY id")
        ).scalars()
        assert sorted(claimed) == list(stale)[:STALE]
        assert [sql.split()[0] for sql, _ in sent] == ["UPDATE"]
        assert "FOR UPDATE SKIP LOCKED" in sent[0][0]
        plan = explain(db.engine, *sent[0])
    assert "ix_calendar_connection_sync_order" in plan, plan
    assert_no_seq_scan(plan, "calendar_connection")
    # Only the stale range of the index is read, whichever way the planner walks it.
    assert "Index Cond: (COALESCE(last_sync_at" in plan, plan


PUSHED = 20_000  # connections with push active, synced within SYNC_STALE_AFTER_PUSH
DUE = 20  # of them, notified since their last sync
PUSH_STALE = 10  # of them, not synced for longer than SYNC_STALE_AFTER_PUSH


def fill_pushed(engine: sa.Engine, statistics: str) -> set[int]:
    """Connections with push active, most synced minutes ago, a few notified, a few stale
    beyond SYNC_STALE_AFTER_PUSH; the ids of the notified and stale ones."""
    now = utcnow()
    with engine.begin() as conn:
        if statistics == ANALYZED_EMPTY:
            conn.exec_driver_sql("ANALYZE calendar_connection")
        conn.execute(
            sa.text(
                "INSERT INTO calendar_connection (user_id, provider, connected, last_sync_at,"
                " last_sync_status, created_at, updated_at, full_round, push_expires_at,"
                " push_due_at)"
                " SELECT 'pushed-' || n, 'GOOGLE', true,"
                " CASE WHEN n <= :stale THEN :hours_ago"
                " ELSE :now - (n % 3500 + 60) * interval '1 second' END,"
                " 'SUCCESS', :now, :now, 1, :tomorrow,"
                " CASE WHEN n > :stale AND n <= :stale + :due THEN :now END"
                " FROM generate_series(1, :n) AS n"
            ),
            {
                "n": PUSHED,
                "stale": PUSH_STALE,
                "due": DUE,
                "hours_ago": now - timedelta(hours=2),
                "tomorrow": now + timedelta(days=1),
                "now": now,
            },
        )
        if statistics == FRESH:
            conn.exec_driver_sql("ANALYZE calendar_connection")
        return set(
            conn.execute(
                sa.text(
                    "SELECT id FROM calendar_connection"
                    " WHERE push_due_at IS NOT NULL OR last_sync_at < :cutoff"
                ),
                {"cutoff": now - timedelta(hours=1)},
            ).scalars()
        )


@pytest.mark.parametrize("statistics", [ANALYZED_EMPTY, FRESH])
def test_the_claim_with_push_takes_exactly_the_due_and_stale_on_their_indexes(
    app: Flask, statistics: str
) -> None:
    with app.app_context():
        expected = fill_pushed(db.engine, statistics)
        assert len(expected) == DUE + PUSH_STALE
        with statements(db.engine) as sent:
            claimed = lease.claim_stale(
                db.session(),
                owner="planner",
                ttl=timedelta(minutes=5),
                stale_before=utcnow() - timedelta(minutes=5),
                stale_before_push=utcnow() - timedelta(hours=1),
                limit=100,
            )
        assert set(claimed) == expected
        assert [sql.split()[0] for sql, _ in sent] == ["UPDATE"]
        assert sent[0][0].count("FOR UPDATE SKIP LOCKED") == 2
        plan = explain(db.engine, *sent[0])
        due_left = db.session.execute(
            sa.text("SELECT count(*) FROM calendar_connection WHERE push_due_at IS NOT NULL")
        ).scalar_one()
    assert due_left == 0  # the claim cleared the marks it took
    assert "ix_calendar_connection_push_due_at" in plan, plan
    assert "ix_calendar_connection_sync_order" in plan, plan
    assert_no_seq_scan(plan, "calendar_connection")
