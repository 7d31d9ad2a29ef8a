"""The deliverer: one daemon thread per sandbox POSTing queued notifications, in order.

A write queues its notifications and returns at once; the thread takes them one by one, checks
under the store's lock that the channel or subscription is still live (and the sandbox was not
reset since), POSTs without the lock, then records the outcome under it. Graph change
notifications for the same URL queued close together go out as one ``{"value": [...]}``.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

import requests

from .push_state import GRAPH_CHANGE, Delivery, Notification
from .timezones import now

if TYPE_CHECKING:
    from .store import SandboxStore

DEFAULT_TIMEOUT = 5.0  # seconds a notification URL has to answer
MAX_ITEMS = 100  # Graph change notifications sent in one POST at most


class Deliverer:
    """A queue of notifications and the thread that sends them (started on first use)."""

    def __init__(self, store: SandboxStore) -> None:
        self._store = store
        self._queue: queue.Queue[Notification] = queue.Queue()
        self._start = threading.Lock()
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    @property
    def timeout(self) -> float:
        """Seconds each POST may take."""
        return float(self._store.config.get("SANDBOX_PUSH_TIMEOUT") or DEFAULT_TIMEOUT)

    def submit(self, notification: Notification) -> None:
        """Queue ``notification`` (never blocks)."""
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sandbox-push-delivery", daemon=True
                )
                self._thread.start()
        self._queue.put(notification)

    def pending(self) -> int:
        """Notifications queued or being sent."""
        return self._queue.unfinished_tasks

    def wait_idle(self, timeout: float) -> bool:
        """Wait until everything queued was sent (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout
        condition = self._queue.all_tasks_done
        with condition:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not condition.wait(remaining):
                    return self._queue.unfinished_tasks == 0
        return True

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
            except Exception:  # noqa: BLE001  # the thread must outlive any one delivery
                pass
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
                first.url, data=body, headers=headers, timeout=self.timeout
            )
            status = response.status_code
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        delivery = Delivery(first.kind, first.url, first.target, status, error, now(), len(batch))
        record(store, delivery, first.epoch)


def record(store: SandboxStore, delivery: Delivery, epoch: int) -> None:
    """Keep ``delivery`` among the last deliveries, unless the sandbox was reset since ``epoch``."""
    with store.lock:
        if store.epoch == epoch:
            store.push.deliveries.append(delivery)
