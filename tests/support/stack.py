"""End-to-end fixtures: the provider sandbox and the service as real processes on loopback,
and the calls the end-to-end tests make through them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from .app import ENCRYPTION_KEY, JWT_SECRET, empty_database

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


@dataclass
class Stack:
    """Processes started for one test, and how to reach them."""

    env: dict[str, str]
    tmp: Path
    processes: list[Process] = field(default_factory=list)
    sandbox_url: str = ""
    service_url: str = ""

    def start(self, name: str, args: list[str], **env: str) -> Process:
        log = self.tmp / f"{name}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**self.env, **env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def flask(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "flask"), *args],
            cwd=ROOT,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start_sandbox(self) -> None:
        port = free_port()
        process = self.start("sandbox", [str(BIN / "flask"), "sandbox", "run", "--port", str(port)])
        self.sandbox_url = f"http://127.0.0.1:{port}"
        self.env["PROVIDER_SANDBOX_URL"] = self.sandbox_url
        wait_until(
            lambda: (
                requests.get(f"{self.sandbox_url}/sandbox/state", timeout=2).ok
                or process.popen.poll() is not None
            ),
            30,
            "the sandbox",
        )
        assert process.popen.poll() is None, process.output()

    def start_service(self, *, push: bool = False, **env: str) -> Process:
        port = free_port()
        if push:  # the sandbox POSTs its notifications to this service
            env["WEBHOOK_BASE_URL"] = f"http://127.0.0.1:{port}"
        process = self.start(
            "gunicorn",
            [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"],
            PORT=str(port),
            HOST="127.0.0.1",
            **{"WEB_CONCURRENCY": "2", **env},
        )
        self.service_url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: (
                requests.get(f"{self.service_url}/readyz", timeout=2).ok
                or process.popen.poll() is not None
            ),
            60,
            "gunicorn",
        )
        assert process.popen.poll() is None, process.output()
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def stack(database_url: str, tmp_path: Path, http: responses.RequestsMock) -> Iterator[Stack]:
    """A clean database, and processes that are stopped (and their logs shown) afterwards."""
    http.add_passthru("http://127.0.0.1")
    empty_database(database_url)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GOOGLE_", "OUTLOOK_", "SYNC_", "SCHEDULER_"))
    }
    env.update(
        APP_ENV="development",
        DATABASE_URL=database_url,
        JWT_SECRET_KEY=JWT_SECRET,
        TOKEN_ENCRYPTION_KEYS=ENCRYPTION_KEY,
        GOOGLE_REDIRECT_URI="http://localhost:3000/oauth/google/callback",
        OUTLOOK_REDIRECT_URI="http://localhost:3000/oauth/outlook/callback",
        SCHEDULER_ENABLED="false",
        SYNC_RETRY_BACKOFF="0.1",
        HOME=str(tmp_path),
        LOG_LEVEL="INFO",
    )
    env.pop("PROVIDER_SANDBOX_URL", None)
    stack = Stack(env=env, tmp=tmp_path)
    try:
        yield stack
    finally:
        stack.stop()
        for process in stack.processes:
            print(f"----- {process.name} log -----\n{process.output()[-5000:]}")
        empty_database(database_url)


def api(stack: Stack, token: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    """Call the service's API as the token's user."""
    return requests.request(
        method,
        f"{stack.service_url}/api/v1{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
        **kwargs,
    )


def issue_token(stack: Stack, user_id: str) -> str:
    result = stack.flask("auth", "issue-token", user_id, "--expires", "1h")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def connect(stack: Stack, token: str, slug: str) -> dict[str, Any]:
    """Authorize, let the sandbox approve, hand the redirect's code to the callback."""
    authorize = api(stack, token, "GET", f"/crm/calendar/connections/{slug}/authorize")
    assert authorize.status_code == 200, authorize.text
    consent = requests.get(authorize.json()["authorizationUrl"], allow_redirects=False, timeout=10)
    assert consent.status_code == 302, consent.text
    query = {k: v[0] for k, v in parse_qs(urlsplit(consent.headers["Location"]).query).items()}
    assert query["state"] == authorize.json()["state"]
    callback = api(stack, token, "GET", f"/crm/calendar/connections/{slug}/callback", params=query)
    assert callback.status_code == 200, callback.text
    body: dict[str, Any] = callback.json()
    return body


def sync(stack: Stack, token: str, provider: str) -> dict[str, Any]:
    """A manual sync; waits while the scheduler holds the connection (409)."""
    for _ in range(100):
        response = api(stack, token, "POST", f"/crm/calendar/connections/{provider}/sync")
        if response.status_code != 409:
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            assert body["success"], body
            return body
        time.sleep(0.2)
    raise AssertionError("the connection stayed busy")


def sandbox_events(stack: Stack, provider: str, email: str) -> list[dict[str, Any]]:
    response = requests.get(f"{stack.sandbox_url}/sandbox/{provider}/{email}/events", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    items: list[dict[str, Any]] = body["items"] if provider == "google" else body["value"]
    return items


def crm_titles(stack: Stack, token: str) -> list[str]:
    response = api(stack, token, "GET", "/crm/calendar/events")
    assert response.status_code == 200, response.text
    return sorted(event["title"] for event in response.json())
