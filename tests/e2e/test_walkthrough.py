"""The README walkthrough over real HTTP: gunicorn (2 workers) + the provider sandbox."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from ..payloads import day, local
from .conftest import Stack, api, wait_until

pytestmark = pytest.mark.e2e


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


def test_readme_walkthrough(stack: Stack) -> None:
    """Connect both, create a CRM event, sync, see it in the sandbox; edit there, see it here."""
    stack.start_sandbox()
    stack.start_service()
    token = issue_token(stack, "42")

    google = connect(stack, token, "google")
    outlook = connect(stack, token, "outlook")
    assert google["lastSyncStatus"] == outlook["lastSyncStatus"] == "PENDING"

    created = api(
        stack,
        token,
        "POST",
        "/crm/calendar/events",
        json={
            "title": "Quarterly review",
            "start": local(0, 10).isoformat(),
            "end": local(0, 11).isoformat(),
            "timeZone": "Europe/Berlin",
        },
    )
    assert created.status_code == 201, created.text

    assert sync(stack, token, "GOOGLE")["eventsPushed"] == 1
    assert sync(stack, token, "OUTLOOK")["eventsPushed"] == 1
    (in_google,) = sandbox_events(stack, "google", google["accountEmail"])
    (in_outlook,) = sandbox_events(stack, "microsoft", outlook["accountEmail"])
    assert in_google["summary"] == "Quarterly review"
    assert in_outlook["subject"] == "Quarterly review"

    patched = requests.patch(
        f"{stack.sandbox_url}/sandbox/google/{google['accountEmail']}/events/{in_google['id']}",
        json={"summary": "Quarterly review (moved)"},
        timeout=10,
    )
    assert patched.status_code == 200, patched.text
    result = sync(stack, token, "GOOGLE")
    assert result["eventsUpdated"] == 1
    assert crm_titles(stack, token) == ["Quarterly review (moved)"]
    # The CRM event is linked to Outlook too: the change reaches it on Outlook's next sync.
    assert sync(stack, token, "OUTLOOK")["eventsPushed"] == 1
    (in_outlook,) = sandbox_events(stack, "microsoft", outlook["accountEmail"])
    assert in_outlook["subject"] == "Quarterly review (moved)"

    statuses = api(stack, token, "GET", "/crm/calendar/connections/status").json()
    assert [s["lastSyncStatus"] for s in statuses] == ["SUCCESS", "SUCCESS"]


def test_scheduler_syncs_a_stale_connection_on_its_own(stack: Stack) -> None:
    """With the scheduler on, a new connection syncs by itself and stays fresh."""
    stack.start_sandbox()
    stack.start_service(SCHEDULER_ENABLED="true", SYNC_INTERVAL="1", SYNC_STALE_AFTER="2")
    token = issue_token(stack, "crm-7")
    google = connect(stack, token, "google")

    def synced() -> bool:
        statuses = api(stack, token, "GET", "/crm/calendar/connections/status").json()
        return bool(statuses[0]["lastSyncStatus"] == "SUCCESS")

    wait_until(synced, 30, "the first sync by the scheduler")

    created = requests.post(
        f"{stack.sandbox_url}/sandbox/google/{google['accountEmail']}/events",
        json={
            "summary": "Made in Google",
            "start": {"dateTime": f"{day(1)}T09:00:00Z"},
            "end": {"dateTime": f"{day(1)}T09:30:00Z"},
        },
        timeout=10,
    )
    assert created.status_code in (200, 201), created.text
    wait_until(lambda: crm_titles(stack, token) == ["Made in Google"], 30, "the scheduler's pull")
