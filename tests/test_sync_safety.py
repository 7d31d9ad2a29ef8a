"""Running syncs safely: a sync killed between pages or mid-push converges on the next run,
leases keep one sync per connection (a dead one expires), and a concurrent sync gets a 409.

Everything runs against the provider sandbox mounted in-process, with small pages (3 events).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
import responses
from flask import Flask, request
from flask.testing import FlaskClient
from provider_sandbox import create_sandbox_app
from sqlalchemy import select, update

from calendar_connections.config import get_settings
from calendar_connections.crypto import get_cipher
from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, utcnow
from calendar_connections.providers.google import client as google_client
from calendar_connections.providers.google.client import GoogleCalendarClient
from calendar_connections.providers.outlook.client import GraphCalendarClient
from calendar_connections.providers.types import Write, WriteResult
from calendar_connections.sync.engine import SyncResult
from calendar_connections.sync.service import run_sync

from .support.mount import mount_sandbox
from .support.sandbox import (
    CONNECTIONS,
    EVENTS,
    SANDBOX,
    Sandbox,
    Side,
    Timing,
    connect,
    crm_items,
    crm_views,
    sandbox_config,
    sync,
    timing,
)

PAGE = 3  # events per listing page, at both providers
UNEXPECTED = "The sync failed unexpectedly; it will be retried."


pytestmark = pytest.mark.app_config(**sandbox_config(OUTLOOK_PAGE_SIZE=PAGE))


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Google's client asks for pages of PAGE events (Outlook's comes from the app config)."""
    monkeypatch.setattr(google_client, "MAX_PAGE_SIZE", PAGE)


@pytest.fixture
def sandbox(http: responses.RequestsMock, small_pages: None) -> Sandbox:
    return Sandbox.mount(http)


class Killed(Exception):
    """The crash a test injects into a running sync."""


def kill_on_page(page: int) -> Callable[[int], None]:
    """An ``on_page`` hook that crashes the sync once page ``page`` (from 0) is committed."""

    def hook(number: int) -> None:
        if number == page:
            raise Killed(f"killed after page {number}")

    return hook


def connection_of(app: Flask, user_id: str, side: Side) -> CalendarConnection:
    """The connection row, read fresh (detached)."""
    with app.app_context():
        row = db.session.scalars(
            select(CalendarConnection).where(
                CalendarConnection.user_id == user_id, CalendarConnection.provider == side.name
            )
        ).one()
        db.session.expunge(row)
        return row


def killed_sync(app: Flask, user_id: str, side: Side, page: int) -> SyncResult:
    """Run a sync of the user's connection that crashes after page ``page``."""
    with app.app_context():
        connection = db.session.scalars(
            select(CalendarConnection).where(
                CalendarConnection.user_id == user_id, CalendarConnection.provider == side.name
            )
        ).one()
        return run_sync(
            db.session, connection, get_settings(app), get_cipher(), on_page=kill_on_page(page)
        )


def add_provider_events(sandbox: Sandbox, side: Side, keys: range) -> None:
    """Owner-created events ``k{n}``, a few hours apart, every third one all-day."""
    for n in keys:
        if n % 3 == 0:
            day = timing(2 + n).start.date()  # type: ignore[union-attr]
            when = Timing(day, day + timedelta(days=1))
        else:
            when = timing(2 + n / 4)
        sandbox.create(side, side.body(f"Event {n}", when, f"k{n}"))


def listings(sandbox: Sandbox) -> int:
    """How many listing pages the provider served (events.list, calendarView delta); clears
    the request log."""
    log = sandbox.requests()
    sandbox.call("DELETE", "/requests", status=204)
    return sum(1 for e in log if e["method"] == "GET" and e["path"].endswith(("/events", "/delta")))


def by_key(sandbox: Sandbox, side: Side) -> dict[str, str]:
    """Provider event id per key."""
    return {str(side.view(item).key): item["id"] for item in sandbox.items(side)}


def assert_in_step(client: FlaskClient, auth: dict[str, str], sandbox: Sandbox, side: Side) -> None:
    """Both sides hold the same events, each CRM event linked to its own provider event."""
    items = crm_items(client, auth)
    assert crm_views(client, auth) == sandbox.views(side)
    linked = sorted(item["sources"][side.name] for item in items)
    assert linked == sorted(item["id"] for item in sandbox.items(side))
    assert len(set(linked)) == len(linked)


def test_sync_killed_between_pages_converges_like_an_uninterrupted_one(
    app: Flask,
    client: FlaskClient,
    token_for: Callable[[str], dict[str, str]],
    sandbox: Sandbox,
    side: Side,
) -> None:
    """A full sync killed after page 2 of 3 keeps those pages, no cursor; the next converges."""
    mine, reference = token_for("user-1"), token_for("user-2")
    other = replace(side, email=f"other.{side.email}")
    connect(client, mine, side)
    connect(client, reference, other)
    for account in (side, other):
        add_provider_events(sandbox, account, range(1, 9))  # pages of 3, 3 and 2
    listings(sandbox)

    killed = killed_sync(app, "user-1", side, page=1)

    assert (killed.success, killed.error, killed.events_created) == (False, UNEXPECTED, 6)
    assert listings(sandbox) == 2  # the third page was never read
    assert len(crm_items(client, mine)) == 6  # each page committed with its changes
    row = connection_of(app, "user-1", side)
    assert row.sync_cursor is None  # the cursor waits for the last page
    assert (row.last_sync_status, row.lease_owner) == ("FAILED", None)

    sync(client, reference, other)  # the same events, synced without interruption
    listings(sandbox)
    resumed = sync(client, mine, side)

    assert listings(sandbox) == 3  # a full listing again, from its first page
    assert (resumed["eventsCreated"], resumed["eventsUpdated"], resumed["eventsDeleted"]) == (
        2,
        0,
        0,
    )
    assert crm_views(client, mine) == crm_views(client, reference)
    assert len(crm_items(client, mine)) == 8
    assert_in_step(client, mine, sandbox, side)
    assert connection_of(app, "user-1", side).sync_cursor is not None
    again = sync(client, mine, side)
    assert [again[name] for name in ("eventsCreated", "eventsUpdated", "eventsDeleted")] == [0] * 3


def test_incremental_sync_killed_keeps_its_cursor_and_converges(
    app: Flask,
    client: FlaskClient,
    token_for: Callable[[str], dict[str, str]],
    sandbox: Sandbox,
    side: Side,
) -> None:
    """An incremental sync killed after its first page keeps the old cursor; the rest follows."""
    mine, reference = token_for("user-1"), token_for("user-2")
    other = replace(side, email=f"other.{side.email}")
    connect(client, mine, side)
    connect(client, reference, other)
    for auth, account in ((mine, side), (reference, other)):
        add_provider_events(sandbox, account, range(1, 9))
        sync(client, auth, account)
    cursor = connection_of(app, "user-1", side).sync_cursor
    assert cursor is not None
    for account in (side, other):  # seven changes: three pages
        add_provider_events(sandbox, account, range(9, 13))
        ids = by_key(sandbox, account)
        sandbox.patch(account, ids["k1"], account.body("Event 1 (moved)", timing(9)))
        sandbox.patch(account, ids["k2"], account.body("Event 2 (renamed)"))
        sandbox.delete(account, ids["k4"])

    listings(sandbox)
    killed = killed_sync(app, "user-1", side, page=0)

    assert (killed.success, killed.error) == (False, UNEXPECTED)
    assert listings(sandbox) == 1
    applied = killed.events_created + killed.events_updated + killed.events_deleted
    assert applied == PAGE
    assert connection_of(app, "user-1", side).sync_cursor == cursor

    sync(client, reference, other)
    resumed = sync(client, mine, side)

    # What the first page applied is not applied twice.
    done = resumed["eventsCreated"] + resumed["eventsUpdated"] + resumed["eventsDeleted"]
    assert done == 7 - applied
    assert crm_views(client, mine) == crm_views(client, reference)
    assert len(crm_items(client, mine)) == 11
    assert_in_step(client, mine, sandbox, side)
    assert connection_of(app, "user-1", side).sync_cursor not in (None, cursor)


def inserts(sandbox: Sandbox) -> int:
    """How many creates the provider answered (POST to a calendar's events)."""
    log = sandbox.requests()
    return sum(1 for e in log if e["method"] == "POST" and e["path"].endswith("/events"))


@pytest.mark.parametrize("days", [3, 400], ids=["in-window", "beyond-window"])
def test_push_killed_after_an_insert_takes_the_event_over(
    client: FlaskClient,
    auth: dict[str, str],
    sandbox: Sandbox,
    side: Side,
    monkeypatch: pytest.MonkeyPatch,
    days: int,
) -> None:
    """A push killed after a batch of inserts, before their links are committed, duplicates
    nothing."""
    connect(client, auth, side)
    sync(client, auth, side)
    for n in range(1, 4):
        body = {"title": f"CRM {n}", "location": f"k{n}", **timing(days + n).crm()}
        assert client.post(EVENTS, json=body, headers=auth).status_code == 201
    kind = GoogleCalendarClient if side.name == "GOOGLE" else GraphCalendarClient
    real = kind.write_batch

    def insert_then_die(self: Any, writes: Sequence[Write]) -> list[WriteResult]:
        real(self, writes)
        raise Killed("killed after the provider's inserts")

    monkeypatch.setattr(kind, "write_batch", insert_then_die)
    first = client.post(f"{CONNECTIONS}/{side.slug}/sync", headers=auth)
    assert (first.status_code, first.json["success"]) == (200, False)
    # The batch carried all three: each landed, none was recorded.
    assert sorted(view.key for view in sandbox.views(side)) == ["k1", "k2", "k3"]
    assert all(item["sources"] == {} for item in crm_items(client, auth))

    monkeypatch.setattr(kind, "write_batch", real)
    result = sync(client, auth, side)

    assert len(crm_items(client, auth)) == 3
    assert_in_step(client, auth, sandbox, side)
    if side.name == "OUTLOOK" and days > 365:
        # Beyond the delta window the pull never lists them: the inserts are sent again and
        # Graph answers each with the event its transactionId created the first time.
        assert (inserts(sandbox), result["eventsPushed"]) == (6, 3)
    else:
        # The pull lists them first and recognises the CRM's tag on each: no second insert.
        assert (inserts(sandbox), result["eventsPushed"]) == (3, 0)
    assert (result["eventsCreated"], result["eventsDeleted"]) == (0, 0)
    again = sync(client, auth, side)
    assert (again["eventsCreated"], again["eventsPushed"]) == (0, 0)
    assert len(sandbox.items(side)) == 3


@pytest.mark.parametrize("killed", [False, True], ids=["synced", "killed-listing"])
@pytest.mark.parametrize("origin", ["crm", "provider"])
def test_event_deleted_by_the_owner_before_a_saved_listing_showed_it_is_deleted_in_the_crm(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    sandbox: Sandbox,
    side: Side,
    origin: str,
    killed: bool,
) -> None:
    """An event no saved cursor listed yet, deleted by its owner, is deleted in the CRM too."""
    connect(client, auth, side)
    sync(client, auth, side)
    if origin == "crm":
        body = {"title": "Pushed", "location": "k1", **timing(3).crm()}
        assert client.post(EVENTS, json=body, headers=auth).status_code == 201
        assert sync(client, auth, side)["eventsPushed"] == 1
    else:
        sandbox.create(side, side.body("Pulled", timing(3), "k1"))
    if killed:  # this listing shows the event, but its cursor is never saved
        assert not killed_sync(app, "user-1", side, page=0).success
    elif origin == "provider":
        assert sync(client, auth, side)["eventsCreated"] == 1
    assert len(crm_items(client, auth)) == 1
    sandbox.delete(side, by_key(sandbox, side)["k1"])

    result = sync(client, auth, side)

    assert (result["eventsDeleted"], result["eventsPushed"]) == (1, 0)
    assert crm_items(client, auth) == []
    assert sandbox.items(side) == []


def set_lease(app: Flask, side: Side, owner: str, expires: datetime) -> None:
    with app.app_context():
        db.session.execute(
            update(CalendarConnection)
            .where(CalendarConnection.provider == side.name)
            .values(lease_owner=owner, lease_expires_at=expires)
        )
        db.session.commit()


def test_lease_left_by_a_dead_process_does_not_block_the_next_sync(
    app: Flask, client: FlaskClient, auth: dict[str, str], sandbox: Sandbox, side: Side
) -> None:
    """An expired lease (its process died mid-sync) is taken over, then released."""
    connect(client, auth, side)
    add_provider_events(sandbox, side, range(1, 3))
    set_lease(app, side, "dead-host:4242:0123456789ab", utcnow() - timedelta(seconds=1))

    result = sync(client, auth, side)

    assert result["eventsCreated"] == 2
    row = connection_of(app, "user-1", side)
    assert (row.lease_owner, row.lease_expires_at, row.last_sync_status) == (
        None,
        None,
        "SUCCESS",
    )


def test_unexpired_lease_gives_a_409_problem(
    app: Flask, client: FlaskClient, auth: dict[str, str], sandbox: Sandbox, side: Side
) -> None:
    """While another process holds the lease, a sync request is a 409 and touches nothing."""
    connect(client, auth, side)
    add_provider_events(sandbox, side, range(1, 3))
    expires = utcnow() + timedelta(seconds=60)
    set_lease(app, side, "busy-host:4242:0123456789ab", expires)
    before = len(sandbox.requests())

    answer = client.post(f"{CONNECTIONS}/{side.slug}/sync", headers=auth)

    assert answer.status_code == 409
    assert answer.mimetype == "application/problem+json"
    assert (answer.json["status"], answer.json["title"]) == (409, "Sync already running")
    assert len(sandbox.requests()) == before  # no provider call
    assert crm_items(client, auth) == []
    row = connection_of(app, "user-1", side)
    assert row.lease_owner == "busy-host:4242:0123456789ab"
    assert row.lease_expires_at == expires


@pytest.fixture
def gated_sandbox(http: responses.RequestsMock) -> Iterator[tuple[Sandbox, threading.Event]]:
    """A sandbox whose event listings wait, once armed, until the test lets them go.

    Yields the sandbox and ``entered``; ``sandbox.app.config["GATE"]`` is the release event.
    """
    app = create_sandbox_app()
    entered, release = threading.Event(), threading.Event()
    release.set()  # open until a test arms it

    @app.before_request
    def hold_listings() -> None:
        listing = request.path.endswith("/events") or request.path.endswith("/delta")
        if request.method == "GET" and listing and not release.is_set():
            entered.set()
            release.wait(10)

    app.config["GATE"] = release
    mount_sandbox(http, app, SANDBOX)
    yield Sandbox(app), entered
    release.set()


def test_two_syncs_of_one_connection_at_once_one_gets_409(
    app: Flask,
    auth: dict[str, str],
    gated_sandbox: tuple[Sandbox, threading.Event],
    side: Side,
) -> None:
    """A sync requested while another runs (held inside the provider call) is a 409."""
    sandbox, entered = gated_sandbox
    release: threading.Event = sandbox.app.config["GATE"]
    connect(app.test_client(), auth, side)
    add_provider_events(sandbox, side, range(1, 3))
    answers: dict[str, Any] = {}

    def run(name: str) -> None:
        answer = app.test_client().post(f"{CONNECTIONS}/{side.slug}/sync", headers=auth)
        answers[name] = (answer.status_code, answer.get_json())

    release.clear()
    first = threading.Thread(target=run, args=("first",))
    first.start()
    try:
        assert entered.wait(10), "the first sync never reached the provider"
        second = threading.Thread(target=run, args=("second",))
        second.start()
        second.join(10)
        assert not second.is_alive()
    finally:
        release.set()
        first.join(10)
    assert not first.is_alive()

    status, body = answers["first"]
    assert (status, body["success"], body["eventsCreated"]) == (200, True, 2)
    status, body = answers["second"]
    assert (status, body["status"], body["title"]) == (409, 409, "Sync already running")
    row = connection_of(app, "user-1", side)
    assert (row.lease_owner, row.lease_expires_at, row.last_sync_status) == (
        None,
        None,
        "SUCCESS",
    )
    assert sync(app.test_client(), auth, side)["eventsCreated"] == 0  # free again
