"""A real HTTP server on loopback that receives the sandbox's push notifications.

The ``receiver`` fixture serves on ``127.0.0.1`` (a free port) from a thread, keeps every
request it gets, answers Graph's validation handshake as told (``validation``) and everything
else with ``status`` (503 for the next ``failures`` of them). Tests wait for what they expect
with ``wait_for`` (polling, with a deadline), never with fixed sleeps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import responses
from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

DEADLINE = 10.0  # seconds a test waits for a delivery before failing


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    method: str
    path: str
    args: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def validation_token(self) -> str | None:
        """The handshake's token, when this is Graph's validation request."""
        return self.args.get("validationToken")


class Receiver:
    """The server's state: what arrived and how to answer."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.status = 202
        self.failures = 0  # this many notifications (handshakes aside) are answered 503 first
        self.gate = threading.Event()  # cleared: requests are held (kept, not answered) until set
        self.gate.set()
        self.validation = "echo"  # echo | wrong | status | json
        self.url = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        """The WSGI app."""
        request = Request(environ)
        got = Received(
            request.method,
            request.path,
            request.args.to_dict(),
            dict(request.headers.items()),
            request.get_data(),
        )
        with self.lock:
            self.received.append(got)
        self.gate.wait(DEADLINE)
        return self._answer(got)(environ, start_response)

    def _answer(self, got: Received) -> Response:
        token = got.validation_token
        if token is None:
            with self.lock:
                failing, self.failures = self.failures > 0, max(self.failures - 1, 0)
            return Response(status=503 if failing else self.status)
        if self.validation == "wrong":
            return Response(token + "x", status=200, content_type="text/plain")
        if self.validation == "status":
            return Response(token, status=500, content_type="text/plain")
        if self.validation == "json":
            return Response(f'"{token}"', status=200, content_type="application/json")
        return Response(token, status=200, content_type="text/plain; charset=utf-8")

    def at(self, path: str, *, validations: bool = False) -> list[Received]:
        """What arrived at ``path`` so far (handshakes left out unless asked)."""
        with self.lock:
            return [
                got
                for got in self.received
                if got.path == path and (got.validation_token is not None) == validations
            ]

    def wait_for(self, path: str, count: int) -> list[Received]:
        """The first ``count`` notifications at ``path``, waiting for them up to the deadline."""
        deadline = time.monotonic() + DEADLINE
        while True:
            got = self.at(path)
            if len(got) >= count:
                return got
            assert time.monotonic() < deadline, f"{len(got)} of {count} notifications at {path}"
            time.sleep(0.02)


def wait_until(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` until it holds, failing after the deadline."""
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def settled(client: FlaskClient) -> dict[str, Any]:
    """The sandbox's push view once it has nothing left to deliver."""
    wait_until(
        lambda: client.get("/sandbox/push").json["pendingDeliveries"] == 0, "pending deliveries"
    )
    view: dict[str, Any] = client.get("/sandbox/push").json
    return view


@pytest.fixture()
def receiver(http: responses.RequestsMock) -> Iterator[Receiver]:
    """A notification receiver serving on loopback for the test's duration (the autouse
    ``http`` mock lets requests to it through)."""
    state = Receiver()
    server = make_server("127.0.0.1", 0, state, threaded=True)
    state.url = f"http://127.0.0.1:{server.server_port}"
    http.add_passthru(state.url)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        thread.join(timeout=5)
