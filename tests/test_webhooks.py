"""The webhook endpoints: trusted notifications make one background sync; forged ones do
nothing and are never a 5xx; Graph's validation handshake; lifecycle events; the due mark
survives a process that never syncs it; a database outage is a 503."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from calendar_connections import push_dispatch
from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, utcnow
from calendar_connections.models.push import PushChannel
from calendar_connections.operations import webhooks
from calendar_connections.push_dispatch import get_dispatcher
from calendar_connections.scheduler import run_round
from calendar_connections.sync.engine import SyncResult

from .support.sandbox import (
    CONNECTIONS,
    GOOGLE,
    OUTLOOK,
    SANDBOX,
    Sandbox,
    Side,
    connect,
    crm_items,
    sync,
    timing,
)
from .support.stack import wait_until

HOOKS = "/api/v1/crm/calendar/webhooks"
SECRET = "s3cret-" + "x" * 40
RESOURCE = "resource-of-the-calendar"
DELAY = 0.2


class Syncs:
    """Counts the syncs the dispatcher runs (through the scheduler's own entry)."""

    def __init__(self) -> None:
        self.results: list[SyncResult] = []
        self.lock = threading.Lock()

    def wrap(self, original: Callable[..., SyncResult | None]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> SyncResult | None:
            result = original(*args, **kwargs)
            with self.lock:
                if result is not None:
                    self.results.append(result)
            return result

        return counted

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.results)


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> Syncs:
    counter = Syncs()
    monkeypatch.setattr(
        push_dispatch, "sync_connection_by_id", counter.wrap(push_dispatch.sync_connection_by_id)
    )
    return counter


@pytest.fixture
def push_app(make_app: Callable[..., Flask], sandbox: Sandbox) -> Iterator[Flask]:
    """The service on the sandbox, syncing notified connections after DELAY seconds."""
    app = make_app(PROVIDER_SANDBOX_URL=SANDBOX, SYNC_RETRY_BACKOFF=0, WEBHOOK_SYNC_DELAY=DELAY)
    yield app
    get_dispatcher(app).shutdown()


@pytest.fixture
def client(push_app: Flask) -> FlaskClient:
    return push_app.test_client()


def connection_id(app: Flask, provider: str = "GOOGLE") -> int:
    with app.app_context():
        return int(
            db.session.execute(
                select(CalendarConnection.id).where(CalendarConnection.provider == provider)
            ).scalar_one()
        )


def add_channel(app: Flask, side: Side, channel_id: str = "channel-1") -> int:
    """A channel of the side's connection, as if opened with SECRET."""
    with app.app_context():
        connection = db.session.execute(
            select(CalendarConnection).where(CalendarConnection.provider == side.name)
        ).scalar_one()
        now = utcnow()
        connection.push_expires_at = now + timedelta(days=1)
        db.session.add(
            PushChannel(
                connection_id=connection.id,
                provider_channel_id=channel_id,
                resource_id=RESOURCE if side is GOOGLE else None,
                secret_hash=hashlib.sha256(SECRET.encode()).hexdigest(),
                expires_at=now + timedelta(days=1),
                renew_at=now + timedelta(hours=12),
            )
        )
        db.session.commit()
        return connection.id


def google_headers(number: int = 1, **overrides: str | None) -> dict[str, str]:
    headers: dict[str, str | None] = {
        "X-Goog-Channel-ID": "channel-1",
        "X-Goog-Channel-Token": SECRET,
        "X-Goog-Channel-Expiration": "Tue, 08 Dec 2026 06:00:00 GMT",
        "X-Goog-Resource-ID": RESOURCE,
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/primary/events",
        "X-Goog-Resource-State": "exists",
        "X-Goog-Message-Number": str(number),
        **overrides,
    }
    return {name: value for name, value in headers.items() if value is not None}


def graph_item(**overrides: Any) -> dict[str, Any]:
    item = {
        "subscriptionId": "channel-1",
        "subscriptionExpirationDateTime": "2026-12-04T06:00:00Z",
        "changeType": "created",
        "clientState": SECRET,
        "tenantId": "tenant",
        "resource": "Users/user/Events/event-1",
        "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "id": "event-1"},
        **overrides,
    }
    return {name: value for name, value in item.items() if value is not None}


def notify(client: FlaskClient, side: Side, number: int = 1) -> None:
    """A trusted notification from the side's provider."""
    if side is GOOGLE:
        answer = client.post(f"{HOOKS}/google", headers=google_headers(number))
        assert answer.status_code == 204, answer.data
    else:
        answer = client.post(f"{HOOKS}/outlook", json={"value": [graph_item()]})
        assert answer.status_code == 202, answer.data


def due_at(app: Flask, cid: int) -> datetime | None:
    with app.app_context():
        value: datetime | None = db.session.execute(
            select(CalendarConnection.push_due_at).where(CalendarConnection.id == cid)
        ).scalar_one_or_none()
        return value


def idle(app: Flask) -> bool:
    return not get_dispatcher(app).waiting()


@pytest.fixture
def connected(
    push_app: Flask, client: FlaskClient, auth: dict[str, str], side: Side
) -> tuple[Side, int]:
    """The side connected, synced once, with a channel open."""
    connect(client, auth, side)
    sync(client, auth, side)
    return side, add_channel(push_app, side)


def titles(client: FlaskClient, auth: dict[str, str]) -> set[str]:
    return {item["title"] for item in crm_items(client, auth)}


def test_a_trusted_notification_makes_one_background_sync(
    push_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    sandbox: Sandbox,
    syncs: Syncs,
    connected: tuple[Side, int],
) -> None:
    side, cid = connected
    sandbox.create(side, side.body("Pushed here", timing(2), "key-1"))
    notify(client, side)
    assert due_at(push_app, cid) is not None  # recorded before the answer
    wait_until(lambda: "Pushed here" in titles(client, auth), 15, "the background work")
    wait_until(lambda: idle(push_app), 15, "the background work")
    assert syncs.count == 1
    assert syncs.results[0].events_created == 1
    assert due_at(push_app, cid) is None


@pytest.mark.parametrize("side", [GOOGLE], ids=["google"])
def test_googles_sync_message_is_acknowledged_only(
    push_app: Flask, client: FlaskClient, connected: tuple[Side, int]
) -> None:
    _, cid = connected
    answer = client.post(
        f"{HOOKS}/google", headers=google_headers(0, **{"X-Goog-Resource-State": "sync"})
    )
    assert answer.status_code == 204
    assert due_at(push_app, cid) is None
    assert idle(push_app)


def test_a_burst_of_twenty_changes_makes_few_syncs_and_all_arrive(
    push_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    sandbox: Sandbox,
    syncs: Syncs,
    connected: tuple[Side, int],
) -> None:
    side, _ = connected
    for n in range(20):
        sandbox.create(side, side.body(f"Burst {n}", timing(2 + n), f"burst-{n}"))
        notify(client, side, number=n + 2)
    wait_until(lambda: idle(push_app) and syncs.count > 0, 15, "the background work")
    assert titles(client, auth) >= {f"Burst {n}" for n in range(20)}
    assert 1 <= syncs.count <= 3
    assert sum(result.events_created for result in syncs.results) == 20


def test_a_notification_during_a_running_sync_syncs_again_after_it(
    push_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    sandbox: Sandbox,
    syncs: Syncs,
    connected: tuple[Side, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    side, cid = connected
    listing = threading.Event()
    go_on = threading.Event()
    original = push_dispatch.sync_connection_by_id  # counted by ``syncs``

    def slow(app: Flask, connection_id: int, owner: str | None = None) -> Any:
        listing.set()
        assert go_on.wait(10)
        return original(app, connection_id, owner)

    monkeypatch.setattr(push_dispatch, "sync_connection_by_id", slow)
    sandbox.create(side, side.body("First", timing(2), "first"))
    notify(client, side)
    assert listing.wait(10)  # the sync started: it holds the lease, the mark is cleared
    assert due_at(push_app, cid) is None
    sandbox.create(side, side.body("Second", timing(3), "second"))
    notify(client, side, number=3)
    assert due_at(push_app, cid) is not None
    monkeypatch.setattr(push_dispatch, "sync_connection_by_id", original)
    go_on.set()
    wait_until(lambda: syncs.count == 2 and idle(push_app), 15, "the background work")
    assert {"First", "Second"} <= titles(client, auth)
    assert due_at(push_app, cid) is None


def test_duplicate_and_out_of_order_notifications_change_nothing(
    push_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    sandbox: Sandbox,
    syncs: Syncs,
    connected: tuple[Side, int],
) -> None:
    side, _ = connected
    sandbox.create(side, side.body("Once", timing(2), "once"))
    notify(client, side, number=5)
    wait_until(lambda: syncs.count == 1 and idle(push_app), 15, "the background work")
    before = crm_items(client, auth)
    for number in (5, 3, 5, 4):  # Google's overlap during renewal, retries, reordering
        notify(client, side, number=number)
    wait_until(lambda: idle(push_app), 15, "the background work")
    assert crm_items(client, auth) == before
    assert all(
        (r.events_created, r.events_updated, r.events_deleted) == (0, 0, 0)
        for r in syncs.results[1:]
    )


# Forged notifications: each answered as Google or Graph expect (or a 4xx for a body that
# cannot be Graph's), none marks anything due or syncs.
FORGED_GOOGLE = {
    "wrong token": google_headers(**{"X-Goog-Channel-Token": SECRET + "x"}),
    "no token": google_headers(**{"X-Goog-Channel-Token": None}),
    "unknown channel": google_headers(**{"X-Goog-Channel-ID": "channel-2"}),
    "wrong resource": google_headers(**{"X-Goog-Resource-ID": "another"}),
    "no resource": google_headers(**{"X-Goog-Resource-ID": None}),
    "unknown state": google_headers(**{"X-Goog-Resource-State": "deleted"}),
    "no headers": {},
    "huge channel id": google_headers(**{"X-Goog-Channel-ID": "c" * 5000}),
    "huge token": google_headers(**{"X-Goog-Channel-Token": SECRET * 100}),
    "NUL in channel id": google_headers(**{"X-Goog-Channel-ID": "channel-1\x00"}),
}


@pytest.mark.parametrize("side", [GOOGLE], ids=["google"])
@pytest.mark.parametrize("headers", list(FORGED_GOOGLE.values()), ids=list(FORGED_GOOGLE))
def test_forged_google_notifications_do_nothing(
    push_app: Flask, client: FlaskClient, connected: tuple[Side, int], headers: dict[str, str]
) -> None:
    _, cid = connected
    answer = client.post(f"{HOOKS}/google", headers=headers)
    assert answer.status_code == 204
    assert due_at(push_app, cid) is None
    assert idle(push_app)


@pytest.mark.parametrize("side", [GOOGLE], ids=["google"])
@pytest.mark.parametrize(
    "body, content_type",
    [(b"\xff\xfe garbage", "application/octet-stream"), (b"x" * 2_000_000, "text/plain")],
    ids=["garbage body", "oversized body"],
)
def test_google_ignores_any_body(
    push_app: Flask,
    client: FlaskClient,
    connected: tuple[Side, int],
    body: bytes,
    content_type: str,
) -> None:
    _, cid = connected
    answer = client.post(
        f"{HOOKS}/google",
        headers=google_headers(**{"X-Goog-Channel-Token": "forged"}),
        data=body,
        content_type=content_type,
    )
    assert answer.status_code == 204
    assert due_at(push_app, cid) is None


FORGED_GRAPH: dict[str, tuple[Any, str, int]] = {
    "wrong clientState": ({"value": [graph_item(clientState="guess")]}, "application/json", 202),
    "no clientState": ({"value": [graph_item(clientState=None)]}, "application/json", 202),
    "unknown subscription": (
        {"value": [graph_item(subscriptionId="another")]},
        "application/json",
        202,
    ),
    "clientState not a string": (
        {"value": [graph_item(clientState=[SECRET])]},
        "application/json",
        202,
    ),
    "items not objects": ({"value": [1, "a", None, [SECRET]]}, "application/json", 202),
    "empty value": ({"value": []}, "application/json", 202),
    "forged with another content type": (
        {"value": [graph_item(clientState="guess")]},
        "text/plain",
        202,
    ),
    "no value": ({"values": [graph_item()]}, "application/json", 400),
    "not an object": ([graph_item()], "application/json", 400),
    "garbage body": (b"\xff{not json", "application/json", 400),
    "empty body": (b"", "application/json", 400),
    "too deep": (b"[" * 100 + b"]" * 100, "application/json", 400),
    "oversized body": (b'{"value": [' + b" " * 2_000_000 + b"]}", "application/json", 413),
}


@pytest.mark.parametrize("side", [OUTLOOK], ids=["outlook"])
@pytest.mark.parametrize(
    "body, content_type, status", list(FORGED_GRAPH.values()), ids=list(FORGED_GRAPH)
)
def test_forged_graph_notifications_do_nothing(
    push_app: Flask,
    client: FlaskClient,
    connected: tuple[Side, int],
    body: Any,
    content_type: str,
    status: int,
) -> None:
    _, cid = connected
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = client.post(f"{HOOKS}/outlook", data=data, content_type=content_type)
    assert answer.status_code == status, answer.data
    if status >= 400:
        assert answer.mimetype == "application/problem+json"
    assert due_at(push_app, cid) is None
    assert idle(push_app)


def test_a_notification_after_disconnect_does_nothing(
    push_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    syncs: Syncs,
    connected: tuple[Side, int],
) -> None:
    side, _ = connected
    answer = client.delete(f"{CONNECTIONS}/{side.slug}/disconnect", headers=auth)
    assert answer.status_code == 204
    notify(client, side)
    time.sleep(DELAY * 3)
    assert idle(push_app)
    assert syncs.count == 0


@pytest.mark.parametrize(
    "token",
    [
        "Validation: Testing client application reachability for subscription Request-Id: "
        "b1f3ab2e-27a3-4e8a-9c3d-4f6f0d1d2c3e",
        "<script>alert(1)</script>",
        "a+b c&d=e%f",
        "",
    ],
    ids=["graph", "markup", "reserved characters", "empty"],
)
def test_the_validation_handshake_echoes_the_token_as_plain_text(
    client: FlaskClient, token: str
) -> None:
    answer = client.post(f"{HOOKS}/outlook?validationToken={quote(token, safe='')}")
    assert answer.status_code == 200
    assert answer.mimetype == "text/plain"
    assert answer.get_data(as_text=True) == token
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_a_validation_token_too_long_is_a_400(client: FlaskClient) -> None:
    answer = client.post(f"{HOOKS}/outlook?validationToken={'a' * 3000}")
    assert answer.status_code == 400
    assert answer.mimetype == "application/problem+json"


@pytest.mark.parametrize("side", [OUTLOOK], ids=["outlook"])
def test_lifecycle_events_renew_reopen_and_sync(
    push_app: Flask,
    client: FlaskClient,
    syncs: Syncs,
    connected: tuple[Side, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, cid = connected
    done: list[tuple[str, int]] = []
    monkeypatch.setattr(
        webhooks,
        "renew_now",
        lambda session, settings, channel: done.append(("renew", channel.connection_id)),
    )
    monkeypatch.setattr(
        webhooks,
        "reopen",
        lambda session, settings, connection_id: done.append(("reopen", connection_id)),
    )

    def lifecycle(event: str) -> None:
        item = graph_item(lifecycleEvent=event, changeType=None, resource=None, resourceData=None)
        answer = client.post(f"{HOOKS}/outlook", json={"value": [item]})
        assert answer.status_code == 202

    lifecycle("reauthorizationRequired")
    wait_until(lambda: done == [("renew", cid)] and idle(push_app), 15, "the background work")
    assert syncs.count == 0  # renewing needs no sync
    lifecycle("missed")
    wait_until(lambda: syncs.count == 1 and idle(push_app), 15, "the background work")
    lifecycle("subscriptionRemoved")
    wait_until(
        lambda: syncs.count == 2 and idle(push_app) and len(done) == 2, 15, "the background work"
    )
    assert done[1] == ("reopen", cid)
    forged = graph_item(lifecycleEvent="subscriptionRemoved", clientState="guess")
    assert client.post(f"{HOOKS}/outlook", json={"value": [forged]}).status_code == 202
    assert len(done) == 2 and due_at(push_app, cid) is None


def test_the_due_mark_survives_a_process_that_never_syncs_it(
    push_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    sandbox: Sandbox,
    connected: tuple[Side, int],
) -> None:
    """As after a kill -9 of the worker that received it: a scheduler round syncs it."""
    side, cid = connected
    get_dispatcher(push_app).shutdown()  # this process will never sync it
    sandbox.create(side, side.body("Survives", timing(2), "survives"))
    notify(client, side)
    assert due_at(push_app, cid) is not None
    assert "Survives" not in titles(client, auth)
    outcome = run_round(push_app)
    assert outcome.claimed == 1 and outcome.failed == 0
    assert "Survives" in titles(client, auth)
    assert due_at(push_app, cid) is None


def test_the_webhooks_are_documented_without_bearer_auth(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").json
    google = spec["paths"]["/crm/calendar/webhooks/google"]["post"]
    outlook = spec["paths"]["/crm/calendar/webhooks/outlook"]["post"]
    assert google["security"] == [] and outlook["security"] == []
    assert "204" in google["responses"]
    assert {"200", "202", "400", "413"} <= set(outlook["responses"])
    assert "text/plain" in outlook["responses"]["200"]["content"]
    assert "X-Goog-Channel-Token" in {p["name"] for p in google["parameters"]}


def test_a_database_outage_is_a_503_the_provider_retries(make_app: Callable[..., Flask]) -> None:
    down = make_app(DATABASE_URL="sqlite:////nonexistent-dir/x.sqlite").test_client()
    google = down.post(f"{HOOKS}/google", headers=google_headers())
    graph = down.post(f"{HOOKS}/outlook", json={"value": [graph_item()]})
    for answer in (google, graph):
        assert answer.status_code == 503
        assert answer.mimetype == "application/problem+json"
        assert answer.headers["Retry-After"]


@pytest.mark.parametrize("side", [OUTLOOK], ids=["outlook"])
def test_a_storm_of_subscription_removed_reopens_once(
    push_app: Flask,
    client: FlaskClient,
    syncs: Syncs,
    connected: tuple[Side, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, cid = connected
    reopened: list[int] = []
    release = threading.Event()

    def slow_reopen(session: Any, settings: Any, connection_id: int) -> None:
        reopened.append(connection_id)
        assert release.wait(15)

    monkeypatch.setattr(webhooks, "reopen", slow_reopen)
    removed = graph_item(lifecycleEvent="subscriptionRemoved", changeType=None, resource=None)
    # One body repeating it a thousand times, then more bodies while the first reopen runs.
    assert client.post(f"{HOOKS}/outlook", json={"value": [removed] * 1000}).status_code == 202
    wait_until(lambda: reopened == [cid], 15, "the reopen")
    for _ in range(3):
        assert client.post(f"{HOOKS}/outlook", json={"value": [removed]}).status_code == 202
    release.set()
    wait_until(lambda: syncs.count == 1 and idle(push_app), 15, "the background work")
    assert reopened == [cid]


@pytest.mark.parametrize("side", [OUTLOOK], ids=["outlook"])
def test_a_body_naming_a_thousand_subscriptions_is_one_lookup(
    push_app: Flask, client: FlaskClient, syncs: Syncs, connected: tuple[Side, int]
) -> None:
    _, cid = connected
    forged = [graph_item(subscriptionId=f"forged-{n}", clientState="y" * 128) for n in range(999)]
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    with push_app.app_context():
        engine = db.engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", record)
    try:
        answer = client.post(f"{HOOKS}/outlook", json={"value": [*forged, graph_item()]})
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", record)
    assert answer.status_code == 202
    lookups = [s for s in sent if s.lstrip().upper().startswith("SELECT")]
    assert len(lookups) == 1 and "push_channel" in lookups[0], sent
    assert due_at(push_app, cid) is not None  # the one of ours among them still counts
    wait_until(lambda: syncs.count == 1 and idle(push_app), 15, "the background work")
