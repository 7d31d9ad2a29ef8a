"""The README walkthrough over real HTTP: gunicorn (2 workers) + the provider sandbox."""

from __future__ import annotations

import pytest
import requests

from ..support.payloads import day, local
from ..support.stack import (
    Stack,
    api,
    connect,
    crm_titles,
    issue_token,
    sandbox_events,
    sync,
    wait_until,
)

pytestmark = pytest.mark.e2e


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
