"""`make bench`: the sync engine's cost as ratios to the provider I/O floor, measured in one run.

For each provider and database: a full pull of N events (default 10,000) through the service's
sync endpoint, against fake providers on loopback (see ``fake_providers``), and the floor: the
same pages fetched and JSON-decoded by a plain loop, no database. Repetitions alternate floor
and sync; the table shows medians, their ratio, and the database statements per pulled event.
Then the no-change incremental sync of that calendar, and a push of M new CRM events (default
1,000) with the provider requests it took per event; the peak memory of a full pull of N/4
and of N events (flat: a page at a time, see ``memory``); on PostgreSQL, the scheduler's claim
of 100 stale connections among 100,000 (see ``claim``). Last, the events list and the
connection status under gunicorn, in requests per second as a ratio to a bare Flask route (see
``reads``).

    python -m bench [--events N] [--repeat K]

PostgreSQL is measured too when ``BENCH_PG_URL`` (default: database ``bench`` on 127.0.0.1)
answers; the database is created if missing and emptied before each run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask
from flask_jwt_extended import create_access_token

from calendar_connections import create_app
from calendar_connections.crypto import get_cipher
from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, OAuthToken, utcnow
from calendar_connections.providers.google.batch import MAX_CALLS as GOOGLE_BATCH
from calendar_connections.providers.google.batch import Call, decode_answers, encode_batch
from calendar_connections.providers.outlook.batch import MAX_IN_FLIGHT as GRAPH_IN_FLIGHT
from calendar_connections.providers.outlook.batch import MAX_REQUESTS as GRAPH_BATCH
from calendar_connections.providers.outlook.batch import GraphCall, batch_body
from calendar_connections.providers.outlook.client import event_to_graph
from calendar_connections.providers.types import EventFields, EventPayload

from .claim import measure_claim, measure_push_claim, push_claim_row
from .fake_providers import FakeProviders, serving
from .memory import peak_mib
from .reads import measure_reads, print_rows

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
USER = "bench-user"
CLAIM_AMONG = 100_000
CLAIM_STALE = 100
CLAIM_PUSH = 10_000


def floor(listing: str, next_key: str, params: dict[str, Any] | None = None) -> float:
    """Seconds to fetch and decode every page of a listing in a plain loop."""
    started = time.perf_counter()
    with requests.Session() as http:
        url: str | None = listing
        while url:
            body = http.get(url, params=params, timeout=60).json()
            token = body.get(next_key)
            if next_key == "nextPageToken":
                params = {"pageToken": token} if token else None
                url = listing if token else None
            else:
                url, params = token, None
    return time.perf_counter() - started


def make_app(url: str, fake: FakeProviders, instance: Path) -> Flask:
    app = create_app(
        {
            "TESTING": True,
            "APP_ENV": "development",
            "DATABASE_URL": url,
            "JWT_SECRET_KEY": "bench-secret-that-is-long-enough-for-hs256",
            "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "GOOGLE_CLIENT_ID": "bench",
            "GOOGLE_CLIENT_SECRET": "bench",
            "OUTLOOK_CLIENT_ID": "bench",
            "OUTLOOK_CLIENT_SECRET": "bench",
            "GOOGLE_API_BASE_URL": fake.google_base,
            "GOOGLE_BATCH_URL": fake.google_batch,
            "OUTLOOK_GRAPH_BASE_URL": fake.graph_base,
            "SCHEDULER_ENABLED": False,
            "SQLALCHEMY_ENGINE_OPTIONS": {},
        }
    )
    app.instance_path = str(instance)
    for name in ("", "alembic"):  # the app logs each sync, alembic each migration
        logging.getLogger(name).setLevel(logging.WARNING)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    return app


def reset(app: Flask, provider: str, calendar_id: str) -> None:
    """An empty CRM with one fresh, never-synced connection to ``provider``."""
    with app.app_context():
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
        connection = CalendarConnection(
            user_id=USER,
            provider=provider,
            calendar_id=calendar_id,
            account_email="bench@example.test",
            connected=True,
        )
        cipher = get_cipher()
        connection.token = OAuthToken(
            access_token_encrypted=cipher.encrypt("bench-access-token"),
            refresh_token_encrypted=cipher.encrypt("bench-refresh-token"),
            expires_at=utcnow() + timedelta(days=1),
        )
        db.session.add(connection)
        db.session.commit()


def timed_sync(app: Flask, slug: str) -> tuple[float, int, dict[str, Any]]:
    """Seconds and database statements of one sync through the API, and its result."""
    with app.app_context():
        token = create_access_token(identity=USER, expires_delta=timedelta(hours=1))
        statements = [0]

        def count(*_: Any) -> None:
            statements[0] += 1

        sa.event.listen(db.engine, "before_cursor_execute", count)
        client = app.test_client()
        started = time.perf_counter()
        answer = client.post(
            f"/api/v1/crm/calendar/connections/{slug}/sync",
            headers={"Authorization": f"Bearer {token}"},
        )
        elapsed = time.perf_counter() - started
        sa.event.remove(db.engine, "before_cursor_execute", count)
    body: dict[str, Any] = answer.get_json()
    if answer.status_code != 200 or not body.get("success"):
        raise SystemExit(f"the {slug} sync failed: {answer.status_code} {body}")
    return elapsed, statements[0], body


def create_crm_events(app: Flask, count: int) -> None:
    """``count`` new CRM events of the bench user, through the events API."""
    with app.app_context():
        token = create_access_token(identity=USER, expires_delta=timedelta(hours=1))
    client = app.test_client()
    start = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    for n in range(count):
        begin = start + timedelta(hours=n)
        body = {
            "title": f"CRM {n}",
            "start": begin.isoformat(),
            "end": (begin + timedelta(hours=1)).isoformat(),
        }
        answer = client.post(
            "/api/v1/crm/calendar/events", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        if answer.status_code != 201:
            raise SystemExit(f"creating a CRM event failed: {answer.get_json()}")


def graph_insert(n: int) -> dict[str, Any]:
    """The Graph body the push sends to create the bench's ``n``-th CRM event."""
    begin = datetime(2027, 1, 1, 10, tzinfo=UTC) + timedelta(hours=n)
    fields = EventFields(title=f"CRM {n}", start_at=begin, end_at=begin + timedelta(hours=1))
    payload = EventPayload(uid=f"{n:032x}", tag=str(n), fields=fields)
    return event_to_graph(payload, create=True)


def batched_floor(fake: FakeProviders, provider: str, count: int) -> tuple[float, int]:
    """Seconds for a plain loop to send ``count`` inserts as the provider's batch requests
    (bodies built beforehand; Graph's the push's own, four requests at a time) and decode the
    answers; and how many requests that is."""
    bodies: list[tuple[bytes, str]] = []
    size = GOOGLE_BATCH if provider == "GOOGLE" else GRAPH_BATCH
    for first in range(0, count, size):
        items = [
            {"summary": f"CRM {n}", "start": {"dateTime": "2027-01-01T10:00:00Z"}}
            for n in range(first, min(first + size, count))
        ]
        if provider == "GOOGLE":
            path = "/calendar/v3/calendars/primary/events?sendUpdates=none"
            bodies.append(
                encode_batch([(i, Call("POST", path, item)) for i, item in enumerate(items)])
            )
        else:
            # What the push sends for a new event: its whole body, transactionId and tag.
            calls = [
                (i, GraphCall("POST", "/me/calendars/cal-1/events", graph_insert(first + i)))
                for i in range(len(items))
            ]
            bodies.append((json.dumps(batch_body(calls)).encode(), "application/json"))
    url = fake.google_batch if provider == "GOOGLE" else fake.graph_batch
    # Graph's as the push may send them: up to four requests in flight (one mailbox's limit).
    in_flight = 1 if provider == "GOOGLE" else GRAPH_IN_FLIGHT
    started = time.perf_counter()
    with requests.Session() as http, ThreadPoolExecutor(max_workers=in_flight) as pool:

        def send(data: bytes, content_type: str) -> None:
            answer = http.post(url, data=data, headers={"Content-Type": content_type}, timeout=60)
            if provider == "GOOGLE":
                decode_answers(answer.headers["Content-Type"], answer.content)
            else:
                answer.json()

        list(pool.map(send, *zip(*bodies, strict=True)))
    return time.perf_counter() - started, len(bodies)


def measure_push(
    app: Flask, fake: FakeProviders, count: int
) -> list[tuple[str, float, int, float, int]]:
    """Per provider: seconds and provider requests of a sync that pushes ``count`` new CRM
    events, and the batched floor's seconds and requests."""
    rows = []
    fake.empty = True
    try:
        for provider, slug, calendar_id in (
            ("GOOGLE", "google", "primary"),
            ("OUTLOOK", "outlook", "cal-1"),
        ):
            reset(app, provider, calendar_id)
            create_crm_events(app, count)
            before = fake.requests
            seconds, _, result = timed_sync(app, slug)
            if result["eventsPushed"] != count:
                raise SystemExit(f"{slug}: pushed {result['eventsPushed']} of {count}")
            made = fake.requests - before
            floor_s, floor_requests = batched_floor(fake, provider, count)
            rows.append((provider, seconds, made, floor_s, floor_requests))
    finally:
        fake.empty = False
    return rows


def measure(
    app: Flask, fake: FakeProviders, repeat: int
) -> list[tuple[str, float, float, float, float]]:
    cases: list[tuple[str, str, str, Callable[[], float]]] = [
        ("GOOGLE", "google", "primary", lambda: floor(fake.google_listing(), "nextPageToken")),
        ("OUTLOOK", "outlook", "cal-1", lambda: floor(fake.graph_listing(), "@odata.nextLink")),
    ]
    rows = []
    for provider, slug, calendar_id, run_floor in cases:
        floors, syncs, per_event, incremental = [], [], [], []
        for _ in range(repeat):
            floors.append(run_floor())
            reset(app, provider, calendar_id)
            seconds, statements, result = timed_sync(app, slug)
            if result["eventsCreated"] != fake.events:
                raise SystemExit(f"{slug}: created {result['eventsCreated']} of {fake.events}")
            syncs.append(seconds)
            per_event.append(statements / fake.events)
            incremental.append(timed_sync(app, slug)[0])
        rows.append(
            (
                provider,
                statistics.median(floors),
                statistics.median(syncs),
                statistics.median(per_event),
                statistics.median(incremental),
            )
        )
    return rows


def measure_memory(url: str, instance: Path, sizes: tuple[int, ...]) -> list[tuple[str, float]]:
    """Per provider and calendar size: the peak memory of a full pull, in MiB."""
    rows = []
    for provider, slug, calendar_id in (
        ("GOOGLE", "google", "primary"),
        ("OUTLOOK", "outlook", "cal-1"),
    ):
        for size in sizes:
            with serving(size) as fake:
                app = make_app(url, fake, instance)
                reset(app, provider, calendar_id)
                peak = peak_mib(lambda: timed_sync(app, slug))  # noqa: B023 (called at once)
                with app.app_context():
                    db.engine.dispose()
            rows.append((provider, peak))
    return rows


def postgres_url() -> str | None:
    url = os.environ.get("BENCH_PG_URL", DEFAULT_PG)
    admin = sa.engine.make_url(url).set(database="postgres")
    try:
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            name = sa.engine.make_url(url).database
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
    except sa.exc.OperationalError:
        return None
    target = sa.create_engine(url)
    with target.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    target.dispose()
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--push", type=int, default=1_000, help="new CRM events to push")
    parser.add_argument(
        "--read-events", type=int, default=3_000, help="events of the user whose list is read"
    )
    parser.add_argument(
        "--read-seconds", type=float, default=2.0, help="seconds of load per read measurement"
    )
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per fake request
    print(f"full pull of {args.events:,} events; medians of {args.repeat} alternating runs")
    print(f"{'what':<34}{'floor s':>9}{'sync s':>9}{'ratio':>8}{'stmts/event':>13}")
    with serving(args.events) as fake, tempfile.TemporaryDirectory() as tmp:
        databases = [("SQLite", f"sqlite:///{Path(tmp) / 'bench.sqlite'}")]
        pg = postgres_url()
        if pg:
            databases.append(("PostgreSQL", pg))
        else:
            print("(PostgreSQL did not answer: SQLite only)")
        for label, url in databases:
            app = make_app(url, fake, Path(tmp))
            for provider, floor_s, sync_s, per_event, again in measure(app, fake, args.repeat):
                what = f"{provider.title()} full pull ({label})"
                ratio = sync_s / floor_s
                print(f"{what:<34}{floor_s:>9.2f}{sync_s:>9.2f}{ratio:>7.1f}x{per_event:>13.2f}")
                print(f"  {provider.title()} no-change incremental sync: {again * 1000:.0f} ms")
            for provider, seconds, made, floor_s, floor_n in measure_push(app, fake, args.push):
                print(
                    f"  {provider.title()} push of {args.push:,} new CRM events: {made} requests"
                    f" (floor {floor_n}), {seconds:.2f} s vs batched floor {floor_s:.2f} s:"
                    f" {seconds / floor_s:.1f}x"
                )
            small = max(args.events // 4, 1)  # a whole Google page (2,500) of 10,000
            peaks = measure_memory(url, Path(tmp), (small, args.events))
            for (provider, low), (_, high) in zip(peaks[::2], peaks[1::2], strict=True):
                print(
                    f"  {provider.title()} peak memory of a full pull: {low:.1f} MiB for "
                    f"{small:,} events, {high:.1f} MiB for {args.events:,} ({high / low:.2f}x)"
                )
            if label == "PostgreSQL":
                seconds, statements = measure_claim(app, CLAIM_AMONG, CLAIM_STALE)
                print(
                    f"  scheduler claim of {CLAIM_STALE} stale among {CLAIM_AMONG:,} connections:"
                    f" {seconds * 1000:.1f} ms, {statements} statements"
                )
                print("  " + push_claim_row(CLAIM_PUSH, *measure_push_claim(app, CLAIM_PUSH)))
            # Last: it empties the database for a calendar of its own.
            rows = measure_reads(
                app, url, events=args.read_events, duration=args.read_seconds, repeat=args.repeat
            )
            print_rows(label, rows)
            with app.app_context():
                db.engine.dispose()
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
