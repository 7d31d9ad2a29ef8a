"""The scheduler's claim at scale: ``limit`` stale connections among many, on PostgreSQL;
and among connections with push active, exactly the due ones.

    python -m bench.claim [--connections N] [--stale K] [--push-connections N]

Milliseconds (median of 3) and database statements of one ``claim_stale`` round, on a table
just filled and analyzed. Uses ``BENCH_PG_URL`` like ``python -m bench``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from calendar_connections.extensions import db
from calendar_connections.models import utcnow
from calendar_connections.sync import lease


def measure_claim(app: Flask, connections: int, stale: int) -> tuple[float, int]:
    """Median seconds and statements of claiming the ``stale`` connections among
    ``connections``; emptied afterwards."""
    now = utcnow()
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO calendar_connection (user_id, provider, connected, last_sync_at,"
                    " last_sync_status, created_at, updated_at, full_round)"
                    " SELECT 'claim-' || n, 'GOOGLE', true,"
                    " CASE WHEN n % (:n / :stale) = 0 THEN :day_ago ELSE :minute_ago END,"
                    " 'SUCCESS', :now, :now, 1 FROM generate_series(1, :n) AS n"
                ),
                {
                    "n": connections,
                    "stale": stale,
                    "day_ago": now - timedelta(days=1),
                    "minute_ago": now - timedelta(minutes=1),
                    "now": now,
                },
            )
            conn.exec_driver_sql("ANALYZE calendar_connection")

        def claim() -> list[int]:
            return lease.claim_stale(
                db.session(),
                owner="bench",
                ttl=timedelta(minutes=5),
                stale_before=now - timedelta(hours=1),
                limit=stale,
            )

        def release(claimed: list[int]) -> None:
            if len(claimed) != stale:
                raise SystemExit(f"claimed {len(claimed)} of {stale}")
            with db.engine.begin() as conn:
                conn.exec_driver_sql("UPDATE calendar_connection SET lease_owner = NULL")

        return _median_rounds(claim, release)


def _median_rounds(
    claim: Callable[[], list[int]], release: Callable[[list[int]], None]
) -> tuple[float, int]:
    """Median seconds and statements of three rounds of ``claim``, each checked and undone by
    ``release``; the table emptied afterwards. In an app context."""
    counted = [0]

    def count(*_: Any) -> None:
        counted[0] += 1

    seconds, statements = [], []
    for _ in range(3):
        counted[0] = 0
        sa.event.listen(db.engine, "before_cursor_execute", count)
        started = time.perf_counter()
        claimed = claim()
        seconds.append(time.perf_counter() - started)
        sa.event.remove(db.engine, "before_cursor_execute", count)
        statements.append(counted[0])
        release(claimed)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM calendar_connection")
    db.session.remove()
    return statistics.median(seconds), int(statistics.median(statements))


# Of the connections with push active: notified since their last sync, and not synced for
# longer than SYNC_STALE_AFTER_PUSH (their notifications were lost); the others synced within
# the last SYNC_STALE_AFTER_PUSH, most of them longer ago than SYNC_STALE_AFTER.
PUSH_DUE = 20
PUSH_STALE = 10
STALE_AFTER = timedelta(seconds=300)
STALE_AFTER_PUSH = timedelta(seconds=3600)


def measure_push_claim(app: Flask, connections: int) -> tuple[float, int]:
    """Median seconds and statements of a round among ``connections`` with push active,
    which must claim exactly the PUSH_DUE notified and the PUSH_STALE stale ones; emptied
    afterwards."""
    now = utcnow()
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO calendar_connection (user_id, provider, connected, last_sync_at,"
                    " last_sync_status, created_at, updated_at, full_round, push_expires_at,"
                    " push_due_at)"
                    " SELECT 'push-' || n, 'GOOGLE', true,"
                    " CASE WHEN n <= :stale THEN :hours_ago"
                    " ELSE :now - (n % 3500 + 60) * interval '1 second' END,"
                    " 'SUCCESS', :now, :now, 1, :tomorrow,"
                    " CASE WHEN n > :stale AND n <= :stale + :due THEN :now END"
                    " FROM generate_series(1, :n) AS n"
                ),
                {
                    "n": connections,
                    "stale": PUSH_STALE,
                    "due": PUSH_DUE,
                    "hours_ago": now - 2 * STALE_AFTER_PUSH,
                    "tomorrow": now + timedelta(days=1),
                    "now": now,
                },
            )
            conn.exec_driver_sql("ANALYZE calendar_connection")
            due = list(
                conn.execute(
                    sa.text("SELECT id FROM calendar_connection WHERE push_due_at IS NOT NULL")
                ).scalars()
            )
            stale = list(
                conn.execute(
                    sa.text("SELECT id FROM calendar_connection WHERE last_sync_at < :cutoff"),
                    {"cutoff": now - STALE_AFTER_PUSH},
                ).scalars()
            )
        expected = set(due) | set(stale)

        def claim() -> list[int]:
            return lease.claim_stale(
                db.session(),
                owner="bench",
                ttl=timedelta(minutes=5),
                stale_before=utcnow() - STALE_AFTER,
                stale_before_push=utcnow() - STALE_AFTER_PUSH,
                limit=100,
            )

        def release(claimed: list[int]) -> None:
            if set(claimed) != expected or len(expected) != PUSH_DUE + PUSH_STALE:
                raise SystemExit(f"claimed {len(claimed)}, expected {len(expected)}")
            with db.engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE calendar_connection SET lease_owner = NULL,"
                        " push_due_at = CASE WHEN id IN :due THEN :now END WHERE id IN :claimed"
                    ).bindparams(
                        sa.bindparam("due", expanding=True), sa.bindparam("claimed", expanding=True)
                    ),
                    {"due": due, "claimed": claimed, "now": now},
                )

        return _median_rounds(claim, release)


def main(argv: list[str] | None = None) -> int:
    import tempfile
    from pathlib import Path

    from .__main__ import make_app, postgres_url
    from .fake_providers import serving

    parser = argparse.ArgumentParser(prog="python -m bench.claim")
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--stale", type=int, default=100)
    parser.add_argument("--push-connections", type=int, default=10_000)
    args = parser.parse_args(argv)
    url = postgres_url()
    if url is None:
        raise SystemExit("PostgreSQL did not answer")
    with serving(1) as fake, tempfile.TemporaryDirectory() as tmp:
        app = make_app(url, fake, Path(tmp))
        seconds, statements = measure_claim(app, args.connections, args.stale)
        push_seconds, push_statements = measure_push_claim(app, args.push_connections)
    print(
        f"scheduler claim of {args.stale:,} stale among {args.connections:,} connections"
        f" (PostgreSQL): {seconds * 1000:.1f} ms, {statements} statements"
    )
    print(push_claim_row(args.push_connections, push_seconds, push_statements))
    return 0


def push_claim_row(connections: int, seconds: float, statements: int) -> str:
    """The bench's line for ``measure_push_claim``."""
    return (
        f"scheduler claim among {connections:,} connections with push: the {PUSH_DUE} notified"
        f" and {PUSH_STALE} stale beyond SYNC_STALE_AFTER_PUSH, {seconds * 1000:.1f} ms,"
        f" {statements} statements"
    )


if __name__ == "__main__":
    raise SystemExit(main())
