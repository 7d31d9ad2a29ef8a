"""The per-process dispatcher of push notifications: a due connection is synced in the
background within ``WEBHOOK_SYNC_DELAY`` seconds of its first pending notification.

The webhook views record a notification in the database first (``push_due_at``), then hand
the connection id here. Notifications for a connection already waiting make no extra sync.
When the timer fires the sync takes the lease only if the connection is still due (taking it
clears ``push_due_at``), so a connection another process or a scheduler round synced
meanwhile is not synced twice; when another sync holds the lease, the dispatcher tries again
a little later, so a change that lands during a running sync is not lost. Everything here is
an optimisation of latency: the due mark is in the database, and a scheduler round syncs
what this process never got to (a crash, a shutdown, a lease busy for too long).

It starts its thread on the first notification a process receives, and starts afresh in a
forked child (gunicorn ``--preload``), so no thread or lock crosses a fork.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from flask import Flask

from .config import get_settings
from .extensions import db
from .operations.webhooks import LifecycleAction, run_lifecycle_action
from .scheduler import sync_connection_by_id
from .sync import lease
from .sync.engine import lease_ttl

log = logging.getLogger(__name__)

EXTENSION_KEY = "calendar_connections.push_dispatch"
# Retries of a connection whose lease stays busy: the waits double from WEBHOOK_SYNC_DELAY up
# to RETRY_MAX_SECONDS, beyond a lease's lifetime in all; then the scheduler takes over.
RETRY_MAX_SECONDS = 30.0
MAX_ATTEMPTS = 12


class Attempt(enum.Enum):
    """What one try at syncing a connection found."""

    SYNCED = "synced"
    NOT_DUE = "not due"  # synced elsewhere meanwhile, or disconnected
    BUSY = "busy"  # another sync holds the lease: try again later


@dataclass
class _Pending:
    at: float  # time.monotonic() when to try
    attempt: int = 0


class PushDispatcher:
    """Coalesces due connections per process and syncs each one at a time, in the background."""

    def __init__(
        self,
        sync: Callable[[int], Attempt],
        run_job: Callable[[LifecycleAction], None],
        *,
        delay: float,
        workers: int,
    ) -> None:
        self._sync = sync
        self._run_job = run_job
        self.delay = max(0.0, delay)
        self.workers = max(1, workers)
        self._start_afresh()
        # A forked child inherits neither the thread nor a lock another thread may hold.
        os.register_at_fork(after_in_child=_in_child(weakref.WeakMethod(self._start_afresh)))

    def _start_afresh(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: dict[int, _Pending] = {}
        self._running: set[int] = set()
        # Lifecycle actions queued or running: a repeat meanwhile calls Graph for nothing.
        self._actions: set[LifecycleAction] = set()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    def sync_soon(self, connection_id: int) -> None:
        """Sync the connection within ``delay`` seconds, unless it is already waiting."""
        with self._lock:
            if self._closed or connection_id in self._pending:
                return
            self._pending[connection_id] = _Pending(time.monotonic() + self.delay)
            self._ensure_started()
            self._changed.notify()

    def lifecycle_soon(self, action: LifecycleAction) -> None:
        """Run a subscription's lifecycle action (renew, reopen) in the background, now."""
        with self._lock:
            if not self._closed and action not in self._actions:
                self._actions.add(action)
                self._ensure_started().submit(self._run_lifecycle, action)

    def waiting(self) -> set[int]:
        """The connections waiting or syncing in this process."""
        with self._lock:
            return set(self._pending) | self._running

    def shutdown(self) -> None:
        """Stop taking work; syncs running finish (and release their leases) first."""
        with self._lock:
            self._closed = True
            self._changed.notify()
            thread, pool = self._thread, self._pool
        if thread is not None:
            thread.join()
        if pool is not None:
            pool.shutdown(wait=True)

    def _ensure_started(self) -> ThreadPoolExecutor:
        # Called with the lock held.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="push-sync")
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="push-dispatch", daemon=True)
            self._thread.start()
        return self._pool

    def _loop(self) -> None:
        with self._lock:
            while not self._closed:
                now = time.monotonic()
                waits = []
                for connection_id, pending in list(self._pending.items()):
                    if connection_id in self._running:
                        continue  # tried again when its sync ends (it notifies)
                    if pending.at <= now:
                        del self._pending[connection_id]
                        self._running.add(connection_id)
                        assert self._pool is not None
                        self._pool.submit(self._run, connection_id, pending.attempt)
                    else:
                        waits.append(pending.at - now)
                self._changed.wait(min(waits) if waits else None)

    def _run(self, connection_id: int, attempt: int) -> None:
        try:
            outcome = self._sync(connection_id)
        except Exception:  # the database may be gone: try again later, the mark is stored
            log.exception("push sync of connection %s failed", connection_id)
            outcome = Attempt.BUSY
        with self._lock:
            self._running.discard(connection_id)
            retry = outcome is Attempt.BUSY and attempt + 1 < MAX_ATTEMPTS
            if retry and not self._closed and connection_id not in self._pending:
                wait = min(max(self.delay, 0.1) * 2**attempt, RETRY_MAX_SECONDS)
                self._pending[connection_id] = _Pending(time.monotonic() + wait, attempt + 1)
            self._changed.notify()

    def _run_lifecycle(self, action: LifecycleAction) -> None:
        try:
            self._run_job(action)
        except Exception:  # the scheduler renews channels due for renewal anyway
            log.exception("push lifecycle action %s failed", action)
        finally:
            with self._lock:
                self._actions.discard(action)
        if action.then_sync:
            self.sync_soon(action.connection_id)


def _in_child(method: weakref.WeakMethod[Callable[[], None]]) -> Callable[[], None]:
    def start_afresh() -> None:
        bound = method()
        if bound is not None:
            bound()

    return start_afresh


def sync_if_due(app: Flask, connection_id: int) -> Attempt:
    """Sync the connection if it is still due and its lease is free: the scheduler's entry."""
    owner = lease.new_owner()
    with app.app_context():
        session = db.session()
        try:
            taken = lease.claim(
                session, connection_id, owner, lease_ttl(get_settings(app)), only_if_due=True
            )
            if not taken:
                return Attempt.BUSY if lease.is_due(session, connection_id) else Attempt.NOT_DUE
        finally:
            db.session.remove()
    sync_connection_by_id(app, connection_id, owner)
    return Attempt.SYNCED


def run_lifecycle(app: Flask, action: LifecycleAction) -> None:
    """Run a lifecycle action in its own app context; commits."""
    with app.app_context():
        try:
            run_lifecycle_action(db.session(), get_settings(app), action)
        finally:
            db.session.remove()


def init_app(app: Flask) -> None:
    """Give the app its dispatcher (its thread starts with the first notification)."""
    settings = get_settings(app)
    app.extensions[EXTENSION_KEY] = PushDispatcher(
        lambda connection_id: sync_if_due(app, connection_id),
        lambda action: run_lifecycle(app, action),
        delay=settings.webhook_sync_delay,
        workers=settings.sync_concurrency,
    )


def get_dispatcher(app: Flask) -> PushDispatcher:
    """The app's dispatcher."""
    dispatcher: PushDispatcher = app.extensions[EXTENSION_KEY]
    return dispatcher
