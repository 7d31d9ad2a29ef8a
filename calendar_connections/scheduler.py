"""The in-process scheduler: keeps connections fresh by syncing stale ones in rounds.

Every web worker (and `flask calendar scheduler`) may run one. They share nothing but the
database: each round claims stale connections through the sync lease, so the work is shared
out and no connection is synced twice at once, however many schedulers run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from .config import get_settings
from .crypto import get_cipher
from .extensions import db
from .models import CalendarConnection, utcnow
from .sync import lease
from .sync.channels import renew_due_channels
from .sync.engine import SyncAlreadyRunning, SyncResult, lease_ttl
from .sync.service import run_sync, stale_after

log = logging.getLogger(__name__)

EXTENSION_KEY = "calendar_connections.scheduler"


@dataclass(frozen=True)
class RoundResult:
    """What one scheduler round did."""

    claimed: int
    results: list[SyncResult]

    @property
    def failed(self) -> int:
        """How many of the round's syncs failed."""
        return sum(1 for result in self.results if not result.success)


def sync_connection_by_id(
    app: Flask, connection_id: int, owner: str | None = None
) -> SyncResult | None:
    """Sync one connection in its own app context (a worker thread's unit of work)."""
    with app.app_context():
        session = db.session()
        try:
            connection = session.get(CalendarConnection, connection_id)
            if connection is None or not connection.connected:
                if owner is not None:
                    lease.release(session, connection_id, owner)
                return None
            return run_sync(session, connection, get_settings(app), get_cipher(), lease_owner=owner)
        except SyncAlreadyRunning:
            return None
        finally:
            db.session.remove()


def run_round(
    app: Flask,
    *,
    older_than: timedelta | None = None,
    limit: int | None = None,
    on_result: Callable[[SyncResult], None] | None = None,
    on_claimed: Callable[[int], None] | None = None,
) -> RoundResult:
    """Claim connections due by a notification, then stale ones (oldest first), and sync them,
    a bounded number at a time.

    Stale is ``SYNC_STALE_AFTER``, or ``SYNC_STALE_AFTER_PUSH`` while push is active; an
    explicit ``older_than`` applies to every connection.
    """
    settings = get_settings(app)
    concurrency = max(1, settings.sync_concurrency)
    owner = lease.new_owner()
    with app.app_context():
        now = utcnow()
        push_cutoff = None
        if older_than is None:
            push_cutoff = now - timedelta(seconds=settings.sync_stale_after_push)
        claimed = lease.claim_stale(
            db.session(),
            owner=owner,
            ttl=lease_ttl(settings),
            stale_before=now - (older_than if older_than is not None else stale_after(settings)),
            stale_before_push=push_cutoff,
            limit=limit or settings.sync_batch_size,
        )
        db.session.remove()
    if on_claimed is not None:
        on_claimed(len(claimed))
    results: list[SyncResult] = []
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sync") as pool:
        futures = [pool.submit(sync_connection_by_id, app, cid, owner) for cid in claimed]
        for future in futures:
            result = future.result()
            if result is not None:
                results.append(result)
                if on_result is not None:
                    on_result(result)
    if claimed:
        log.info(
            "scheduler round: %d synced, %d failed", len(results), RoundResult(0, results).failed
        )
    return RoundResult(claimed=len(claimed), results=results)


def renew_push_channels(app: Flask) -> int:
    """Renew the push channels whose renewal time has come; how many were renewed."""
    with app.app_context():
        try:
            return renew_due_channels(db.session(), get_settings(app), utcnow())
        finally:
            db.session.remove()


class SyncScheduler:
    """APScheduler running :func:`run_round` every ``SYNC_INTERVAL`` seconds."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.interval = get_settings(app).sync_interval
        self._scheduler: BackgroundScheduler | None = None
        self._lock = threading.Lock()

    def _round(self) -> None:
        try:
            run_round(self.app)
        except Exception:  # a failed round must not stop the next ones
            log.exception("scheduler round failed")

    def _renew_channels(self) -> None:
        try:
            renew_push_channels(self.app)
        except Exception:  # a failed renewal round must not stop the next ones
            log.exception("push channel renewal failed")

    def start(self) -> None:
        """Start the background thread; the first round runs at once."""
        with self._lock:
            if self._scheduler is not None:
                return
            self._scheduler = BackgroundScheduler(daemon=True, timezone="UTC")
            for job, job_id in ((self._round, "sync-stale"), (self._renew_channels, "push-renew")):
                self._scheduler.add_job(
                    job,
                    "interval",
                    seconds=self.interval,
                    id=job_id,
                    max_instances=1,
                    coalesce=True,
                    next_run_time=utcnow(),
                )
            self._scheduler.start()
            log.info("scheduler started: a round every %s s", self.interval)

    def sync_soon(self, connection_id: int) -> None:
        """Run a connection's first sync now, in the background (when started)."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.add_job(
                sync_connection_by_id, args=(self.app, connection_id), misfire_grace_time=None
            )

    def shutdown(self) -> None:
        """Stop; running syncs finish (and release their leases) first."""
        with self._lock:
            if self._scheduler is not None and self._scheduler.running:
                self._scheduler.shutdown(wait=True)
                log.info("scheduler stopped")
            self._scheduler = None


def init_app(app: Flask) -> None:
    """Create the app's scheduler (started by the server, see gunicorn.conf.py)."""
    if get_settings(app).scheduler_enabled:
        app.extensions[EXTENSION_KEY] = SyncScheduler(app)


def get_scheduler(app: Flask) -> SyncScheduler | None:
    """The app's scheduler, when enabled."""
    scheduler: SyncScheduler | None = app.extensions.get(EXTENSION_KEY)
    return scheduler
