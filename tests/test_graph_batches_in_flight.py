"""Graph ``$batch`` requests go up to four at once per mailbox, never more: the push hands the
Graph client 80 writes, sent as four batches of 20 together; the token is refreshed on the
syncing thread only."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses
from flask import request
from flask.testing import FlaskClient
from provider_sandbox import create_sandbox_app

from .support.mount import mount_sandbox
from .support.sandbox import (
    EVENTS,
    OUTLOOK,
    SANDBOX,
    Sandbox,
    connect,
    sandbox_config,
    sync,
    timing,
)

pytestmark = pytest.mark.app_config(**sandbox_config())

GRAPH_BATCH = "/graph/v1.0/$batch"


@pytest.fixture
def hooked(http: responses.RequestsMock) -> Iterator[tuple[Sandbox, list[Any]]]:
    """A sandbox refusing a fifth Graph request in flight per mailbox (429), running the
    test's hooks (callables of method and path) before answering each request."""
    app = create_sandbox_app({"SANDBOX_GRAPH_MAILBOX_CONCURRENCY": 4})
    hooks: list[Callable[[str, str], None]] = []

    @app.before_request
    def run_hooks() -> None:
        for hook in list(hooks):
            hook(request.method, request.path)

    mount_sandbox(http, app, SANDBOX)
    yield Sandbox(app), hooks
    hooks.clear()


def create(client: FlaskClient, auth: dict[str, str], count: int) -> None:
    for n in range(count):
        body = {"title": f"CRM {n}", "location": f"k{n}", **timing(2 + n / 24).crm()}
        answer = client.post(EVENTS, json=body, headers=auth)
        assert answer.status_code == 201, answer.json


def batches(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [e for e in sandbox.requests() if e["path"] == GRAPH_BATCH and e["method"] == "POST"]


def test_160_writes_go_as_two_rounds_of_four_batches_in_flight(
    client: FlaskClient, auth: dict[str, str], hooked: tuple[Sandbox, list[Any]]
) -> None:
    """160 inserts: 8 batch requests of 20, four in flight at a time and never a fifth (the
    mailbox limit is never met: no 429)."""
    sandbox, hooks = hooked
    connect(client, auth, OUTLOOK)
    sync(client, auth, OUTLOOK)
    create(client, auth, 160)
    # Each batch waits until three others are in flight with it: batches sent one at a time
    # would break the barrier (its answer a 500, the push a failure).
    barrier = threading.Barrier(4, timeout=10)

    def meet_three_others(method: str, path: str) -> None:
        if method == "POST" and path == GRAPH_BATCH:
            barrier.wait()

    hooks.append(meet_three_others)

    result = sync(client, auth, OUTLOOK)

    assert result["eventsPushed"] == 160
    sent = batches(sandbox)
    assert [e["status"] for e in sent] == [200] * 8
    assert len(sandbox.items(OUTLOOK)) == 160
    assert sandbox.call("GET", "/state")["graphPeakInFlight"] == {OUTLOOK.email: 4}
    assert sync(client, auth, OUTLOOK)["eventsPushed"] == 0


def test_a_batch_refused_for_its_token_is_sent_again_after_one_refresh(
    client: FlaskClient, auth: dict[str, str], hooked: tuple[Sandbox, list[Any]]
) -> None:
    """One of four batches in flight answered 401: the token is refreshed once, on the
    syncing thread, and that batch alone is sent again; every event lands once."""
    sandbox, hooks = hooked
    connect(client, auth, OUTLOOK)
    sync(client, auth, OUTLOOK)
    create(client, auth, 80)
    sandbox.fault(method="POST", path=GRAPH_BATCH, status=401, times=1)
    refreshed_on: list[str] = []

    def token_refresh(method: str, path: str) -> None:
        if path.endswith("/token"):
            refreshed_on.append(threading.current_thread().name)

    hooks.append(token_refresh)

    result = sync(client, auth, OUTLOOK)

    assert result["eventsPushed"] == 80
    assert refreshed_on == [threading.main_thread().name]
    assert sorted(e["status"] for e in batches(sandbox)) == [200, 200, 200, 200, 401]
    assert len(sandbox.items(OUTLOOK)) == 80
    assert max(sandbox.call("GET", "/state")["graphPeakInFlight"].values()) <= 4
