"""The renewal claim: one statement on PostgreSQL, walking ``ix_push_channel_renew_at`` over
the due range only (EXPLAIN), among many channels of which a few are due."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event as sa_event

from calendar_connections.extensions import db
from calendar_connections.models import utcnow
from calendar_connections.sync.channels import claim_due_channels

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not (os.environ.get("DATABASE_URL") or "").startswith("postgresql"),
        reason="PostgreSQL's planner",
    ),
]

CHANNELS = 10_000  # one per connection
DUE = 20


def fill(engine: sa.Engine) -> None:
    """Connections with one channel each; DUE of them due for renewal, the rest in days."""
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO calendar_connection (user_id, provider, connected, last_sync_at,"
                " last_sync_status, created_at, updated_at, full_round, push_expires_at)"
                " SELECT 'user-' || n, 'GOOGLE', true, :now, 'SUCCESS', :now, :now, 1, :expiry"
                " FROM generate_series(1, :n) AS n"
            ),
            {"n": CHANNELS, "now": now, "expiry": now + timedelta(days=7)},
        )
        conn.execute(
            sa.text(
                "INSERT INTO push_channel (connection_id, provider_channel_id, secret_hash,"
                " expires_at, renew_at, created_at)"
                " SELECT id, 'channel-' || id, md5(id::text) || md5(id::text), :expiry,"
                " CASE WHEN row_number() OVER (ORDER BY id) <= :due THEN :past"
                " ELSE :later END, :now FROM calendar_connection"
            ),
            {
                "due": DUE,
                "now": now,
                "past": now - timedelta(minutes=1),
                "later": now + timedelta(days=3),
                "expiry": now + timedelta(days=7),
            },
        )
        conn.exec_driver_sql("ANALYZE push_channel")


def test_the_renewal_claim_is_one_statement_on_its_index(app: Flask) -> None:
    with app.app_context():
        fill(db.engine)
        sent: list[tuple[str, Any]] = []

        def record(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
            sent.append((statement, parameters))

        sa_event.listen(db.engine, "before_cursor_execute", record)
        try:
            claimed = claim_due_channels(
                db.session(), now=utcnow(), hold=timedelta(minutes=2), limit=100
            )
        finally:
            sa_event.remove(db.engine, "before_cursor_execute", record)
        assert len(claimed) == DUE
        [(statement, parameters)] = sent  # one statement: the UPDATE, its candidates within
        assert statement.lstrip().startswith("UPDATE") and "SKIP LOCKED" in statement
        with db.engine.connect() as conn:
            plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars())
        assert "ix_push_channel_renew_at" in plan, plan
        assert "Seq Scan on push_channel" not in plan, plan
