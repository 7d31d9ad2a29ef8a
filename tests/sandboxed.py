"""An app whose providers are the in-memory sandbox (through `responses`), and helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient

from calendar_connections.sandbox import create_sandbox_app
from calendar_connections.sandbox.testing import mount_sandbox

from .payloads import day

SANDBOX = "http://sandbox.test"
BASE = "/api/v1/crm/calendar/connections"


@pytest.fixture
def sandbox(http: responses.RequestsMock) -> Flask:
    """The provider sandbox, answering every request to SANDBOX."""
    app = create_sandbox_app()
    mount_sandbox(http, app, SANDBOX)
    return app


@pytest.fixture
def sandboxed_app(make_app: Callable[..., Flask], sandbox: Flask) -> Flask:
    """The service, with every provider URL pointing at the sandbox."""
    return make_app(PROVIDER_SANDBOX_URL=SANDBOX, SYNC_RETRY_BACKOFF=0)


def sandbox_connect(client: FlaskClient, headers: dict[str, str], slug: str) -> dict[str, Any]:
    """Authorize, let the sandbox approve at once, and complete the callback."""
    authorize = client.get(f"{BASE}/{slug}/authorize", headers=headers)
    assert authorize.status_code == 200, authorize.json
    consent = requests.get(authorize.json["authorizationUrl"], allow_redirects=False, timeout=5)
    assert consent.status_code == 302
    query = {k: v[0] for k, v in parse_qs(urlsplit(consent.headers["Location"]).query).items()}
    callback = client.get(f"{BASE}/{slug}/callback", query_string=query, headers=headers)
    assert callback.status_code == 200, callback.json
    body: dict[str, Any] = callback.json
    return body


def sandbox_insert_google(email: str, summary: str) -> dict[str, Any]:
    """An event created by the Google account's owner (a Tuesday two to three weeks ahead)."""
    response = requests.post(
        f"{SANDBOX}/sandbox/google/{email}/events",
        json={
            "summary": summary,
            "start": {"dateTime": f"{day(1)}T09:00:00Z"},
            "end": {"dateTime": f"{day(1)}T09:30:00Z"},
        },
        timeout=5,
    )
    assert response.ok, response.text
    body: dict[str, Any] = response.json()
    return body
