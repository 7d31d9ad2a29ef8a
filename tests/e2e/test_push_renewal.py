"""Push renewal end to end: with 30-second lifetimes in the sandbox and the scheduler running
in gunicorn, push stays active across three lifetimes; Google channels are replaced (a new one,
then the old one stopped: never more than two open), Graph subscriptions renewed in place."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from ..support.stack import Stack, api, issue_token, wait_until
from .test_push import connect_with_push, push_active, titles

pytestmark = pytest.mark.e2e

LIFETIME = 30  # seconds, for channels and subscriptions alike
LIFETIMES = 3


def push_state(stack: Stack) -> dict[str, Any]:
    response = requests.get(f"{stack.sandbox_url}/sandbox/push", timeout=10)
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


def open_channels(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in state["googleChannels"] if not c["stopped"] and not c["expired"]]


def test_push_stays_active_across_three_lifetimes(stack: Stack) -> None:
    stack.start_sandbox()
    lifetimes = requests.post(
        f"{stack.sandbox_url}/sandbox/push/lifetimes",
        json={"googleChannelSeconds": LIFETIME, "graphSubscriptionSeconds": LIFETIME},
        timeout=10,
    )
    assert lifetimes.status_code == 200, lifetimes.text
    stack.start_service(push=True, SCHEDULER_ENABLED="true", SYNC_INTERVAL="2")
    users = {
        "GOOGLE": issue_token(stack, "renew-google"),
        "OUTLOOK": issue_token(stack, "renew-outlook"),
    }
    owners = {
        provider: connect_with_push(stack, token, provider) for provider, token in users.items()
    }

    most_open = 0
    inactive: list[str] = []
    ends = time.monotonic() + LIFETIMES * LIFETIME + 5
    while time.monotonic() < ends:
        most_open = max(most_open, len(open_channels(push_state(stack))))
        inactive += [p for p, token in users.items() if not push_active(stack, token, p)]
        time.sleep(0.5)

    state = push_state(stack)
    channels = state["googleChannels"]
    (subscription,) = state["graphSubscriptions"]
    print(
        f"push renewal over {LIFETIMES} lifetimes of {LIFETIME} s: {len(channels)} Google"
        f" channels opened, at most {most_open} open at once; Graph subscription renewed"
        f" until {subscription['expirationDateTime']}"
    )
    assert inactive == []
    assert most_open <= 2
    # A channel lives LIFETIME seconds and is replaced at half of it: at least one new channel
    # per lifetime, each old one stopped by the service (none just left to expire).
    assert len(channels) >= LIFETIMES + 1
    wait_until(lambda: len(open_channels(push_state(stack))) == 1, 10, "one open channel")
    assert all(c["stopped"] for c in push_state(stack)["googleChannels"][:-1])
    # Graph: one subscription from the start, renewed in place, never expired or deleted.
    assert subscription["renewedAt"] is not None
    assert not subscription["expired"] and not subscription["deleted"]
    expiry = datetime.fromisoformat(subscription["expirationDateTime"].replace("Z", "+00:00"))
    assert expiry > datetime.now(UTC)

    # Still delivered after all those renewals: an owner's new events reach the CRM.
    for provider, owner in owners.items():
        owner.create(f"{provider} after renewals", 2)
    for provider, token in users.items():
        wait_until(
            lambda t=token, p=provider: f"{p} after renewals" in titles(stack, t),
            30,
            f"{provider}'s change after renewals",
        )
    statuses = api(stack, users["GOOGLE"], "GET", "/crm/calendar/connections/status").json()
    assert all(s["pushExpiresAt"] for s in statuses if s["provider"] == "GOOGLE")
