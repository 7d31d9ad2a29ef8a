"""Push end to end on gunicorn, no scheduler: changes made in the sandbox reach the CRM with
no sync call, and a notification outlives the worker that received it."""

from __future__ import annotations

import os
import re
import signal
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from ..support.payloads import day
from ..support.stack import Stack, api, connect, issue_token, sync, wait_until

pytestmark = pytest.mark.e2e

ROUNDS = 3  # of a new event, an edit and a delete, per provider


def push_active(stack: Stack, token: str, provider: str) -> bool:
    statuses = api(stack, token, "GET", "/crm/calendar/connections/status").json()
    (status,) = [s for s in statuses if s["provider"] == provider]
    return bool(status.get("pushActive"))


def titles(stack: Stack, token: str) -> set[str]:
    response = api(stack, token, "GET", "/crm/calendar/events", params={"page_size": 100})
    assert response.status_code == 200, response.text
    return {event["title"] for event in response.json()}


class Owner:
    """The account's owner editing their calendar in the sandbox."""

    def __init__(self, stack: Stack, provider: str, email: str) -> None:
        self.google = provider == "GOOGLE"
        area = "google" if self.google else "microsoft"
        self.url = f"{stack.sandbox_url}/sandbox/{area}/{email}/events"

    def _title(self, title: str) -> dict[str, Any]:
        return {"summary": title} if self.google else {"subject": title}

    def create(self, title: str, n: int) -> str:
        when = {"dateTime": f"{day(1 + n)}T09:00:00", "timeZone": "UTC"}
        until = {"dateTime": f"{day(1 + n)}T10:00:00", "timeZone": "UTC"}
        response = requests.post(
            self.url, json={**self._title(title), "start": when, "end": until}, timeout=10
        )
        assert response.status_code in (200, 201), response.text
        return str(response.json()["id"])

    def rename(self, event_id: str, title: str) -> None:
        response = requests.patch(f"{self.url}/{event_id}", json=self._title(title), timeout=10)
        assert response.status_code == 200, response.text

    def delete(self, event_id: str) -> None:
        response = requests.delete(f"{self.url}/{event_id}", timeout=10)
        assert response.status_code == 204, response.text


def connect_with_push(stack: Stack, token: str, provider: str) -> Owner:
    """Connect, run the first sync (which opens the channel), wait for push; the owner."""
    status = connect(stack, token, provider.lower())
    sync(stack, token, provider)
    wait_until(lambda: push_active(stack, token, provider), 30, "push active")
    return Owner(stack, provider, status["accountEmail"])


def seconds_until(check: Any, started: float) -> float:
    wait_until(check, 30, "a change to reach the CRM")
    return time.monotonic() - started


def measure(stack: Stack, token: str, owner: Owner, latencies: list[float]) -> None:
    """New event, edit, delete, ROUNDS times: seconds from each change to the CRM showing it."""
    for n in range(ROUNDS):
        title = f"{'google' if owner.google else 'outlook'} event {n}"
        started = time.monotonic()
        event_id = owner.create(title, n)
        latencies.append(seconds_until(lambda t=title: t in titles(stack, token), started))
        started = time.monotonic()
        owner.rename(event_id, f"{title} (moved)")
        latencies.append(
            seconds_until(lambda t=title: f"{t} (moved)" in titles(stack, token), started)
        )
        started = time.monotonic()
        owner.delete(event_id)
        latencies.append(
            seconds_until(lambda t=title: f"{t} (moved)" not in titles(stack, token), started)
        )


def test_owner_changes_reach_the_crm_by_push_with_no_sync_call(stack: Stack) -> None:
    stack.start_sandbox()
    service = stack.start_service(push=True)  # SCHEDULER_ENABLED=false, WEBHOOK_SYNC_DELAY=2
    users = {
        "GOOGLE": issue_token(stack, "push-google"),
        "OUTLOOK": issue_token(stack, "push-outlook"),
    }
    owners = {
        provider: connect_with_push(stack, token, provider) for provider, token in users.items()
    }
    latencies: list[float] = []
    threads = [
        threading.Thread(target=measure, args=(stack, users[p], owners[p], latencies))
        for p in users
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(latencies) == 2 * 3 * ROUNDS
    p95 = statistics.quantiles(latencies, n=20, method="inclusive")[-1]
    print(
        f"push end to end on gunicorn: {len(latencies)} changes, median"
        f" {statistics.median(latencies):.2f} s, p95 {p95:.2f} s, max {max(latencies):.2f} s"
    )
    assert p95 < 5
    # The only sync calls were the two first syncs: everything else came by push.
    access = service.output()
    assert access.count("/sync HTTP") == 2, access


def worker_pids(master: int) -> list[int]:
    """The gunicorn master's worker processes."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                children.append(int(entry.name))
    return children


def due_connections(database_url: str) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM calendar_connection WHERE push_due_at IS NOT NULL"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_a_notification_outlives_the_worker_that_received_it(stack: Stack) -> None:
    """kill -9 of the worker before its background sync: a scheduler round syncs it."""
    stack.start_sandbox()
    service = stack.start_service(push=True, WEB_CONCURRENCY="1", WEBHOOK_SYNC_DELAY="600")
    token = issue_token(stack, "crash-user")
    owner = connect_with_push(stack, token, "GOOGLE")
    database_url = stack.env["DATABASE_URL"]
    # Opening the channel left the connection due (a change just before it opened is notified
    # by no one): a round syncs that, so that the only due mark left is the notification's.
    caught_up = stack.flask("calendar", "sync-stale")
    assert caught_up.returncode == 0, caught_up.stdout + caught_up.stderr
    assert due_connections(database_url) == 0
    owner.create("Made before the crash", 0)
    wait_until(lambda: due_connections(database_url) == 1, 30, "the notification recorded")
    (worker,) = worker_pids(service.popen.pid)
    os.kill(worker, signal.SIGKILL)
    wait_until(
        lambda: (
            worker_pids(service.popen.pid) not in ([], [worker])
            and requests.get(f"{stack.service_url}/readyz", timeout=2).ok
        ),
        60,
        "a new worker",
    )
    assert "Made before the crash" not in titles(stack, token)
    assert due_connections(database_url) == 1
    round_ = stack.flask("calendar", "sync-stale")
    assert round_.returncode == 0, round_.stdout + round_.stderr
    assert "1 stale connection(s): 1 synced" in round_.stdout, round_.stdout
    assert "Made before the crash" in titles(stack, token)
    assert due_connections(database_url) == 0


def listings(stack: Stack) -> dict[str, int]:
    """The sandbox's calendar listings (one per sync) since its request log was emptied."""
    log = requests.get(f"{stack.sandbox_url}/sandbox/requests", timeout=10).json()
    counts = {"GOOGLE": 0, "OUTLOOK": 0}
    for entry in log:
        if entry["method"] != "GET":
            continue
        if re.fullmatch(r"/google/calendar/v3/calendars/[^/]+/events", entry["path"]):
            counts["GOOGLE"] += 1
        elif entry["path"].endswith("/calendarView/delta"):
            counts["OUTLOOK"] += 1
    return counts


def clear_log(stack: Stack) -> None:
    requests.delete(f"{stack.sandbox_url}/sandbox/requests", timeout=10).raise_for_status()


def test_a_burst_of_twenty_changes_makes_few_syncs_and_all_arrive(stack: Stack) -> None:
    stack.start_sandbox()
    stack.start_service(push=True)
    users = {
        "GOOGLE": issue_token(stack, "burst-google"),
        "OUTLOOK": issue_token(stack, "burst-outlook"),
    }
    owners = {
        provider: connect_with_push(stack, token, provider) for provider, token in users.items()
    }
    clear_log(stack)
    for provider, owner in owners.items():
        for n in range(20):
            owner.create(f"{provider} burst {n}", n)
    for provider, token in users.items():
        expected = {f"{provider} burst {n}" for n in range(20)}
        wait_until(lambda e=expected, t=token: e <= titles(stack, t), 30, "the burst")
    time.sleep(3)  # longer than WEBHOOK_SYNC_DELAY: any late sync shows in the log
    counts = listings(stack)
    print(f"syncs for a burst of 20 changes: {counts}")
    assert all(1 <= count <= 3 for count in counts.values()), counts


def live_subscriptions(stack: Stack) -> list[dict[str, Any]]:
    push = requests.get(f"{stack.sandbox_url}/sandbox/push", timeout=10).json()
    return [s for s in push["graphSubscriptions"] if not s["expired"] and not s["deleted"]]


def lifecycle(stack: Stack, subscription_id: str, event: str) -> None:
    response = requests.post(
        f"{stack.sandbox_url}/sandbox/push/graph/{subscription_id}/lifecycle",
        json={"event": event},
        timeout=10,
    )
    assert response.status_code == 202, response.text


def graph_calls(stack: Stack, method: str, suffix: str) -> int:
    log = requests.get(f"{stack.sandbox_url}/sandbox/requests", timeout=10).json()
    return sum(1 for entry in log if entry["method"] == method and entry["path"].endswith(suffix))


def test_graph_lifecycle_events_renew_reopen_and_sync(stack: Stack) -> None:
    stack.start_sandbox()
    stack.start_service(push=True, WEBHOOK_SYNC_DELAY="0.5")
    token = issue_token(stack, "lifecycle-user")
    connect_with_push(stack, token, "OUTLOOK")
    (subscription,) = live_subscriptions(stack)

    clear_log(stack)
    lifecycle(stack, subscription["id"], "missed")
    wait_until(lambda: listings(stack)["OUTLOOK"] == 1, 30, "the sync after missed")

    clear_log(stack)
    lifecycle(stack, subscription["id"], "reauthorizationRequired")
    renewed = f"/subscriptions/{subscription['id']}"
    wait_until(lambda: graph_calls(stack, "PATCH", renewed) == 1, 30, "the renewal")
    assert listings(stack)["OUTLOOK"] == 0

    clear_log(stack)
    lifecycle(stack, subscription["id"], "subscriptionRemoved")
    wait_until(
        lambda: (
            [s["id"] for s in live_subscriptions(stack)] not in ([], [subscription["id"]])
            and listings(stack)["OUTLOOK"] == 1
        ),
        30,
        "a new subscription and a sync",
    )
    assert push_active(stack, token, "OUTLOOK")
