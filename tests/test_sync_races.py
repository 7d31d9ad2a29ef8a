"""Races between a running sync and everything else: a second sync, API writes, a disconnect.

The lease covers the whole sync, writes made through the API while a sync pushes are carried
out by the next push (never lost, never a failed sync), and a disconnect waits for the sync.
Everything runs against the provider sandbox mounted in-process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
from flask import Flask, request
from flask.testing import FlaskClient
from provider_sandbox import create_sandbox_app
from sqlalchemy import select, update

from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, CalendarEvent
from calendar_connections.providers.google.client import GoogleCalendarClient
from calendar_connections.providers.outlook.client import GraphCalendarClient
from calendar_connections.providers.types import Write, WriteResult

from .support.mount import mount_sandbox
from .support.sandbox import (
    CONNECTIONS,
    EVENTS,
    SANDBOX,
    Sandbox,
    Side,
    connect,
    crm_items,
    sandbox_config,
    sync,
    timing,
)

pytestmark = pytest.mark.app_config(**sandbox_config())


def is_insert(method: str, path: str) -> bool:
    """A provider create: POST to a calendar's events (not the sandbox's control API)."""
    return method == "POST" and path.endswith("/events") and not path.startswith("/sandbox")


def inserts(sandbox: Sandbox) -> int:
    return sum(1 for e in sandbox.requests() if is_insert(e["method"], e["path"]))


def create_events(client: FlaskClient, auth: dict[str, str], count: int) -> list[int]:
    ids = []
    for n in range(count):
        body = {"title": f"CRM {n}", "location": f"k{n}", **timing(2 + n / 8).crm()}
        answer = client.post(EVENTS, json=body, headers=auth)
        assert answer.status_code == 201, answer.json
        ids.append(answer.json["id"])
    return ids


@pytest.fixture
def hooked_sandbox(http: responses.RequestsMock) -> Iterator[tuple[Sandbox, list[Any]]]:
    """A sandbox that runs the test's hooks (callables of method and path) on each provider
    request before answering it: to slow it, or to act while the sync waits for it."""
    app = create_sandbox_app()
    hooks: list[Callable[[str, str], None]] = []

    @app.before_request
    def run_hooks() -> None:
        for hook in list(hooks):
            hook(request.method, request.path)

    mount_sandbox(http, app, SANDBOX)
    yield Sandbox(app), hooks
    hooks.clear()


def in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(target()))
    thread.start()
    return thread, result


def test_lease_covers_a_push_longer_than_its_ttl(
    make_app: Callable[..., Flask],
    token_for: Callable[[str], dict[str, str]],
    hooked_sandbox: tuple[Sandbox, list[Any]],
    side: Side,
) -> None:
    """TTL 2 s, inserts slowed to 0.5 s, 20 events: a second sync started mid-push is a 409,
    and the provider gets exactly 20 inserts."""
    app = make_app(**sandbox_config(SYNC_LEASE_TTL=2))
    client, auth = app.test_client(), token_for("user-1")
    sandbox, hooks = hooked_sandbox
    connect(client, auth, side)
    sync(client, auth, side)
    create_events(client, auth, 20)
    seen = {"inserts": 0}

    def slow_inserts(method: str, path: str) -> None:
        if is_insert(method, path):
            seen["inserts"] += 1
            time.sleep(0.5)

    hooks.append(slow_inserts)
    first, results = in_thread(
        lambda: app.test_client().post(f"{CONNECTIONS}/{side.slug}/sync", headers=auth)
    )
    deadline = time.monotonic() + 30
    while seen["inserts"] < 10 and time.monotonic() < deadline:  # 5 s in: 2.5 TTLs
        time.sleep(0.05)
    assert seen["inserts"] >= 10, "the push never got going"

    second = app.test_client().post(f"{CONNECTIONS}/{side.slug}/sync", headers=auth)
    first.join(60)

    assert not first.is_alive()
    assert second.status_code == 409, second.json
    assert second.json["title"] == "Sync already running"
    answer = results[0]
    assert answer.status_code == 200 and answer.json["success"] is True, answer.json
    assert answer.json["eventsPushed"] == 20
    assert inserts(sandbox) == 20
    assert len(sandbox.items(side)) == 20
    again = sync(client, auth, side)
    assert (again["eventsPushed"], again["eventsCreated"]) == (0, 0)


def test_a_sync_that_lost_its_lease_stops_before_its_next_write(
    make_app: Callable[..., Flask],
    token_for: Callable[[str], dict[str, str]],
    hooked_sandbox: tuple[Sandbox, list[Any]],
    side: Side,
) -> None:
    """Once another process holds the lease (ours was taken over), no further write is made:
    the heartbeat (every TTL/3) sees it during the slow batch of inserts under way."""
    app = make_app(**sandbox_config(SYNC_LEASE_TTL=3))
    client, auth = app.test_client(), token_for("user-1")
    sandbox, hooks = hooked_sandbox
    connect(client, auth, side)
    sync(client, auth, side)
    batch = (GoogleCalendarClient if side.name == "GOOGLE" else GraphCalendarClient).batch_size
    create_events(client, auth, batch + 5)  # more than one batch

    def take_over(method: str, path: str) -> None:
        if is_insert(method, path):
            hooks.clear()
            with app.app_context():
                db.session.execute(
                    update(CalendarConnection).values(lease_owner="other-host:1:0123456789ab")
                )
                db.session.commit()
            time.sleep(1.5)

    hooks.append(take_over)
    answer = client.post(f"{CONNECTIONS}/{side.slug}/sync", headers=auth)

    assert answer.status_code == 200
    assert answer.json["success"] is False
    assert "lost its lease" in answer.json["error"]
    # The batch under way when the lease went, and no other.
    assert inserts(sandbox) == batch
    with app.app_context():
        row = db.session.scalars(select(CalendarConnection)).one()
        assert row.lease_owner == "other-host:1:0123456789ab"  # the new holder's, untouched


@pytest.mark.parametrize("change", ["delete", "patch"])
def test_an_api_write_during_the_push_of_that_event_is_carried_out_next(
    make_app: Callable[..., Flask],
    token_for: Callable[[str], dict[str, str]],
    hooked_sandbox: tuple[Sandbox, list[Any]],
    side: Side,
    change: str,
) -> None:
    """DELETE or PATCH /events/{id} while the sync inserts that event: the sync succeeds, and
    the next one deletes (or updates) the provider's copy; nothing comes back."""
    app = make_app(**sandbox_config())
    client, auth = app.test_client(), token_for("user-1")
    sandbox, hooks = hooked_sandbox
    connect(client, auth, side)
    sync(client, auth, side)
    (event_id,) = create_events(client, auth, 1)
    answers: list[int] = []

    def write_meanwhile(method: str, path: str) -> None:
        if is_insert(method, path):
            hooks.clear()
            api = app.test_client()
            if change == "delete":
                answer = api.delete(f"{EVENTS}/{event_id}", headers=auth)
            else:
                answer = api.patch(f"{EVENTS}/{event_id}", json={"title": "Renamed"}, headers=auth)
            answers.append(answer.status_code)

    hooks.append(write_meanwhile)
    during = sync(client, auth, side)

    assert answers == [204 if change == "delete" else 200]
    assert during["eventsPushed"] == 1 and during["error"] is None
    after = sync(client, auth, side)
    assert after["eventsPushed"] == 1
    assert (after["eventsCreated"], after["eventsDeleted"]) == (0, 0)
    if change == "delete":
        assert crm_items(client, auth) == []
        assert sandbox.items(side) == []
    else:
        (item,) = crm_items(client, auth)
        assert item["title"] == "Renamed"
        assert [side.view(remote).title for remote in sandbox.items(side)] == ["Renamed"]
    final = sync(client, auth, side)
    assert (final["eventsPushed"], final["eventsCreated"], final["eventsDeleted"]) == (0, 0, 0)


def test_disconnect_during_a_sync_is_a_409_and_orphans_nothing(
    make_app: Callable[..., Flask],
    token_for: Callable[[str], dict[str, str]],
    hooked_sandbox: tuple[Sandbox, list[Any]],
    side: Side,
) -> None:
    """While a sync writes, disconnect answers 409 and changes nothing; afterwards it works."""
    app = make_app(**sandbox_config())
    client, auth = app.test_client(), token_for("user-1")
    sandbox, hooks = hooked_sandbox
    connect(client, auth, side)
    sync(client, auth, side)
    create_events(client, auth, 3)
    answers: list[Any] = []

    def disconnect_meanwhile(method: str, path: str) -> None:
        if is_insert(method, path):
            hooks.clear()
            answer = app.test_client().delete(f"{CONNECTIONS}/{side.slug}/disconnect", headers=auth)
            answers.append((answer.status_code, answer.mimetype, answer.get_json()))

    hooks.append(disconnect_meanwhile)
    result = sync(client, auth, side)

    ((status, mimetype, body),) = answers
    assert (status, mimetype) == (409, "application/problem+json")
    assert body["title"] == "Sync already running"
    assert result["eventsPushed"] == 3
    items = crm_items(client, auth)
    assert sorted(item["sources"][side.name] for item in items) == sorted(
        item["id"] for item in sandbox.items(side)
    )
    assert client.delete(f"{CONNECTIONS}/{side.slug}/disconnect", headers=auth).status_code == 204


def test_a_crashed_insert_of_an_event_deleted_since_is_deleted_not_brought_back(
    client: FlaskClient,
    auth: dict[str, str],
    http: responses.RequestsMock,
    side: Side,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A push killed after the provider's insert, then the owner deletes the CRM event: the
    provider's copy is found by its tag and deleted, not imported as a new event."""
    sandbox = Sandbox.mount(http)
    connect(client, auth, side)
    sync(client, auth, side)
    (event_id,) = create_events(client, auth, 1)
    kind = GoogleCalendarClient if side.name == "GOOGLE" else GraphCalendarClient
    real = kind.write_batch

    def insert_then_die(self: Any, writes: Sequence[Write]) -> list[WriteResult]:
        real(self, writes)
        raise RuntimeError("killed after the provider's insert")

    monkeypatch.setattr(kind, "write_batch", insert_then_die)
    killed = client.post(f"{CONNECTIONS}/{side.slug}/sync", headers=auth)
    assert killed.json["success"] is False
    monkeypatch.setattr(kind, "write_batch", real)
    (copy,) = sandbox.items(side)
    assert client.delete(f"{EVENTS}/{event_id}", headers=auth).status_code == 204

    result = sync(client, auth, side)

    assert (result["eventsCreated"], result["eventsPushed"]) == (0, 1)
    assert crm_items(client, auth) == []
    assert sandbox.items(side) == []
    assert copy["id"]


def test_a_provider_edit_after_a_crm_delete_wins(
    client: FlaskClient,
    auth: dict[str, str],
    http: responses.RequestsMock,
    side: Side,
    app: Flask,
) -> None:
    """Deleted in the CRM, then edited at the provider before the next sync: the later change
    (the edit) wins, so the event comes back in the CRM with the edit."""
    sandbox = Sandbox.mount(http)
    connect(client, auth, side)
    sync(client, auth, side)
    (event_id,) = create_events(client, auth, 1)
    sync(client, auth, side)
    assert client.delete(f"{EVENTS}/{event_id}", headers=auth).status_code == 204
    with app.app_context():  # deleted a minute ago: the provider's edit below is later
        db.session.execute(
            update(CalendarEvent).values(deleted_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        db.session.commit()
    (copy,) = sandbox.items(side)
    sandbox.patch(side, copy["id"], side.body("Edited at the provider", timing(2)))

    result = sync(client, auth, side)

    assert result["eventsUpdated"] == 1
    (item,) = crm_items(client, auth)
    assert (item["id"], item["title"]) == (event_id, "Edited at the provider")
    assert [side.view(remote).title for remote in sandbox.items(side)] == ["Edited at the provider"]
