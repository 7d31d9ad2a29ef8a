"""The per-process dispatcher of notifications: coalescing, retries on a busy lease, a
notification during a running sync, fork safety; and the lease it syncs under."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select, update

from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, utcnow
from calendar_connections.operations.webhooks import LifecycleAction
from calendar_connections.push_dispatch import Attempt, PushDispatcher, sync_if_due
from calendar_connections.sync import lease

from .support.stack import wait_until

DELAY = 0.05


class FakeSync:
    """Records the syncs the dispatcher asks for; answers ``outcomes`` in turn, then SYNCED."""

    def __init__(self, *outcomes: Attempt, hold: threading.Event | None = None) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[int] = []
        self.hold = hold
        self.started = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, connection_id: int) -> Attempt:
        with self.lock:
            self.calls.append(connection_id)
            outcome = self.outcomes.pop(0) if self.outcomes else Attempt.SYNCED
        self.started.set()
        if self.hold is not None:
            assert self.hold.wait(10)
        return outcome


@pytest.fixture
def dispatchers() -> Iterator[Callable[..., PushDispatcher]]:
    made: list[PushDispatcher] = []

    def make(sync: Callable[[int], Attempt], **kwargs: object) -> PushDispatcher:
        settings: dict[str, object] = {"delay": DELAY, "workers": 2, **kwargs}
        dispatcher = PushDispatcher(sync, lambda action: None, **settings)  # type: ignore[arg-type]
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.shutdown()


def test_a_burst_for_one_connection_makes_one_sync(
    dispatchers: Callable[..., PushDispatcher],
) -> None:
    sync = FakeSync()
    dispatcher = dispatchers(sync, delay=0.3)
    for _ in range(20):
        dispatcher.sync_soon(7)
    dispatcher.sync_soon(8)
    wait_until(lambda: not dispatcher.waiting(), 15, "the background work")
    assert sorted(sync.calls) == [7, 8]


def test_a_notification_during_a_running_sync_makes_another_sync_after_it(
    dispatchers: Callable[..., PushDispatcher],
) -> None:
    release = threading.Event()
    sync = FakeSync(hold=release)
    dispatcher = dispatchers(sync)
    dispatcher.sync_soon(7)
    assert sync.started.wait(10)
    for _ in range(5):  # during the sync: one more, not five
        dispatcher.sync_soon(7)
    time.sleep(DELAY * 4)  # its delay passes while the first sync still runs
    assert sync.calls == [7]
    release.set()
    wait_until(lambda: not dispatcher.waiting(), 15, "the background work")
    assert sync.calls == [7, 7]


def test_a_busy_lease_is_tried_again_until_the_sync_runs(
    dispatchers: Callable[..., PushDispatcher],
) -> None:
    sync = FakeSync(Attempt.BUSY, Attempt.BUSY)
    dispatcher = dispatchers(sync)
    dispatcher.sync_soon(7)
    wait_until(lambda: len(sync.calls) == 3 and not dispatcher.waiting(), 15, "the background work")
    assert sync.calls == [7, 7, 7]


def test_a_connection_no_longer_due_is_dropped(
    dispatchers: Callable[..., PushDispatcher],
) -> None:
    sync = FakeSync(Attempt.NOT_DUE)
    dispatcher = dispatchers(sync)
    dispatcher.sync_soon(7)
    wait_until(lambda: not dispatcher.waiting(), 15, "the background work")
    assert sync.calls == [7]


def test_a_failing_sync_is_tried_again(dispatchers: Callable[..., PushDispatcher]) -> None:
    calls: list[int] = []

    def sync(connection_id: int) -> Attempt:
        calls.append(connection_id)
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        return Attempt.SYNCED

    dispatcher = dispatchers(sync)
    dispatcher.sync_soon(7)
    wait_until(lambda: len(calls) == 2 and not dispatcher.waiting(), 15, "the background work")


def test_lifecycle_actions_run_in_the_background_and_a_reopen_syncs_after_it(
    dispatchers: Callable[..., PushDispatcher],
) -> None:
    sync = FakeSync()
    done: list[tuple[str, list[int]]] = []  # each action, and the syncs run before it ended
    dispatcher = PushDispatcher(
        sync, lambda action: done.append((action.event, list(sync.calls))), delay=DELAY, workers=1
    )
    try:
        dispatcher.lifecycle_soon(LifecycleAction("reauthorizationRequired", 1, 2))
        wait_until(lambda: len(done) == 1, 15, "the renewal")
        dispatcher.lifecycle_soon(LifecycleAction("subscriptionRemoved", 1, 2))
        wait_until(lambda: sync.calls == [2] and not dispatcher.waiting(), 15, "the sync")
    finally:
        dispatcher.shutdown()
    # Renewing needs no sync; the sync after a removal starts once the new subscription is open.
    assert done == [("reauthorizationRequired", []), ("subscriptionRemoved", [])]


def test_after_shutdown_nothing_more_is_taken(
    dispatchers: Callable[..., PushDispatcher],
) -> None:
    sync = FakeSync()
    dispatcher = dispatchers(sync, delay=0.2)
    dispatcher.sync_soon(7)
    dispatcher.shutdown()
    dispatcher.sync_soon(8)
    assert sync.calls == []
    assert dispatcher.waiting() == {7}  # left due in the database, for the scheduler


def test_a_forked_child_starts_its_own_thread(
    dispatchers: Callable[..., PushDispatcher],
) -> None:
    """As gunicorn --preload forks workers from a master that built the app."""
    read, write = os.pipe()

    def sync(connection_id: int) -> Attempt:
        os.write(write, f"{os.getpid()}:{connection_id}\n".encode())
        return Attempt.SYNCED

    dispatcher = dispatchers(sync)
    dispatcher.sync_soon(1)  # the parent's thread is running
    wait_until(lambda: not dispatcher.waiting(), 15, "the background work")
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe and its status
        try:
            assert dispatcher.waiting() == set()
            dispatcher.sync_soon(2)
            deadline = time.monotonic() + 10
            while dispatcher.waiting() and time.monotonic() < deadline:
                time.sleep(0.01)
            os._exit(0 if not dispatcher.waiting() else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    os.close(write)
    with os.fdopen(read) as pipe:
        lines = pipe.read().split()
    assert os.waitstatus_to_exitcode(status) == 0
    assert lines == [f"{os.getpid()}:1", f"{child}:2"]


# The lease the dispatcher syncs under, on the database.


def _connection(app: Flask, **values: object) -> int:
    with app.app_context():
        connection = CalendarConnection(
            user_id="u1", provider="GOOGLE", connected=True, last_sync_at=utcnow(), **values
        )
        db.session.add(connection)
        db.session.commit()
        return connection.id


def _due_at(app: Flask, connection_id: int) -> object:
    with app.app_context():
        return db.session.execute(
            select(CalendarConnection.push_due_at).where(CalendarConnection.id == connection_id)
        ).scalar_one()


def test_taking_the_lease_clears_the_due_mark(app: Flask) -> None:
    connection_id = _connection(app, push_due_at=utcnow())
    with app.app_context():
        assert lease.claim(db.session(), connection_id, "me", timedelta(minutes=1))
    assert _due_at(app, connection_id) is None


def test_a_due_only_claim_leaves_a_connection_that_is_not_due(app: Flask) -> None:
    connection_id = _connection(app)
    with app.app_context():
        session = db.session()
        assert not lease.claim(session, connection_id, "me", timedelta(minutes=1), only_if_due=True)
        assert not lease.is_due(session, connection_id)


def test_sync_if_due_is_busy_while_another_sync_holds_the_lease(app: Flask) -> None:
    connection_id = _connection(app, push_due_at=utcnow())
    with app.app_context():
        assert lease.claim(db.session(), connection_id, "other", timedelta(minutes=1))
        # A notification arrives during that sync: due again.
        db.session.execute(
            update(CalendarConnection)
            .where(CalendarConnection.id == connection_id)
            .values(push_due_at=utcnow())
        )
        db.session.commit()
    assert sync_if_due(app, connection_id) is Attempt.BUSY
    assert _due_at(app, connection_id) is not None
    with app.app_context():
        lease.release(db.session(), connection_id, "other")


def test_sync_if_due_skips_a_connection_synced_meanwhile(app: Flask) -> None:
    connection_id = _connection(app)
    assert sync_if_due(app, connection_id) is Attempt.NOT_DUE


def test_sync_if_due_skips_a_disconnected_connection(app: Flask) -> None:
    connection_id = _connection(app, push_due_at=utcnow())
    with app.app_context():
        db.session.execute(
            update(CalendarConnection)
            .where(CalendarConnection.id == connection_id)
            .values(connected=False)
        )
        db.session.commit()
    assert sync_if_due(app, connection_id) is Attempt.NOT_DUE


def test_a_lifecycle_action_repeated_while_it_runs_runs_once() -> None:
    release = threading.Event()
    done: list[LifecycleAction] = []

    def run(action: LifecycleAction) -> None:
        done.append(action)
        assert release.wait(10)

    dispatcher = PushDispatcher(FakeSync(), run, delay=DELAY, workers=2)
    renew = LifecycleAction("reauthorizationRequired", 1, 2)
    try:
        dispatcher.lifecycle_soon(renew)
        wait_until(lambda: done == [renew], 15, "the renewal")
        for _ in range(5):
            dispatcher.lifecycle_soon(renew)
        dispatcher.lifecycle_soon(LifecycleAction("reauthorizationRequired", 3, 4))
        wait_until(lambda: len(done) == 2, 15, "the other renewal")
        assert len(done) == 2
        release.set()

        def again() -> bool:  # once it has ended, the same event is acted on again
            dispatcher.lifecycle_soon(renew)
            return len(done) >= 3

        wait_until(again, 15, "the renewal again")
    finally:
        release.set()
        dispatcher.shutdown()
    assert done[:3] == [renew, LifecycleAction("reauthorizationRequired", 3, 4), renew]
