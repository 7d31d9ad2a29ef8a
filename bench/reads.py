"""The read path under gunicorn: the events list and the connection status, in requests per
second, as ratios to a bare Flask route served with the same gunicorn settings.

    python -m bench.reads [--duration S] [--repeat K] [--events N]

Both servers run ``gunicorn.conf.py`` (2 workers, its threads) on loopback; a load generator in
separate processes keeps several keep-alive connections busy for a fixed time. Repetitions
alternate the bare route and each endpoint; the table shows medians. On a shared machine the
figures are rough: the load generator, the servers and PostgreSQL share the same cores.
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.pool
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, Response, jsonify

from calendar_connections.auth import issue_token
from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, CalendarEvent, EventLink

ROOT = Path(__file__).resolve().parent.parent
USER = "bench-reader"
EVENTS_PATH = "/api/v1/crm/calendar/events"
STATUS_PATH = "/api/v1/crm/calendar/connections/status"
BARE_PATH = "/bare"
WORKERS = 2
# Load generator: processes times keep-alive connections each.
CLIENT_PROCESSES = 2
CLIENT_CONNECTIONS = 4
WARMUP = 0.5


def bare_app() -> Flask:
    """The floor: a Flask app whose one route answers a fixed JSON document."""
    app = Flask("bare")

    @app.get(BARE_PATH)
    def bare() -> Response:
        return jsonify(status="ok")

    return app


def seed(app: Flask, events: int) -> str:
    """An emptied database with one user of ``events`` events, each synced with Google and
    every other one with Outlook too; a Bearer token of that user."""
    start = datetime(2026, 1, 5, 8, tzinfo=UTC)
    with app.app_context():
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
        session = db.session()
        connections = [
            CalendarConnection(
                user_id=USER,
                provider=provider,
                calendar_id=calendar,
                account_email="reader@example.test",
                connected=True,
                last_sync_at=start,
                last_sync_status="SUCCESS",
            )
            for provider, calendar in (("GOOGLE", "primary"), ("OUTLOOK", "cal-1"))
        ]
        session.add_all(connections)
        session.flush()
        session.execute(
            sa.insert(CalendarEvent),
            [
                {
                    "user_id": USER,
                    "title": f"Meeting {n}",
                    "description": "Agenda: numbers, then plans.",
                    "location": "Room 4.12",
                    "start_at": start + timedelta(hours=3 * n),
                    "end_at": start + timedelta(hours=3 * n + 1),
                    "time_zone": "Europe/Berlin",
                    "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"] if n % 10 == 0 else None,
                }
                for n in range(events)
            ],
        )
        ids = session.scalars(sa.select(CalendarEvent.id).order_by(CalendarEvent.id)).all()
        session.execute(
            sa.insert(EventLink),
            [
                {"connection_id": connection.id, "event_id": event_id, "external_id": f"x{n}"}
                for n, event_id in enumerate(ids)
                for connection in connections[: 1 + n % 2]
            ],
        )
        session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        token = issue_token(USER, timedelta(hours=2))
        db.session.remove()
        db.engine.dispose()
    return token


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def gunicorn(target: str, env: dict[str, str]) -> Iterator[int]:
    """Serve ``target`` with gunicorn.conf.py on a loopback port; yields the port."""
    port = _free_port()
    settings = {**env, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(WORKERS)}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", target],
        cwd=ROOT,
        env=settings,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"gunicorn {target} exited with {process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit(f"gunicorn {target} did not start")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _read_response(sock: socket.socket, buffer: bytearray) -> int:
    """Read one HTTP/1.1 response (with Content-Length) off ``sock``; its status."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end]).decode("latin-1")
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    while len(buffer) < end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    del buffer[: end + length]
    return int(head.split(" ", 2)[1])


def _client(port: int, request: bytes, until: float, counted_from: float, out: list[int]) -> None:
    done = failed = 0
    buffer = bytearray()
    # A server that stops answering fails the bench instead of hanging it.
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while (now := time.monotonic()) < until:
            sock.sendall(request)
            status = _read_response(sock, buffer)
            if now >= counted_from:
                if status == 200:
                    done += 1
                else:
                    failed += 1
    out.extend((done, failed))


def _load_process(port: int, request: bytes, warmup: float, duration: float) -> tuple[int, int]:
    """Requests answered 200 (and not) by this process's connections after the warm-up."""
    started = time.monotonic()
    results: list[list[int]] = [[] for _ in range(CLIENT_CONNECTIONS)]
    threads = [
        threading.Thread(
            target=_client,
            args=(port, request, started + warmup + duration, started + warmup, out),
        )
        for out in results
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(r[0] for r in results), sum(r[1] for r in results)


def requests_per_second(
    pool: multiprocessing.pool.Pool, port: int, path: str, token: str | None, duration: float
) -> float:
    """Requests per second answered 200 on ``path`` under the load of every client."""
    headers = f"Host: 127.0.0.1:{port}\r\n"
    if token:
        headers += f"Authorization: Bearer {token}\r\n"
    request = f"GET {path} HTTP/1.1\r\n{headers}\r\n".encode()
    results = pool.starmap(_load_process, [(port, request, WARMUP, duration)] * CLIENT_PROCESSES)
    done = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    if failed:
        raise SystemExit(f"{path}: {failed} requests were not answered 200")
    return done / duration


def measure_reads(
    app: Flask, url: str, *, events: int, duration: float, repeat: int
) -> list[tuple[str, float, float]]:
    """Per read: median requests per second of the service, and of the bare route (measured
    before each repetition of the reads)."""
    token = seed(app, events)
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": url,
        "JWT_SECRET_KEY": app.config["JWT_SECRET_KEY"],
        "TOKEN_ENCRYPTION_KEYS": app.config["TOKEN_ENCRYPTION_KEYS"],
        "SCHEDULER_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    reads = [
        ("events list, page_size=100", f"{EVENTS_PATH}?page_size=100"),
        ("events list, default page", EVENTS_PATH),
        ("connection status", STATUS_PATH),
    ]
    bare: list[float] = []
    served: dict[str, list[float]] = {what: [] for what, _ in reads}
    context = multiprocessing.get_context("spawn")
    with (
        gunicorn("bench.reads:bare_app()", env) as bare_port,
        gunicorn("wsgi:app", env) as app_port,
        context.Pool(CLIENT_PROCESSES) as pool,
    ):
        for _ in range(repeat):
            bare.append(requests_per_second(pool, bare_port, BARE_PATH, None, duration))
            for what, path in reads:
                served[what].append(requests_per_second(pool, app_port, path, token, duration))
    floor = statistics.median(bare)
    return [(what, statistics.median(served[what]), floor) for what, _ in reads]


def print_rows(label: str, rows: list[tuple[str, float, float]]) -> None:
    for what, served, bare in rows:
        print(
            f"  {what} ({label}): {served:,.0f} req/s vs bare Flask {bare:,.0f} req/s:"
            f" {served / bare:.2f}x"
        )


def main(argv: list[str] | None = None) -> int:
    from .__main__ import make_app, postgres_url
    from .fake_providers import serving

    parser = argparse.ArgumentParser(prog="python -m bench.reads")
    parser.add_argument("--events", type=int, default=3_000)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args(argv)
    with serving(1) as fake, tempfile.TemporaryDirectory() as tmp:
        databases = [("SQLite", f"sqlite:///{Path(tmp) / 'reads.sqlite'}")]
        pg = None if args.sqlite_only else postgres_url()
        if pg:
            databases.append(("PostgreSQL", pg))
        for label, url in databases:
            app = make_app(url, fake, Path(tmp))
            rows = measure_reads(
                app, url, events=args.events, duration=args.duration, repeat=args.repeat
            )
            print_rows(label, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
