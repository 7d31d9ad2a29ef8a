"""The provider sandbox's Google push: ``events.watch``, ``channels.stop`` and the messages a
background thread POSTs to a real HTTP receiver on loopback."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import responses
from flask.testing import FlaskClient
from provider_sandbox import create_sandbox_app
from provider_sandbox.cli import config_from_env

from .support.batches import Call, google_batch
from .support.google_sandbox import EVENTS, bearer, connect, timed
from .support.push_receiver import Receiver, receiver, settled, wait_until
from .support.sandbox_direct import app, client

__all__ = ["app", "client", "receiver"]  # fixtures used as arguments

EMAIL = "alice@gmail.test"
WATCH = "/google/calendar/v3/calendars/primary/events/watch"
STOP = "/google/calendar/v3/channels/stop"
OWNER = f"/sandbox/google/{EMAIL}/events"
HOOK = "/hooks/google"
QUICK_RETRIES = {"SANDBOX_PUSH_RETRIES": 2, "SANDBOX_PUSH_RETRY_SECONDS": 0.05}


def _watch(
    client: FlaskClient,
    headers: dict[str, str],
    receiver: Receiver,
    channel_id: str | None = None,
    **extra: Any,
) -> Any:
    body = {
        "id": channel_id or str(uuid.uuid4()),
        "type": "web_hook",
        "address": receiver.url + HOOK,
        "token": "secret-token-1",
        **extra,
    }
    return client.post(WATCH, headers=headers, json=body)


def _opened(client: FlaskClient, headers: dict[str, str], receiver: Receiver) -> dict[str, Any]:
    answer = _watch(client, headers, receiver)
    assert answer.status_code == 200, answer.json
    channel: dict[str, Any] = answer.json
    return channel


def _from(channel_id: str, messages: list[Any]) -> list[Any]:
    return [m for m in messages if m.headers["X-Goog-Channel-Id"] == channel_id]


def test_watch_answers_the_channel_with_ttl_capped(client: FlaskClient, receiver: Receiver) -> None:
    headers = bearer(connect(client, EMAIL))
    before = datetime.now(UTC)
    answer = _watch(client, headers, receiver, "chan-1", params={"ttl": "99999999"})
    assert answer.status_code == 200
    body = answer.json
    assert list(body) == ["kind", "id", "resourceId", "resourceUri", "token", "expiration"]
    assert body["kind"] == "api#channel"
    assert body["id"] == "chan-1"
    assert body["token"] == "secret-token-1"
    assert body["resourceUri"].endswith("/google/calendar/v3/calendars/primary/events?alt=json")
    assert isinstance(body["expiration"], str)
    expiration = datetime.fromtimestamp(int(body["expiration"]) / 1000, UTC)
    # Capped at the default lifetime, 7 days: not the 1,157 days asked for.
    assert before + timedelta(days=7) - timedelta(minutes=1) < expiration
    assert expiration <= datetime.now(UTC) + timedelta(days=7)

    lifetimes = client.post("/sandbox/push/lifetimes", json={"googleChannelSeconds": 30})
    assert lifetimes.json == {"googleChannelSeconds": 30, "graphSubscriptionSeconds": 253800}
    short = _watch(client, headers, receiver, params={"ttl": "3600"}).json
    assert int(short["expiration"]) <= (datetime.now(UTC).timestamp() + 30) * 1000
    shorter = _watch(client, headers, receiver, params={"ttl": "10"}).json
    assert int(shorter["expiration"]) <= (datetime.now(UTC).timestamp() + 10) * 1000
    # The same resource for every channel on the calendar.
    assert {body["resourceId"], short["resourceId"], shorter["resourceId"]} == {body["resourceId"]}


def test_watch_refuses_bad_requests(client: FlaskClient, receiver: Receiver) -> None:
    headers = bearer(connect(client, EMAIL))
    assert _watch(client, {}, receiver).status_code == 401
    assert _watch(client, headers, receiver, type="email").status_code == 400
    assert _watch(client, headers, receiver, address="not a url").status_code == 400
    assert _watch(client, headers, receiver, token="t" * 257).status_code == 400
    assert _watch(client, headers, receiver, params={"ttl": "soon"}).status_code == 400
    missing = client.post(WATCH, headers=headers, json={"type": "web_hook"})
    assert missing.status_code == 400
    assert missing.json["error"]["errors"][0]["reason"] == "required"
    other = client.post(
        "/google/calendar/v3/calendars/bob@gmail.test/events/watch",
        headers=headers,
        json={"id": "x", "type": "web_hook", "address": receiver.url},
    )
    assert other.status_code == 404
    assert _watch(client, headers, receiver, "dup").status_code == 200
    duplicate = _watch(client, headers, receiver, "dup")
    assert duplicate.status_code == 400
    assert duplicate.json["error"]["errors"][0]["reason"] == "channelIdNotUnique"
    assert [c["id"] for c in settled(client)["googleChannels"]] == ["dup"]


def test_sync_then_exists_on_owner_edit_new_event_and_delete(
    client: FlaskClient, receiver: Receiver
) -> None:
    headers = bearer(connect(client, EMAIL))
    existing = client.post(EVENTS, headers=headers, json=timed(1, 9)).json
    channel = _opened(client, headers, receiver)
    sync = receiver.wait_for(HOOK, 1)
    assert sync[0].method == "POST"
    assert sync[0].headers["X-Goog-Resource-State"] == "sync"
    assert sync[0].headers["X-Goog-Message-Number"] == "1"

    client.patch(f"{OWNER}/{existing['id']}", json={"summary": "Moved by the owner"})
    client.post(OWNER, json=timed(2, 9))  # a new event, by the owner
    assert client.delete(f"{EVENTS}/{existing['id']}", headers=headers).status_code == 204
    messages = receiver.wait_for(HOOK, 4)
    assert len(settled(client)["deliveries"]) == 4
    assert len(receiver.at(HOOK)) == 4
    states = [m.headers["X-Goog-Resource-State"] for m in messages]
    assert states == ["sync", "exists", "exists", "exists"]
    numbers = [int(m.headers["X-Goog-Message-Number"]) for m in messages]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4
    expiration = datetime.fromtimestamp(int(channel["expiration"]) / 1000, UTC)
    for message in messages:
        assert message.body == b""
        assert message.headers["X-Goog-Channel-Id"] == channel["id"]
        assert message.headers["X-Goog-Channel-Token"] == "secret-token-1"
        assert message.headers["X-Goog-Resource-Id"] == channel["resourceId"]
        assert message.headers["X-Goog-Resource-Uri"] == channel["resourceUri"]
        stamp = parsedate_to_datetime(message.headers["X-Goog-Channel-Expiration"])
        assert stamp == expiration.replace(microsecond=0)


def test_api_and_batch_writes_notify_and_a_channel_without_token_sends_none(
    client: FlaskClient, receiver: Receiver
) -> None:
    headers = bearer(connect(client, EMAIL))
    channel = _watch(client, headers, receiver, token=None).json
    assert "token" not in channel
    receiver.wait_for(HOOK, 1)
    made = client.post(EVENTS, headers=headers, json=timed(3, 9)).json
    body, content_type = google_batch(
        [
            Call("POST", "/calendar/v3/calendars/primary/events", timed(4, 9)),
            Call("PATCH", f"/calendar/v3/calendars/primary/events/{made['id']}", {"summary": "B"}),
        ]
    )
    batch = client.post(
        "/google/batch/calendar/v3", data=body, headers={**headers, "Content-Type": content_type}
    )
    assert batch.status_code == 200
    messages = receiver.wait_for(HOOK, 4)
    assert [m.headers["X-Goog-Resource-State"] for m in messages] == [
        "sync",
        "exists",
        "exists",
        "exists",
    ]
    assert all("X-Goog-Channel-Token" not in m.headers for m in messages)


def test_overlapping_channels_are_both_notified_until_one_stops(
    client: FlaskClient, receiver: Receiver
) -> None:
    headers = bearer(connect(client, EMAIL))
    old = _opened(client, headers, receiver)
    new = _opened(client, headers, receiver)
    receiver.wait_for(HOOK, 2)
    client.post(OWNER, json=timed(5, 9))
    messages = receiver.wait_for(HOOK, 4)
    for channel in (old, new):
        mine = _from(channel["id"], messages)
        assert [m.headers["X-Goog-Resource-State"] for m in mine] == ["sync", "exists"]
        assert [m.headers["X-Goog-Message-Number"] for m in mine] == ["1", "2"]

    stop = {"id": old["id"], "resourceId": old["resourceId"]}
    answer = client.post(STOP, headers=headers, json=stop)
    assert answer.status_code == 204
    assert answer.get_data() == b""
    client.post(OWNER, json=timed(6, 9))
    messages = receiver.wait_for(HOOK, 5)
    view = settled(client)
    assert len(receiver.at(HOOK)) == 5
    assert len(_from(old["id"], receiver.at(HOOK))) == 2
    assert len(_from(new["id"], receiver.at(HOOK))) == 3
    listed = {c["id"]: c for c in view["googleChannels"]}
    assert listed[old["id"]]["stopped"] is True
    assert listed[old["id"]]["stoppedAt"] is not None
    assert listed[new["id"]]["stopped"] is False

    assert client.post(STOP, headers=headers, json=stop).status_code == 404  # already stopped
    unknown = client.post(STOP, headers=headers, json={"id": "nope", "resourceId": "r"})
    assert unknown.status_code == 404
    assert unknown.json["error"]["errors"][0]["reason"] == "notFound"
    wrong = client.post(STOP, headers=headers, json={"id": new["id"], "resourceId": "other"})
    assert wrong.status_code == 404
    assert client.post(STOP, headers=headers, json={"id": new["id"]}).status_code == 400
    assert client.post(STOP, json=stop).status_code == 401
    stops = [e["status"] for e in client.get("/sandbox/requests").json if e["path"] == STOP]
    assert stops == [204, 404, 404, 404, 400, 401]
    assert client.get("/sandbox/state").json["requests"][f"POST {WATCH}"] == 2


def test_an_expired_channel_sends_nothing(client: FlaskClient, receiver: Receiver) -> None:
    headers = bearer(connect(client, EMAIL))
    client.post("/sandbox/push/lifetimes", json={"googleChannelSeconds": 1})
    channel = _opened(client, headers, receiver)
    receiver.wait_for(HOOK, 1)
    wait_until(lambda: client.get("/sandbox/push").json["googleChannels"][0]["expired"], "expiry")
    client.post(OWNER, json=timed(7, 9))
    client.post(EVENTS, headers=headers, json=timed(8, 9))
    view = settled(client)
    assert len(receiver.at(HOOK)) == 1
    assert [d["kind"] for d in view["deliveries"]] == ["google.sync"]
    assert view["googleChannels"][0]["id"] == channel["id"]


def test_push_view_records_deliveries_and_reset_clears_it(
    client: FlaskClient, receiver: Receiver
) -> None:
    headers = bearer(connect(client, EMAIL))
    client.post("/sandbox/push/lifetimes", json={"googleChannelSeconds": 60})
    channel = _opened(client, headers, receiver)
    receiver.status = 403  # the receiver refuses: the outcome is recorded all the same
    client.post(OWNER, json=timed(9, 9))
    receiver.wait_for(HOOK, 2)
    view = settled(client)
    assert view["lifetimes"]["googleChannelSeconds"] == 60
    [listed] = view["googleChannels"]
    assert set(listed) >= {
        "id",
        "resourceId",
        "account",
        "calendarId",
        "address",
        "expiration",
        "expired",
        "stopped",
        "openedAt",
        "stoppedAt",
    }
    assert listed["id"] == channel["id"]
    assert listed["account"] == EMAIL
    assert listed["calendarId"] == EMAIL
    assert listed["address"] == receiver.url + HOOK
    assert listed["expired"] is False
    assert [(d["kind"], d["url"], d["status"], d["error"]) for d in view["deliveries"]] == [
        ("google.sync", receiver.url + HOOK, 403, None),
        ("google.exists", receiver.url + HOOK, 403, None),
    ]

    assert client.post("/sandbox/reset").status_code == 204
    view = client.get("/sandbox/push").json
    assert view["googleChannels"] == [] and view["deliveries"] == []
    assert view["lifetimes"]["googleChannelSeconds"] == 604800  # back to the configured cap


def test_an_unreachable_address_is_recorded_as_an_error_not_retried(
    http: responses.RequestsMock,
) -> None:
    client = create_sandbox_app(QUICK_RETRIES).test_client()
    headers = bearer(connect(client, EMAIL))
    address = "http://127.0.0.1:9/nothing-listens"  # the discard port: nothing answers
    http.add_passthru(address)
    body = {"id": "c", "type": "web_hook", "address": address}
    assert client.post(WATCH, headers=headers, json=body).status_code == 200
    wait_until(lambda: bool(client.get("/sandbox/push").json["deliveries"]), "a delivery")
    [delivery] = settled(client)["deliveries"]
    assert (delivery["attempt"], delivery["status"]) == (1, None)
    assert "ConnectionError" in delivery["error"]


def test_a_5xx_answer_is_retried_with_the_same_message(receiver: Receiver) -> None:
    client = create_sandbox_app(QUICK_RETRIES).test_client()
    headers = bearer(connect(client, EMAIL))
    receiver.failures = 2
    _opened(client, headers, receiver)
    messages = receiver.wait_for(HOOK, 3)
    view = settled(client)
    assert len(receiver.at(HOOK)) == 3
    assert [(d["attempt"], d["status"]) for d in view["deliveries"]] == [
        (1, 503),
        (2, 503),
        (3, 202),
    ]
    sent = {
        (m.headers["X-Goog-Resource-State"], m.headers["X-Goog-Message-Number"]) for m in messages
    }
    assert sent == {("sync", "1")}  # the same message each time
    receiver.status = 500  # always failing now: given up after the configured retries
    client.post(OWNER, json=timed(10, 9))
    wait_until(lambda: len(receiver.at(HOOK)) == 6, "three attempts")
    assert [d["attempt"] for d in settled(client)["deliveries"][3:]] == [1, 2, 3]
    assert len(receiver.at(HOOK)) == 6


@pytest.mark.parametrize("path", [WATCH, STOP])
def test_faults_apply_to_watch_and_stop(client: FlaskClient, receiver: Receiver, path: str) -> None:
    headers = bearer(connect(client, EMAIL))
    channel = _opened(client, headers, receiver) if path == STOP else None
    client.delete("/sandbox/requests")
    client.post("/sandbox/faults", json={"path": path, "status": 503})
    if channel is None:
        answer = _watch(client, headers, receiver)
    else:
        stop = {"id": channel["id"], "resourceId": channel["resourceId"]}
        answer = client.post(STOP, headers=headers, json=stop)
    assert answer.status_code == 503
    assert answer.json["error"]["errors"][0]["reason"] == "backendError"
    log = client.get("/sandbox/requests").json
    assert [(e["method"], e["path"], e["status"], e["fault"]) for e in log] == [
        ("POST", path, 503, True)
    ]
    view = settled(client)
    if channel is None:
        assert view["googleChannels"] == []
    else:
        assert view["googleChannels"][0]["stopped"] is False


def test_sandbox_run_reads_the_lifetimes_from_the_environment() -> None:
    environ = {
        "SANDBOX_GOOGLE_CHANNEL_SECONDS": "30",
        "SANDBOX_GRAPH_SUBSCRIPTION_SECONDS": "45",
        "SANDBOX_TIME_ZONE": "Europe/Berlin",
        "UNRELATED": "1",
    }
    config = config_from_env(environ)
    assert config == {
        "SANDBOX_GOOGLE_CHANNEL_SECONDS": 30,
        "SANDBOX_GRAPH_SUBSCRIPTION_SECONDS": 45,
        "SANDBOX_TIME_ZONE": "Europe/Berlin",
    }
    client = create_sandbox_app(config).test_client()
    expected = {"googleChannelSeconds": 30, "graphSubscriptionSeconds": 45}
    assert client.get("/sandbox/push").json["lifetimes"] == expected
    client.post("/sandbox/push/lifetimes", json={"graphSubscriptionSeconds": 5})
    assert client.get("/sandbox/push").json["lifetimes"]["graphSubscriptionSeconds"] == 5
    client.post("/sandbox/reset")
    assert client.get("/sandbox/push").json["lifetimes"] == expected
    for bad in ({"googleChannelSeconds": 0}, {"graphSubscriptionSeconds": "30"}, [1]):
        assert client.post("/sandbox/push/lifetimes", json=bad).status_code == 400
    assert client.get("/sandbox/push").json["lifetimes"] == expected


def test_a_held_delivery_blocks_neither_writes_nor_the_store(
    client: FlaskClient, receiver: Receiver
) -> None:
    headers = bearer(connect(client, EMAIL))
    receiver.gate.clear()  # the receiver takes the sync message and does not answer yet
    _opened(client, headers, receiver)
    receiver.wait_for(HOOK, 1)
    for day in range(1, 21):  # a burst of 20 changes while a POST is in flight
        assert client.post(OWNER, json=timed(day, 9)).status_code == 200
    assert client.get("/sandbox/state").json["accounts"]["google"][0]["events"] == 20
    assert len(receiver.at(HOOK)) == 1  # still held: the writes above did not wait for it
    assert client.get("/sandbox/push").json["pendingDeliveries"] == 21
    receiver.gate.set()
    messages = receiver.wait_for(HOOK, 21)
    numbers = [int(m.headers["X-Goog-Message-Number"]) for m in messages]
    assert numbers == list(range(1, 22))
    assert len(settled(client)["deliveries"]) == 21
