"""The provider sandbox's Graph subscriptions: the validation handshake against a real HTTP
receiver on loopback, renewal, deletion, change and lifecycle notifications, faults."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from provider_sandbox import create_sandbox_app

from .support.microsoft_sandbox import GRAPH, connect, event
from .support.push_receiver import Receiver, receiver, settled, wait_until
from .support.sandbox_direct import app, client

__all__ = ["app", "client", "receiver"]  # fixtures used as arguments

EMAIL = "carol@outlook.test"
SUBSCRIPTIONS = f"{GRAPH}/subscriptions"
OWNER = f"/sandbox/microsoft/{EMAIL}/events"
HOOK = "/hooks/outlook"
LIFECYCLE = "/hooks/outlook/lifecycle"
SECRET = "client-state-secret"


def _later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat().replace("+00:00", "Z")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _subscribe(
    client: FlaskClient, headers: dict[str, str], receiver: Receiver, **extra: Any
) -> Any:
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": receiver.url + HOOK,
        "lifecycleNotificationUrl": receiver.url + LIFECYCLE,
        "resource": "me/events",
        "clientState": SECRET,
        "expirationDateTime": _later(hours=1),
        **extra,
    }
    return client.post(SUBSCRIPTIONS, headers=headers, json=body)


def _subscribed(client: FlaskClient, headers: dict[str, str], receiver: Receiver) -> Any:
    answer = _subscribe(client, headers, receiver)
    assert answer.status_code == 201, answer.json
    return answer.json


def _items(receiver: Receiver, path: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` notification items at ``path`` (several may share one POST)."""
    items: list[dict[str, Any]] = []

    def enough() -> bool:
        items[:] = [item for got in receiver.at(path) for item in _value(got.body)]
        return len(items) >= count

    wait_until(enough, f"{count} notification items at {path}")
    return items


def _value(body: bytes) -> list[dict[str, Any]]:
    value: list[dict[str, Any]] = json.loads(body)["value"]
    return value


def test_create_validates_both_urls_then_answers_201(
    client: FlaskClient, receiver: Receiver
) -> None:
    headers = connect(client, EMAIL)
    before = datetime.now(UTC)
    answer = _subscribe(client, headers, receiver, expirationDateTime=_later(days=10))
    assert answer.status_code == 201
    body = answer.json
    assert body["@odata.context"].endswith("/graph/v1.0/$metadata#subscriptions/$entity")
    assert body["resource"] == "me/events"
    assert body["changeType"] == "created,updated,deleted"
    assert body["clientState"] == SECRET
    assert body["notificationUrl"] == receiver.url + HOOK
    assert body["lifecycleNotificationUrl"] == receiver.url + LIFECYCLE
    assert len(body["id"]) == 36 and body["id"].count("-") == 4  # a GUID
    expiration = _instant(body["expirationDateTime"])
    # Capped at the default lifetime (4,230 minutes), not the 10 days asked for.
    assert before + timedelta(minutes=4229) < expiration
    assert expiration <= datetime.now(UTC) + timedelta(minutes=4230)

    for path in (HOOK, LIFECYCLE):
        [handshake] = receiver.at(path, validations=True)
        assert handshake.method == "POST"
        assert handshake.headers["Content-Type"].startswith("text/plain")
        assert handshake.body == b""
        assert handshake.validation_token is not None
        assert handshake.validation_token.startswith("Validation: ")  # spaces and colons
    assert receiver.at(HOOK) == [] and receiver.at(LIFECYCLE) == []
    view = client.get("/sandbox/push").json
    assert [s["id"] for s in view["graphSubscriptions"]] == [body["id"]]
    kinds = [(d["kind"], d["status"], d["error"]) for d in view["deliveries"]]
    assert kinds == [("graph.validation", 200, None), ("graph.validation", 200, None)]


@pytest.mark.parametrize("resource", ["/me/events", "me/calendar/events", "/me/calendar/events"])
def test_every_events_resource_of_the_mailbox_is_accepted(
    client: FlaskClient, receiver: Receiver, resource: str
) -> None:
    headers = connect(client, EMAIL)
    assert _subscribe(client, headers, receiver, resource=resource).status_code == 201
    calendar_id = client.get(f"{GRAPH}/me/calendar", headers=headers).json["id"]
    by_id = _subscribe(client, headers, receiver, resource=f"me/calendars/{calendar_id}/events")
    assert by_id.status_code == 201


@pytest.mark.parametrize("validation", ["wrong", "status", "json"])
def test_a_failed_handshake_is_400_and_creates_nothing(
    client: FlaskClient, receiver: Receiver, validation: str
) -> None:
    headers = connect(client, EMAIL)
    receiver.validation = validation
    answer = _subscribe(client, headers, receiver)
    assert answer.status_code == 400
    assert answer.json["error"]["code"] == "ValidationError"
    view = settled(client)
    assert view["graphSubscriptions"] == []
    assert [d["kind"] for d in view["deliveries"]] == ["graph.validation"]
    assert view["deliveries"][0]["error"].startswith("Subscription validation request failed")
    client.post(OWNER, json=event(3))
    assert settled(client)["deliveries"] == view["deliveries"]
    assert receiver.at(HOOK) == []


def test_create_refuses_bad_bodies(client: FlaskClient, receiver: Receiver) -> None:
    headers = connect(client, EMAIL)
    assert _subscribe(client, {}, receiver).status_code == 401
    bad = [
        {"changeType": "moved"},
        {"changeType": None},
        {"resource": "me/messages"},
        {"notificationUrl": "nowhere"},
        {"clientState": "s" * 129},
        {"expirationDateTime": _later(minutes=-1)},
        {"expirationDateTime": "tomorrow"},
    ]
    for extra in bad:
        answer = _subscribe(client, headers, receiver, **extra)
        assert answer.status_code == 400, extra
        assert answer.json["error"]["code"] == "InvalidRequest"
    other = _subscribe(client, headers, receiver, resource="me/calendars/AAMkADother/events")
    assert other.status_code == 404
    assert client.post(SUBSCRIPTIONS, headers=headers, data="x").status_code == 400
    assert receiver.received == []  # nothing refused got as far as the handshake


def test_get_renew_delete_and_404s(client: FlaskClient, receiver: Receiver) -> None:
    headers = connect(client, EMAIL)
    made = _subscribed(client, headers, receiver)
    url = f"{SUBSCRIPTIONS}/{made['id']}"
    got = client.get(url, headers=headers)
    assert got.status_code == 200
    assert got.json["id"] == made["id"]
    assert got.json["expirationDateTime"] == made["expirationDateTime"]
    assert [s["id"] for s in client.get(SUBSCRIPTIONS, headers=headers).json["value"]] == [
        made["id"]
    ]

    renewed = client.patch(url, headers=headers, json={"expirationDateTime": _later(days=30)})
    assert renewed.status_code == 200
    expiration = _instant(renewed.json["expirationDateTime"])
    assert expiration <= datetime.now(UTC) + timedelta(minutes=4230)
    assert expiration > _instant(made["expirationDateTime"])
    [listed] = client.get("/sandbox/push").json["graphSubscriptions"]
    assert listed["renewedAt"] is not None
    assert client.patch(url, headers=headers, json={}).status_code == 400

    client.post("/sandbox/push/lifetimes", json={"graphSubscriptionSeconds": 30})
    capped = client.patch(url, headers=headers, json={"expirationDateTime": _later(hours=2)})
    assert _instant(capped.json["expirationDateTime"]) <= datetime.now(UTC) + timedelta(seconds=30)

    stranger = connect(client, "dave@outlook.test")
    assert client.get(url, headers=stranger).status_code == 404
    assert client.delete(url, headers=stranger).status_code == 404
    deleted = client.delete(url, headers=headers)
    assert deleted.status_code == 204
    for answer in (
        client.get(url, headers=headers),
        client.patch(url, headers=headers, json={"expirationDateTime": _later(hours=1)}),
        client.delete(url, headers=headers),
        client.get(f"{SUBSCRIPTIONS}/00000000-0000-0000-0000-000000000000", headers=headers),
    ):
        assert answer.status_code == 404
        assert answer.json["error"]["code"] == "ResourceNotFound"
    [listed] = client.get("/sandbox/push").json["graphSubscriptions"]
    assert listed["deleted"] is True
    logged = [(e["method"], e["status"]) for e in client.get("/sandbox/requests").json]
    after_delete = [("DELETE", 204), ("GET", 404), ("PATCH", 404), ("DELETE", 404), ("GET", 404)]
    assert logged[-5:] == after_delete
    counts = client.get("/sandbox/state").json["requests"]
    assert counts[f"POST {SUBSCRIPTIONS}"] == 1
    assert counts[f"DELETE {url}"] == 3  # the stranger's, the owner's, the owner's again
    client.post(OWNER, json=event(4))
    assert settled(client)["pendingDeliveries"] == 0
    assert receiver.at(HOOK) == []


def test_change_notifications_for_created_updated_deleted(
    client: FlaskClient, receiver: Receiver
) -> None:
    headers = connect(client, EMAIL)
    subscription = _subscribed(client, headers, receiver)
    user_id = client.get(f"{GRAPH}/me", headers=headers).json["id"]
    made = client.post(f"{GRAPH}/me/events", headers=headers, json=event(5)).json
    patched = client.patch(f"{OWNER}/{made['id']}", json={"subject": "Moved"}).json
    assert client.delete(f"{GRAPH}/me/events/{made['id']}", headers=headers).status_code == 204
    items = _items(receiver, HOOK, 3)
    assert len(items) == 3
    assert [item["changeType"] for item in items] == ["created", "updated", "deleted"]
    resource = f"Users/{user_id}/Events/{made['id']}"
    for item, etag in zip(items, [made, patched, patched], strict=True):
        assert item["subscriptionId"] == subscription["id"]
        assert item["subscriptionExpirationDateTime"] == subscription["expirationDateTime"]
        assert item["clientState"] == SECRET
        assert item["tenantId"]
        assert item["resource"] == resource
        assert item["resourceData"] == {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": resource,
            "@odata.etag": etag["@odata.etag"],
            "id": made["id"],
        }
    for got in receiver.at(HOOK):
        assert got.headers["Content-Type"].startswith("application/json")
    deliveries = [d for d in settled(client)["deliveries"] if d["kind"] == "graph.change"]
    assert sum(d["items"] for d in deliveries) == 3
    assert all(d["status"] == 202 for d in deliveries)


def test_batch_writes_notify_and_change_types_filter(
    client: FlaskClient, receiver: Receiver
) -> None:
    headers = connect(client, EMAIL)
    created_only = _subscribe(
        client, headers, receiver, changeType="created", notificationUrl=receiver.url + "/created"
    ).json
    _subscribed(client, headers, receiver)
    batch = {
        "requests": [
            {
                "id": str(day),
                "method": "POST",
                "url": "/me/events",
                "headers": {"Content-Type": "application/json"},
                "body": event(day),
            }
            for day in (6, 7)
        ]
    }
    answer = client.post(f"{GRAPH}/$batch", headers=headers, json=batch)
    assert [r["status"] for r in answer.json["responses"]] == [201, 201]
    first = answer.json["responses"][0]["body"]["id"]
    client.patch(f"{OWNER}/{first}", json={"subject": "Renamed"})
    items = _items(receiver, HOOK, 3)
    assert [item["changeType"] for item in items] == ["created", "created", "updated"]
    settled(client)
    created = [item for got in receiver.at("/created") for item in _value(got.body)]
    assert [item["changeType"] for item in created] == ["created", "created"]
    assert {item["subscriptionId"] for item in created} == {created_only["id"]}


def test_an_expired_subscription_sends_nothing(client: FlaskClient, receiver: Receiver) -> None:
    headers = connect(client, EMAIL)
    client.post("/sandbox/push/lifetimes", json={"graphSubscriptionSeconds": 1})
    made = _subscribed(client, headers, receiver)
    wait_until(
        lambda: client.get("/sandbox/push").json["graphSubscriptions"][0]["expired"], "expiry"
    )
    client.post(OWNER, json=event(8))
    assert settled(client)["pendingDeliveries"] == 0
    assert receiver.at(HOOK) == []
    assert client.get(f"{SUBSCRIPTIONS}/{made['id']}", headers=headers).status_code == 404


@pytest.mark.parametrize("lifecycle", ["reauthorizationRequired", "missed"])
def test_lifecycle_notifications_keep_the_subscription(
    client: FlaskClient, receiver: Receiver, lifecycle: str
) -> None:
    headers = connect(client, EMAIL)
    made = _subscribed(client, headers, receiver)
    answer = client.post(f"/sandbox/push/graph/{made['id']}/lifecycle", json={"event": lifecycle})
    assert answer.status_code == 202
    [item] = _items(receiver, LIFECYCLE, 1)
    assert item == {
        "subscriptionId": made["id"],
        "subscriptionExpirationDateTime": made["expirationDateTime"],
        "tenantId": item["tenantId"],
        "clientState": SECRET,
        "lifecycleEvent": lifecycle,
    }
    assert client.get(f"{SUBSCRIPTIONS}/{made['id']}", headers=headers).status_code == 200
    reauthorized = client.post(f"{SUBSCRIPTIONS}/{made['id']}/reauthorize", headers=headers)
    assert reauthorized.status_code == 204
    client.post(OWNER, json=event(9))
    assert [i["changeType"] for i in _items(receiver, HOOK, 1)] == ["created"]


def test_subscription_removed_removes_it(client: FlaskClient, receiver: Receiver) -> None:
    headers = connect(client, EMAIL)
    made = _subscribed(client, headers, receiver)
    url = f"/sandbox/push/graph/{made['id']}/lifecycle"
    assert client.post(url, json={"event": "subscriptionRemoved"}).status_code == 202
    [item] = _items(receiver, LIFECYCLE, 1)
    assert item["lifecycleEvent"] == "subscriptionRemoved"
    assert client.get(f"{SUBSCRIPTIONS}/{made['id']}", headers=headers).status_code == 404
    gone = client.post(f"{SUBSCRIPTIONS}/{made['id']}/reauthorize", headers=headers)
    assert gone.status_code == 404
    client.post(OWNER, json=event(10))
    view = settled(client)
    assert receiver.at(HOOK) == []
    assert view["graphSubscriptions"][0]["deleted"] is True
    assert client.post(url, json={"event": "missed"}).status_code == 404
    assert (
        client.post("/sandbox/push/graph/unknown/lifecycle", json={"event": "missed"}).status_code
        == 404
    )
    no_lifecycle = _subscribe(client, headers, receiver, lifecycleNotificationUrl=None).json
    refused = client.post(
        f"/sandbox/push/graph/{no_lifecycle['id']}/lifecycle", json={"event": "missed"}
    )
    assert refused.status_code == 409
    bad = client.post(f"/sandbox/push/graph/{no_lifecycle['id']}/lifecycle", json={"event": "x"})
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("method", "status"), [("POST", 503), ("PATCH", 429), ("DELETE", 503), ("GET", 503)]
)
def test_faults_apply_to_subscriptions(
    client: FlaskClient, receiver: Receiver, method: str, status: int
) -> None:
    headers = connect(client, EMAIL)
    made = None if method == "POST" else _subscribed(client, headers, receiver)
    client.delete("/sandbox/requests")
    path = SUBSCRIPTIONS if made is None else f"{SUBSCRIPTIONS}/{made['id']}"
    client.post("/sandbox/faults", json={"method": method, "path": path, "status": status})
    if made is None:
        answer = _subscribe(client, headers, receiver)
    else:
        body = {"expirationDateTime": _later(hours=2)}
        answer = client.open(path, method=method, headers=headers, json=body)
    assert answer.status_code == status
    assert answer.json["error"]["code"] in ("ServiceNotAvailable", "TooManyRequests")
    log = client.get("/sandbox/requests").json
    assert [(e["method"], e["path"], e["status"], e["fault"]) for e in log] == [
        (method, path, status, True)
    ]
    view = settled(client)
    if made is None:
        assert view["graphSubscriptions"] == []
        assert receiver.received == []  # no handshake either
    else:
        [listed] = view["graphSubscriptions"]
        assert listed["deleted"] is False
        assert listed["expirationDateTime"] == made["expirationDateTime"]


def test_a_mailbox_has_a_limited_number_of_live_subscriptions(receiver: Receiver) -> None:
    client = create_sandbox_app({"SANDBOX_GRAPH_MAILBOX_SUBSCRIPTIONS": 2}).test_client()
    headers = connect(client, EMAIL)
    first = _subscribed(client, headers, receiver)
    _subscribed(client, headers, receiver)
    full = _subscribe(client, headers, receiver)
    assert full.status_code == 403
    assert full.json["error"]["code"] == "ExtensionError"
    assert len(receiver.at(HOOK, validations=True)) == 2  # refused before any handshake
    assert _subscribe(client, connect(client, "dave@outlook.test"), receiver).status_code == 201
    client.delete(f"{SUBSCRIPTIONS}/{first['id']}", headers=headers)
    assert _subscribe(client, headers, receiver).status_code == 201


def test_a_change_notification_answered_5xx_is_sent_again(receiver: Receiver) -> None:
    config = {"SANDBOX_PUSH_RETRIES": 1, "SANDBOX_PUSH_RETRY_SECONDS": 0.05}
    client = create_sandbox_app(config).test_client()
    headers = connect(client, EMAIL)
    _subscribed(client, headers, receiver)
    receiver.failures = 1
    client.post(OWNER, json=event(11))
    first, again = _items(receiver, HOOK, 2)
    assert first == again
    changes = [d for d in settled(client)["deliveries"] if d["kind"] == "graph.change"]
    assert [(d["attempt"], d["status"]) for d in changes] == [(1, 503), (2, 202)]


def test_the_handshake_does_not_hold_the_store(app: Flask, receiver: Receiver) -> None:
    client = app.test_client()
    headers = connect(client, EMAIL)
    receiver.gate.clear()
    answers: list[Any] = []
    creating = threading.Thread(
        target=lambda: answers.append(_subscribe(app.test_client(), headers, receiver))
    )
    creating.start()
    wait_until(lambda: bool(receiver.at(HOOK, validations=True)), "the handshake")
    # While the handshake waits for its answer, the sandbox serves writes and reads.
    assert client.post(f"{GRAPH}/me/events", headers=headers, json=event(12)).status_code == 201
    assert client.get("/sandbox/push").json["graphSubscriptions"] == []
    assert answers == []
    receiver.gate.set()
    creating.join(timeout=10)
    assert [answer.status_code for answer in answers] == [201]


def test_changes_close_together_share_a_post(client: FlaskClient, receiver: Receiver) -> None:
    headers = connect(client, EMAIL)
    _subscribed(client, headers, receiver)
    receiver.gate.clear()  # the first notification is held: the rest queue up behind it
    for day in range(1, 21):
        assert client.post(OWNER, json=event(day)).status_code == 201
    wait_until(lambda: bool(receiver.at(HOOK)), "the first notification")
    receiver.gate.set()
    items = _items(receiver, HOOK, 20)
    assert len(items) == 20
    assert [item["changeType"] for item in items] == ["created"] * 20
    assert len({item["resourceData"]["id"] for item in items}) == 20
    posts = receiver.at(HOOK)
    assert len(posts) <= 2  # the held one, then everything queued meanwhile at once
    changes = [d for d in settled(client)["deliveries"] if d["kind"] == "graph.change"]
    assert sum(d["items"] for d in changes) == 20
