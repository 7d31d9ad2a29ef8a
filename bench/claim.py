"""The scheduler's claim at scale: ``limit`` stale connections among many, on PostgreSQL.

    python -m bench.claim [--connections N] [--stale K]

Milliseconds (median of 3) and database statements of one ``claim_stale`` round, on a table
just filled and analyzed. Uses ``BENCH_PG_URL`` like ``python -m bench``.
"""

from __future__ import annotations

import argparse
import statistics
import time
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
        counted = [0]

        def count(*_: Any) -> None:
            counted[0] += 1

        seconds, statements = [], []
        for _ in range(3):
            counted[0] = 0
            sa.event.listen(db.engine, "before_cursor_execute", count)
            started = time.perf_counter()
            claimed = lease.claim_stale(
                db.session(),
                owner="bench",
                ttl=timedelta(minutes=5),
                stale_before=now - timedelta(hours=1),
                limit=stale,
            )
            seconds.append(time.perf_counter() - started)
            sa.event.remove(db.engine, "before_cursor_execute", count)
            statements.append(counted[0])
            if len(claimed) != stale:
                raise SystemExit(f"claimed {len(claimed)} of {stale}")
            with db.engine.begin() as conn:
                conn.exec_driver_sql("UPDATE calendar_connection SET lease_owner = NULL")
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM calendar_connection")
        db.session.remove()
    return statistics.median(seconds), int(statistics.median(statements))


def main(argv: list[str] | None = None) -> int:
    import tempfile
    from pathlib import Path

    from .__main__ import make_app, postgres_url
    from .fake_providers import serving

    parser = argparse.ArgumentParser(prog="python -m bench.claim")
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--stale", type=int, default=100)
    args = parser.parse_args(argv)
    url = postgres_url()
    if url is None:
        raise SystemExit("PostgreSQL did not answer")
    with serving(1) as fake, tempfile.TemporaryDirectory() as tmp:
        app = make_app(url, fake, Path(tmp))
        seconds, statements = measure_claim(app, args.connections, args.stale)
    print(
        f"scheduler claim of {args.stale:,} stale among {args.connections:,} connections"
        f" (PostgreSQL): {seconds * 1000:.1f} ms, {statements} statements"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
