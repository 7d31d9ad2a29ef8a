"""Pushes go in batches: 50 writes per Google batch request, 20 per Graph ``$batch``; each
write's answer inside a batch is handled on its own while the rest of the batch lands."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses
from flask import request
from flask.testing import FlaskClient
from provider_sandbox import create_sandbox_app

from calendar_connections.providers.google.batch import Call, decode_answers, encode_batch

from .support.batches import google_calls
from .support.mount import mount_sandbox
from .support.sandbox import (
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

BATCH_PATHS = ("/google/batch/calendar/v3", "/graph/v1.0/$batch")
# Batch requests for 120 writes: 50 per Google batch, 20 per Graph batch.
BATCHES_OF_120 = {"GOOGLE": 3, "OUTLOOK": 6}


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits before a throttled call is sent again, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr("tenacity.nap.time.sleep", waits.append)
    return waits


@pytest.fixture
def hooked(http: responses.RequestsMock) -> Iterator[tuple[Sandbox, list[Any]]]:
    """A sandbox that runs the test's hooks (callables of method and path) on each provider
    request before answering it."""
    app = create_sandbox_app()
    hooks: list[Callable[[str, str], None]] = []

    @app.before_request
    def run_hooks() -> None:
        for hook in list(hooks):
            hook(request.method, request.path)

    mount_sandbox(http, app, SANDBOX)
    yield Sandbox(app), hooks
    hooks.clear()


def create(client: FlaskClient, auth: dict[str, str], count: int, start: int = 0) -> list[int]:
    ids = []
    for n in range(start, start + count):
        body = {"title": f"CRM {n}", "location": f"k{n}", **timing(2 + n / 24).crm()}
        answer = client.post(EVENTS, json=body, headers=auth)
        assert answer.status_code == 201, answer.json
        ids.append(answer.json["id"])
    return ids


def batch_requests(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [e for e in sandbox.requests() if e["path"].endswith(BATCH_PATHS)]


def writes(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The event writes the provider answered (inside a batch or alone)."""
    return [
        e
        for e in sandbox.requests()
        if e["method"] in ("POST", "PATCH", "DELETE")
        and "/events" in e["path"]
        and not e["path"].startswith("/sandbox")
    ]


def titles(sandbox: Sandbox, side: Side) -> dict[str, str]:
    """The provider's event titles by their key (the location)."""
    return {view.key or "": view.title for view in sandbox.views(side)}


def test_120_new_events_take_one_request_per_50_google_or_20_graph_writes(
    client: FlaskClient, auth: dict[str, str], sandbox: Sandbox, side: Side
) -> None:
    """120 inserts: 3 Google batch requests or 6 Graph ones, no write sent alone;
    eventsPushed counts the events, not the batches."""
    connect(client, auth, side)
    sync(client, auth, side)
    create(client, auth, 120)
    before = len(sandbox.requests())

    result = sync(client, auth, side)

    assert result["eventsPushed"] == 120
    batches = batch_requests(sandbox)
    assert len(batches) == BATCHES_OF_120[side.name]
    inserted = [e for e in writes(sandbox)[-120:] if e["method"] == "POST"]
    assert len(inserted) == 120 and all(e["batched"] for e in inserted)
    assert len(sandbox.items(side)) == 120
    assert all(len(item["sources"]) == 1 for item in crm_items(client, auth))
    # Nothing else went to the provider but the listing and the batches.
    unbatched = [e for e in sandbox.requests()[before:] if not e["batched"]]
    assert len(unbatched) == len(batches) + 1
    if side.name == "OUTLOOK":
        state = sandbox.call("GET", "/state")
        assert max(state["graphPeakInFlight"].values()) <= 4
    again = sync(client, auth, side)
    assert (again["eventsPushed"], again["eventsCreated"]) == (0, 0)


def test_each_answer_in_a_batch_is_handled_on_its_own(
    client: FlaskClient,
    auth: dict[str, str],
    hooked: tuple[Sandbox, list[Any]],
    side: Side,
    slept: list[float],
) -> None:
    """One batch of six: a 412 and a 409 are conflicts resolved for their event (the CRM's
    later edit wins), a 404 (the event was deleted as the batch went out) re-creates it, a
    429 is sent again in a later request after its Retry-After, a 400 skips its event (left
    pending), and a new event lands."""
    sandbox, hooks = hooked
    connect(client, auth, side)
    sync(client, auth, side)
    ids = create(client, auth, 5)
    sync(client, auth, side)
    provider_ids = {
        item["location"]: item["sources"][side.name] for item in crm_items(client, auth)
    }
    for n, event_id in enumerate(ids):
        answer = client.patch(f"{EVENTS}/{event_id}", json={"title": f"Edited {n}"}, headers=auth)
        assert answer.status_code == 200, answer.json
    create(client, auth, 1, start=5)
    faults = {
        "k0": {"status": 412},
        "k1": {"status": 409},
        "k3": {"status": 429, "headers": {"Retry-After": "2"}},
        "k4": {"status": 400},
    }
    for key, fault in faults.items():
        # A prefix of the id: it names the event whatever the URL encoding of the rest.
        sandbox.fault(method="PATCH", path=provider_ids[key][:30], times=1, **fault)
    batches_before = len(batch_requests(sandbox))

    def delete_k2(method: str, path: str) -> None:
        if path.endswith(BATCH_PATHS):
            hooks.clear()
            sandbox.delete(side, provider_ids["k2"])

    if side.name == "GOOGLE":
        # Google keeps a deleted event (cancelled; a guarded write meets a 412): its 404 is
        # for an event purged since.
        sandbox.fault(method="PATCH", path=provider_ids["k2"][:30], times=1, status=404)
    else:
        hooks.append(delete_k2)

    result = sync(client, auth, side)

    assert result["success"] is True
    assert result["eventsPushed"] == 5  # every event but the refused one
    assert f"CRM event {ids[4]}" in result["error"]
    expected = {"k0": "Edited 0", "k1": "Edited 1", "k2": "Edited 2", "k3": "Edited 3"}
    assert titles(sandbox, side) == expected | {"k4": "CRM 4", "k5": "CRM 5"}
    assert len(sandbox.items(side)) == 6
    gone = [e for e in writes(sandbox) if provider_ids["k2"][:30] in e["path"]]
    assert [e["status"] for e in gone if e["batched"]][-1] == 404
    # The batch of six, then the 429'd write alone in a later batch request.
    assert len(batch_requests(sandbox)) - batches_before == 2
    assert 2.0 in slept

    again = sync(client, auth, side)
    assert (again["eventsPushed"], again["error"]) == (1, None)
    assert titles(sandbox, side)["k4"] == "Edited 4"
    assert sync(client, auth, side)["eventsPushed"] == 0


def test_a_throttled_batch_request_is_retried_whole(
    client: FlaskClient, auth: dict[str, str], sandbox: Sandbox, side: Side
) -> None:
    """A 503 answer to the batch request itself: the HTTP retry sends it again."""
    connect(client, auth, side)
    sync(client, auth, side)
    create(client, auth, 3)
    path = BATCH_PATHS[0] if side.name == "GOOGLE" else BATCH_PATHS[1]
    sandbox.fault(method="POST", path=path, status=503, times=1)

    result = sync(client, auth, side)

    assert result["eventsPushed"] == 3
    assert len(sandbox.items(side)) == 3
    assert len(batch_requests(sandbox)) == 2  # the refused one and its retry


def test_google_answers_are_matched_to_their_calls_by_content_id() -> None:
    """Parts carry ``Content-ID: <response-…>`` of the call they answer: matched by it, whatever
    their order; a part's own status, headers and body stay with it."""
    calls = [
        (0, Call("POST", "/calendar/v3/calendars/c/events", {"summary": "Grüße"})),
        (1, Call("DELETE", "/calendar/v3/calendars/c/events/e1")),
    ]
    body, content_type = encode_batch(calls)
    assert content_type.startswith("multipart/mixed; boundary=batch_")
    sent = [(call.method, call.url, call.body) for call in google_calls(content_type, body)]
    assert sent == [
        ("POST", "/calendar/v3/calendars/c/events", {"summary": "Grüße"}),
        ("DELETE", "/calendar/v3/calendars/c/events/e1", None),
    ]
    answer = (
        "--b\r\nContent-Type: application/http\r\nContent-ID: <response-item1>\r\n\r\n"
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n\r\n\r\n"
        "--b\r\nContent-Type: application/http\r\nContent-ID: <response-item0>\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
        '{"id": "e0", "summary": "Grüße"}\r\n--b--\r\n'
    ).encode()

    answers = decode_answers("multipart/mixed; boundary=b", answer)

    assert answers[0].status == 200 and answers[0].body == {"id": "e0", "summary": "Grüße"}
    assert answers[1].status == 429 and answers[1].header("retry-after") == "7"
