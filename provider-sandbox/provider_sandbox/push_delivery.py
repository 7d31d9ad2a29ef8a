"""The deliverer: one daemon thread per sandbox POSTing queued notifications, in order.

A write queues its notifications and returns at once; the thread takes them one by one, checks
under the store's lock that the channel or subscription is still live (and the sandbox was not
reset since), POSTs without the lock, then records the outcome under it. Graph change
notifications for the same URL queued close together go out as one ``{"value": [...]}``.

As Google documents, a notification answered 500, 502, 503 or 504 is sent again later with
exponential backoff (``SANDBOX_PUSH_RETRIES`` times at most, the first after
``SANDBOX_PUSH_RETRY_SECONDS``); any other answer is final, and so is no answer (a refused
connection or a timeout is recorded, not retried: a sandbox mounted in a test must not keep
sending after the test's HTTP mock is gone).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING

import requests

from .push_state import GRAPH_CHANGE, Delivery, Notification
from .timezones import now

if TYPE_CHECKING:
    from .store import SandboxStore

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0  # seconds a notification URL has to answer
DEFAULT_RETRIES = 3
DEFAULT_RETRY_SECONDS = 1.0
RETRIED_STATUSES = (500, 502, 503, 504)
MAX_ITEMS = 100  # Graph change notifications sent in one POST at most


class Deliverer:
    """A queue of notifications and the thread that sends them (started on first use)."""

    def __init__(self, store: SandboxStore) -> None:
        self._store = store
        self._queue: queue.Queue[Notification] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._waiting_retries = 0
        self._session = requests.Session()

    def _setting(self, name: str, default: float) -> float:
        value = self._store.config.get(name)
        return default if value is None else float(value)

    def submit(self, notification: Notification) -> None:
        """Queue ``notification`` (never blocks)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sandbox-push-delivery", daemon=True
                )
                self._thread.start()
        self._queue.put(notification)

    def pending(self) -> int:
        """Notifications queued, being sent, or waiting to be sent again."""
        with self._lock:
            return self._queue.unfinished_tasks + self._waiting_retries

    def _run(self) -> None:
        backlog: deque[Notification] = deque()
        while True:
            first = backlog.popleft() if backlog else self._queue.get()
            while True:
                try:
                    backlog.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batch = [first]
            if first.kind == GRAPH_CHANGE:
                same = [
                    job for job in backlog if job.kind == GRAPH_CHANGE and job.url == first.url
                ][: MAX_ITEMS - 1]
                for job in same:
                    backlog.remove(job)
                batch += same
            try:
                self._send(batch)
            except Exception:  # the thread must outlive any one delivery
                logger.exception("push delivery to %s failed", first.url)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _send(self, batch: list[Notification]) -> None:
        store = self._store
        with store.lock:
            batch = [
                job for job in batch if job.epoch == store.epoch and store.push.still_live(job)
            ]
        if not batch:
            return
        first = batch[0]
        headers = dict(first.headers)
        body = b""
        if first.item is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
            body = json.dumps({"value": [job.item for job in batch]}).encode()
        status: int | None = None
        error: str | None = None
        try:
            response = self._session.post(
                first.url,
                data=body,
                headers=headers,
                timeout=self._setting("SANDBOX_PUSH_TIMEOUT", DEFAULT_TIMEOUT),
            )
            status = response.status_code
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        delivery = Delivery(
            first.kind, first.url, first.target, status, error, now(), len(batch), first.attempt
        )
        record(store, delivery, first.epoch)
        if status in RETRIED_STATUSES:
            self._retry_later(batch)

    def _retry_later(self, batch: list[Notification]) -> None:
        retries = int(self._setting("SANDBOX_PUSH_RETRIES", DEFAULT_RETRIES))
        again = [replace(job, attempt=job.attempt + 1) for job in batch if job.attempt <= retries]
        if not again:
            return
        first_delay = self._setting("SANDBOX_PUSH_RETRY_SECONDS", DEFAULT_RETRY_SECONDS)
        delay = first_delay * 2 ** (again[0].attempt - 2)
        with self._lock:
            self._waiting_retries += len(again)
        timer = threading.Timer(delay, self._requeue, args=(again,))
        timer.daemon = True
        timer.start()

    def _requeue(self, jobs: list[Notification]) -> None:
        with self._lock:
            for job in jobs:
                self._queue.put(job)
            self._waiting_retries -= len(jobs)


def record(store: SandboxStore, delivery: Delivery, epoch: int) -> None:
    """Keep ``delivery`` among the last deliveries, unless the sandbox was reset since ``epoch``."""
    with store.lock:
        if store.epoch == epoch:
            store.push.deliveries.append(delivery)
