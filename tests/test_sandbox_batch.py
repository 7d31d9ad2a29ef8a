"""The provider sandbox's batch endpoints: Google's multipart batch and Graph's JSON ``$batch``."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests
import responses
from flask import Flask
from flask.testing import FlaskClient
from provider_sandbox import create_sandbox_app

from .support import microsoft_sandbox as graph
from .support.batches import Call, google_answers, google_batch, graph_request
from .support.google_sandbox import EVENTS, bearer, connect, timed
from .support.mount import mount_sandbox
from .support.sandbox_direct import app, client

__all__ = ["app", "client"]  # the sandbox as the app: fixtures used as arguments

GOOGLE_BATCH = "/google/batch/calendar/v3"
GRAPH_BATCH = f"{graph.GRAPH}/$batch"
CALENDAR = "/calendar/v3/calendars/primary/events"  # a part's path, as Google's docs write it


def _send_google(client: FlaskClient, calls: list[Call], headers: dict[str, str]) -> Any:
    body, content_type = google_batch(calls)
    return client.post(GOOGLE_BATCH, data=body, headers={**headers, "Content-Type": content_type})


def _google_events(client: FlaskClient) -> dict[str, dict[str, Any]]:
    items = client.get("/sandbox/google/alice@gmail.test/events").json["items"]
    return {item["id"]: item for item in items}


def _log(client: FlaskClient) -> list[tuple[str, str, int, bool, bool]]:
    entries = client.get("/sandbox/requests").json
    return [(e["method"], e["path"], e["status"], e["batched"], e["fault"]) for e in entries]


# --- Google ------------------------------------------------------------------------------


def test_google_batch_inserts_patches_and_deletes_in_one_request(client: FlaskClient) -> None:
    headers = bearer(connect(client))
    kept = client.post(EVENTS, headers=headers, json=timed(1, 9)).json
    doomed = client.post(EVENTS, headers=headers, json=timed(2, 9)).json
    client.delete("/sandbox/requests")
    answer = _send_google(
        client,
        [
            Call("POST", CALENDAR, timed(3, 9, summary="New"), content_id="new"),
            Call("PATCH", f"{CALENDAR}/{kept['id']}", {"summary": "Renamed"}, content_id="edit"),
            Call("DELETE", f"{EVENTS}/{doomed['id']}", content_id="gone"),
        ],
        headers,
    )
    assert answer.status_code == 200
    assert answer.mimetype == "multipart/mixed"
    parts = google_answers(answer.content_type, answer.get_data())
    assert [(p.content_id, p.status, p.reason) for p in parts] == [
        ("<response-new>", 200, "OK"),
        ("<response-edit>", 200, "OK"),
        ("<response-gone>", 204, "No Content"),
    ]
    assert parts[0].headers["Content-Type"].startswith("application/json")
    assert parts[0].body["summary"] == "New" and parts[0].body["kind"] == "calendar#event"
    assert parts[1].body["id"] == kept["id"] and parts[1].body["summary"] == "Renamed"
    assert parts[2].body is None
    events = _google_events(client)
    assert events[parts[0].body["id"]]["summary"] == "New"
    assert events[kept["id"]]["summary"] == "Renamed"
    assert events[doomed["id"]]["status"] == "cancelled"
    assert _log(client)[:-1] == [
        ("POST", EVENTS, 200, True, False),
        ("PATCH", f"{EVENTS}/{kept['id']}", 200, True, False),
        ("DELETE", f"{EVENTS}/{doomed['id']}", 204, True, False),
    ]
    assert _log(client)[-1] == ("POST", GOOGLE_BATCH, 200, False, False)


def test_google_batch_errors_stay_in_their_part(client: FlaskClient) -> None:
    headers = bearer(connect(client))
    event = client.post(EVENTS, headers=headers, json=timed(1, 9, id="batchtaken1")).json
    answer = _send_google(
        client,
        [
            Call("PATCH", f"{CALENDAR}/nosuchevent1", {"summary": "x"}),
            Call("POST", CALENDAR, timed(2, 9, id="batchtaken1")),
            Call("PATCH", f"{CALENDAR}/{event['id']}", {"summary": "y"}, {"If-Match": '"1"'}),
            Call("POST", CALENDAR, timed(3, 9)),
        ],
        headers,
    )
    assert answer.status_code == 200
    parts = google_answers(answer.content_type, answer.get_data())
    assert [(p.content_id, p.status) for p in parts] == [
        ("<response-item1>", 404),
        ("<response-item2>", 409),
        ("<response-item3>", 412),
        ("<response-item4>", 200),
    ]
    assert [p.body["error"]["errors"][0]["reason"] for p in parts[:3]] == [
        "notFound",
        "duplicate",
        "conditionNotMet",
    ]
    assert _google_events(client)[event["id"]]["summary"] == "Meeting 1/9"


def test_google_batch_queued_fault_fails_one_call_alone(client: FlaskClient) -> None:
    headers = bearer(connect(client))
    first = client.post(EVENTS, headers=headers, json=timed(1, 9)).json
    second = client.post(EVENTS, headers=headers, json=timed(2, 9)).json
    fault = {"method": "PATCH", "path": second["id"], "status": 403, "headers": {"X-Why": "q"}}
    assert client.post("/sandbox/faults", json=fault).status_code == 201
    client.delete("/sandbox/requests")
    calls = [Call("PATCH", f"{CALENDAR}/{e['id']}", {"summary": "Both"}) for e in (first, second)]
    answer = _send_google(client, calls, headers)
    assert answer.status_code == 200
    ok, limited = google_answers(answer.content_type, answer.get_data())
    assert ok.status == 200 and ok.body["summary"] == "Both"
    assert limited.status == 403 and limited.headers["X-Why"] == "q"
    assert limited.body["error"]["errors"][0]["reason"] == "rateLimitExceeded"
    events = _google_events(client)
    assert events[first["id"]]["summary"] == "Both"
    assert events[second["id"]]["summary"] == "Meeting 2/9"
    assert _log(client)[:2] == [
        ("PATCH", f"{EVENTS}/{first['id']}", 200, True, False),
        ("PATCH", f"{EVENTS}/{second['id']}", 403, True, True),
    ]
    assert client.get("/sandbox/faults").json == []


def test_google_batch_headers_auth_and_content_ids(client: FlaskClient) -> None:
    alice = bearer(connect(client))
    calls = [
        Call("POST", CALENDAR, timed(1, 9), headers=alice, content_id="with-own-token"),
        Call("POST", CALENDAR, timed(2, 9), content_id=""),
    ]
    answer = _send_google(client, calls, {})
    parts = google_answers(answer.content_type, answer.get_data())
    assert answer.status_code == 200
    # An inner Authorization is that call's; a call without one has the batch's (none here).
    assert [(p.content_id, p.status) for p in parts] == [
        ("<response-with-own-token>", 200),
        (None, 401),
    ]
    assert parts[1].body["error"]["errors"][0]["reason"] == "authError"


def test_google_batch_limits_and_malformed_bodies(client: FlaskClient) -> None:
    headers = bearer(connect(client))
    too_many = _send_google(client, [Call("GET", f"{CALENDAR}/x{n}") for n in range(1001)], headers)
    assert too_many.status_code == 400
    assert too_many.json["error"]["errors"][0]["reason"] == "badRequest"
    plain = client.post(GOOGLE_BATCH, headers=headers, json={"not": "multipart"})
    assert plain.status_code == 400
    full_url = _send_google(client, [Call("GET", f"https://www.googleapis.com{CALENDAR}")], headers)
    assert full_url.status_code == 200
    (part,) = google_answers(full_url.content_type, full_url.get_data())
    assert part.status == 400
    assert not [e for e in _log(client) if e[3]]  # no call of a refused batch ran
    thousand = _send_google(client, [Call("GET", f"{CALENDAR}/x{n}") for n in range(1000)], headers)
    assert thousand.status_code == 200
    assert len(google_answers(thousand.content_type, thousand.get_data())) == 1000


# --- Graph -------------------------------------------------------------------------------


def _graph_events(client: FlaskClient) -> dict[str, dict[str, Any]]:
    items = client.get("/sandbox/microsoft/carol@outlook.test/events").json["value"]
    return {item["id"]: item for item in items}


def test_graph_batch_creates_patches_and_deletes(client: FlaskClient) -> None:
    headers = graph.connect(client)
    kept = client.post(f"{graph.GRAPH}/me/events", headers=headers, json=graph.event(1)).json
    doomed = client.post(f"{graph.GRAPH}/me/events", headers=headers, json=graph.event(2)).json
    client.delete("/sandbox/requests")
    batch = {
        "requests": [
            graph_request("1", "POST", "/me/events", graph.event(3, subject="New")),
            graph_request("2", "PATCH", f"/me/events/{kept['id']}", {"subject": "Renamed"}),
            graph_request("3", "DELETE", f"me/events/{doomed['id']}"),
        ]
    }
    answer = client.post(GRAPH_BATCH, headers=headers, json=batch)
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    by_id = {item["id"]: item for item in answer.json["responses"]}
    assert {key: item["status"] for key, item in by_id.items()} == {"1": 201, "2": 200, "3": 204}
    created = by_id["1"]["body"]
    assert created["subject"] == "New"
    assert by_id["1"]["headers"]["Location"].endswith(f"/me/events/{created['id']}")
    assert by_id["1"]["headers"]["Content-Type"].startswith("application/json")
    assert by_id["2"]["body"]["subject"] == "Renamed"
    assert "body" not in by_id["3"]
    events = _graph_events(client)
    assert events[created["id"]]["subject"] == "New"
    assert events[kept["id"]]["subject"] == "Renamed"
    assert doomed["id"] not in events
    assert _log(client) == [
        ("POST", f"{graph.GRAPH}/me/events", 201, True, False),
        ("PATCH", f"{graph.GRAPH}/me/events/{kept['id']}", 200, True, False),
        ("DELETE", f"{graph.GRAPH}/me/events/{doomed['id']}", 204, True, False),
        ("POST", GRAPH_BATCH, 200, False, False),
    ]


def test_graph_batch_throttled_and_missing_items_fail_alone(client: FlaskClient) -> None:
    headers = graph.connect(client)
    event = client.post(f"{graph.GRAPH}/me/events", headers=headers, json=graph.event(1)).json
    fault = {"method": "POST", "path": "/me/events", "status": 429, "headers": {"Retry-After": "7"}}
    assert client.post("/sandbox/faults", json=fault).status_code == 201
    batch = {
        "requests": [
            graph_request("a", "POST", "/me/events", graph.event(2)),
            graph_request("b", "PATCH", "/me/events/unknown", {"subject": "x"}),
            graph_request("c", "PATCH", f"/me/events/{event['id']}", {"subject": "Done"}),
        ]
    }
    answer = client.post(GRAPH_BATCH, headers=headers, json=batch)
    assert answer.status_code == 200
    by_id = {item["id"]: item for item in answer.json["responses"]}
    assert by_id["a"]["status"] == 429
    assert by_id["a"]["headers"]["Retry-After"] == "7"
    assert by_id["a"]["body"]["error"]["code"] == "TooManyRequests"
    assert by_id["b"]["status"] == 404
    assert by_id["b"]["body"]["error"]["code"] == "ErrorItemNotFound"
    assert by_id["c"]["status"] == 200
    assert [item["subject"] for item in _graph_events(client).values()] == ["Done"]
    assert ("POST", f"{graph.GRAPH}/me/events", 429, True, True) in _log(client)


def test_graph_batch_depends_on_runs_in_order_and_skips_after_failure(client: FlaskClient) -> None:
    headers = graph.connect(client)
    client.delete("/sandbox/requests")
    batch = {
        "requests": [
            graph_request("1", "PATCH", "/me/events/unknown", {"subject": "x"}),
            graph_request("2", "POST", "/me/events", graph.event(2), dependsOn=["1"]),
            graph_request("3", "POST", "/me/events", graph.event(3)),
            graph_request("4", "GET", "/me", dependsOn=["3"]),
        ]
    }
    answer = client.post(GRAPH_BATCH, headers=headers, json=batch)
    by_id = {item["id"]: item for item in answer.json["responses"]}
    assert {key: item["status"] for key, item in by_id.items()} == {
        "1": 404,
        "2": 424,
        "3": 201,
        "4": 200,
    }
    assert by_id["2"]["body"]["error"]["code"] == "FailedDependency"
    assert len(_graph_events(client)) == 1  # the skipped create never ran
    assert [entry[:2] for entry in _log(client) if entry[3]] == [
        ("PATCH", f"{graph.GRAPH}/me/events/unknown"),
        ("POST", f"{graph.GRAPH}/me/events"),
        ("GET", f"{graph.GRAPH}/me"),
    ]


def test_graph_batch_limits_and_malformed_batches(client: FlaskClient) -> None:
    headers = graph.connect(client)
    too_many = [graph_request(str(n), "GET", "/me") for n in range(21)]
    refused = client.post(GRAPH_BATCH, headers=headers, json={"requests": too_many})
    assert refused.status_code == 400
    assert refused.json["error"]["code"] == "BadRequest"
    assert refused.json["error"]["innerError"]["request-id"]
    bad = [
        {"nothing": []},
        {"requests": [graph_request("1", "GET", "/me"), graph_request("1", "GET", "/me")]},
        {"requests": [{"id": "1", "method": "POST", "url": "/me/events", "body": {}}]},
        {"requests": [graph_request("1", "GET", "/me", dependsOn=["2"])]},
        {"requests": [graph_request("1", "GET", "https://graph.microsoft.com/v1.0/me")]},
    ]
    for body in bad:
        assert client.post(GRAPH_BATCH, headers=headers, json=body).status_code == 400, body
    assert not [e for e in _log(client) if e[3]]  # no request of a refused batch ran
    twenty = client.post(GRAPH_BATCH, headers=headers, json={"requests": too_many[:20]})
    assert twenty.status_code == 200
    assert sorted(int(item["id"]) for item in twenty.json["responses"]) == list(range(20))


def test_graph_batch_auth_and_a_throttled_batch(client: FlaskClient) -> None:
    headers = graph.connect(client)
    unsigned = client.post(GRAPH_BATCH, json={"requests": [graph_request("1", "GET", "/me")]})
    assert unsigned.status_code == 200
    (only,) = unsigned.json["responses"]
    assert only["status"] == 401
    assert only["body"]["error"]["code"] == "InvalidAuthenticationToken"
    fault = {"path": "/$batch", "status": 429, "headers": {"Retry-After": "3"}}
    client.post("/sandbox/faults", json=fault)
    client.delete("/sandbox/requests")
    throttled = client.post(
        GRAPH_BATCH, headers=headers, json={"requests": [graph_request("1", "GET", "/me")]}
    )
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert _log(client) == [("POST", GRAPH_BATCH, 429, False, True)]


# --- Requests in flight per mailbox ------------------------------------------------------


def _at_once(app: Flask, count: int, send: Any) -> list[Any]:
    """``send(client)`` from ``count`` threads released together; their answers in order."""
    answers: list[Any] = [None] * count
    start = threading.Barrier(count)

    def run(index: int) -> None:
        client = app.test_client()
        start.wait()
        answers[index] = send(client)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return answers


def test_graph_peak_in_flight_counts_batches_per_mailbox(app: Flask) -> None:
    client = app.test_client()
    headers = graph.connect(client)
    other = graph.connect(client, "dave@outlook.test")
    # A delayed call inside a batch keeps its batch in flight without holding up the others.
    client.post("/sandbox/faults", json={"path": "/me/events", "delay": 0.4, "times": 6})
    batch = {"requests": [graph_request("1", "POST", "/me/events", graph.event(1))]}
    started = time.monotonic()
    answers = _at_once(app, 6, lambda c: c.post(GRAPH_BATCH, headers=headers, json=batch))
    assert time.monotonic() - started < 6 * 0.4
    assert [a.json["responses"][0]["status"] for a in answers] == [201] * 6
    client.get(f"{graph.GRAPH}/me", headers=other)
    state = client.get("/sandbox/state").json
    assert state["graphPeakInFlight"] == {"carol@outlook.test": 6, "dave@outlook.test": 1}
    client.delete("/sandbox/requests")
    assert client.get("/sandbox/state").json["graphPeakInFlight"] == {}


def test_graph_mailbox_concurrency_limit_answers_429() -> None:
    app = create_sandbox_app({"SANDBOX_GRAPH_MAILBOX_CONCURRENCY": 4})
    control = app.test_client()
    headers = graph.connect(control)
    control.post("/sandbox/faults", json={"path": "/me", "delay": 0.5, "times": 4})
    answers = _at_once(app, 6, lambda c: c.get(f"{graph.GRAPH}/me", headers=headers))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 200, 200, 200, 429, 429]
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json["error"]["code"] == "ApplicationThrottled"
    assert refused.headers["Retry-After"] == "1"
    assert control.get("/sandbox/state").json["graphPeakInFlight"] == {"carol@outlook.test": 4}
    assert control.get(f"{graph.GRAPH}/me", headers=headers).status_code == 200


# --- Over HTTP, as the service will send them --------------------------------------------


def test_both_batches_through_mount_sandbox(app: Flask) -> None:
    base = "https://sandbox.test/prefix"
    client = app.test_client()
    google = bearer(connect(client))
    outlook = graph.connect(client)
    with responses.RequestsMock() as rsps:
        mount_sandbox(rsps, app, base)
        body, content_type = google_batch(
            [Call("POST", f"/prefix{EVENTS}", timed(1, 9)), Call("POST", CALENDAR, timed(2, 9))]
        )
        sent = requests.post(
            f"{base}{GOOGLE_BATCH}",
            data=body,
            headers={**google, "Content-Type": content_type},
            timeout=5,
        )
        assert sent.status_code == 200
        parts = google_answers(sent.headers["Content-Type"], sent.content)
        assert [p.status for p in parts] == [200, 200]
        batch = {"requests": [graph_request("1", "POST", "/me/events", graph.event(3))]}
        posted = requests.post(f"{base}{GRAPH_BATCH}", json=batch, headers=outlook, timeout=5)
        (created,) = posted.json()["responses"]
        assert created["status"] == 201
        assert created["headers"]["Location"].startswith(f"{base}{graph.GRAPH}/me/events/")
    assert len(_google_events(client)) == 2
    assert len(_graph_events(client)) == 1
