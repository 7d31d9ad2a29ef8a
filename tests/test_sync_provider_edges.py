"""Provider edges: Google's rate-limit 403s are retried like 429 (other 403s are not), Graph's
expired delta link in each of its shapes restarts the full listing, and an item listed twice
in one round, or a round spread over several pages, is applied exactly once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import responses
from flask import Flask
from sqlalchemy import select

from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection

from .support import payloads as p
from .support.connections import GOOGLE, connect
from .support.google import Harness, gevent, page
from .support.sandbox import (
    OUTLOOK,
    Sandbox,
    Side,
    crm_items,
    crm_views,
    sandbox_config,
    soon,
    sync,
)
from .support.sandbox import connect as connect_sandbox


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff waits, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr("tenacity.nap.time.sleep", waits.append)
    return waits


def rate_limited(reason: str) -> tuple[int, dict[str, object]]:
    return 403, p.google_error(403, reason, "Rate Limit Exceeded")


@pytest.mark.parametrize("reason", ["rateLimitExceeded", "userRateLimitExceeded"])
def test_google_rate_limit_403_is_retried_with_backoff(
    g: Harness, slept: list[float], reason: str
) -> None:
    g.lists(rate_limited(reason), rate_limited(reason), page(gevent("a1", "Alpha")))

    g.sync(1, 0, 0, 0)

    assert len(g.calls("GET")) == 3
    assert len(slept) == 2  # one backoff before each retry
    assert g.status()["lastSyncStatus"] == "SUCCESS"
    assert set(g.events()) == {"Alpha"}


def test_the_backoff_grows_as_the_retry_policy_says(
    make_app: Callable[..., Flask],
    auth: dict[str, str],
    http: responses.RequestsMock,
    slept: list[float],
) -> None:
    app = make_app(SYNC_RETRY_BACKOFF=1, SYNC_RETRY_BACKOFF_MAX=3, SYNC_RETRY_ATTEMPTS=4)
    client = app.test_client()
    assert connect(client, auth, http, GOOGLE).status_code == 200
    g = Harness(client, auth, http, app)
    g.lists(*[rate_limited("rateLimitExceeded")] * 4, page(gevent("a1", "Alpha")))

    g.sync(1, 0, 0, 0)

    assert len(slept) == 4
    # 1 * 2 ** (n - 1) plus up to 0.5 s of jitter, never over the 3 s maximum
    for wait, low in zip(slept, (1, 2, 3, 3), strict=True):
        assert low <= wait <= min(low + 0.5, 3)


def test_google_rate_limit_that_outlasts_the_retries_fails_as_unavailable(
    make_app: Callable[..., Flask],
    auth: dict[str, str],
    http: responses.RequestsMock,
    slept: list[float],
) -> None:
    app = make_app(SYNC_RETRY_ATTEMPTS=2)
    client = app.test_client()
    assert connect(client, auth, http, GOOGLE).status_code == 200
    g = Harness(client, auth, http, app)
    g.lists(*[rate_limited("userRateLimitExceeded")] * 5)

    result = g.sync()

    assert len(g.calls("GET")) == 3  # the first try and two retries
    assert result["success"] is False
    assert "HTTP 403 to list events after retries: Rate Limit Exceeded" in result["error"]
    assert g.status()["connected"] is True


@pytest.mark.parametrize("reason", ["forbidden", "forbiddenForNonOrganizer"])
def test_other_google_403s_are_not_retried(g: Harness, slept: list[float], reason: str) -> None:
    g.lists((403, p.google_error(403, reason, "Not allowed")), page(gevent("a1", "Alpha")))

    result = g.sync()

    assert len(g.calls("GET")) == 1 and slept == []
    assert result["success"] is False and "refused to list events (HTTP 403)" in result["error"]


# --- against the provider sandbox -------------------------------------------------------------


def stored_cursor(app: Flask, side: Side) -> str:
    with app.app_context():
        cursor = db.session.execute(
            select(CalendarConnection.sync_cursor).where(CalendarConnection.provider == side.name)
        ).scalar_one()
    assert cursor
    return str(cursor)


def delta_requests(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [e for e in sandbox.requests() if e["path"].endswith("/calendarView/delta")]


EXPIRED_DELTA = {
    "410": (410, "syncStateNotFound"),
    "400-resyncRequired": (400, "resyncRequired"),
    "404-syncStateNotFound": (404, "syncStateNotFound"),
    "400-SyncStateInvalid": (400, "SyncStateInvalid"),
    "403-syncstatenotfound": (403, "syncstatenotfound"),
}


@pytest.mark.app_config(**sandbox_config())
@pytest.mark.parametrize("status, code", EXPIRED_DELTA.values(), ids=list(EXPIRED_DELTA))
def test_graph_expired_delta_link_restarts_the_reconciling_full_listing(
    app: Flask, auth: dict[str, str], sandbox: Sandbox, status: int, code: str
) -> None:
    client = app.test_client()
    connect_sandbox(client, auth, OUTLOOK)
    kept = sandbox.create(OUTLOOK, OUTLOOK.body("Kept", soon(30), "k1"))
    dropped = sandbox.create(OUTLOOK, OUTLOOK.body("Dropped", soon(32), "k2"))
    assert sync(client, auth, OUTLOOK)["eventsCreated"] == 2
    sandbox.delete(OUTLOOK, dropped["id"])
    sandbox.create(OUTLOOK, OUTLOOK.body("Added", soon(34), "k3"))
    sandbox.call("DELETE", "/requests", status=204)
    body = {"error": {"code": code, "message": "The sync state is gone; resync."}}
    sandbox.fault(method="GET", path="/calendarView/delta", status=status, body=body)

    result = sync(client, auth, OUTLOOK)

    first, *rest = delta_requests(sandbox)
    assert first["status"] == status and "deltatoken=" in first["query"]
    assert rest and "startDateTime" in rest[0]["query"]  # a fresh window: the full listing
    assert (result["eventsCreated"], result["eventsDeleted"]) == (1, 1)
    assert crm_views(client, auth) == sandbox.views(OUTLOOK)
    assert kept["id"] in {item["sources"]["OUTLOOK"] for item in crm_items(client, auth)}


def listing_page(side: Side, items: list[dict[str, Any]], *, more: str | None, last: str | None):
    """A listing page (Google events.list or a Graph delta page) of ``items``."""
    if side.name == "GOOGLE":
        page_body: dict[str, Any] = {"kind": "calendar#events", "items": items}
        if more:
            page_body["nextPageToken"] = more
        else:
            page_body["nextSyncToken"] = last
        return page_body
    link = {"@odata.nextLink": more} if more else {"@odata.deltaLink": last}
    return {"value": items, **link}


@pytest.mark.app_config(**sandbox_config())
def test_an_item_listed_twice_across_pages_of_one_round_is_applied_once(
    app: Flask, auth: dict[str, str], sandbox: Sandbox, side: Side
) -> None:
    """One incremental round of two pages lists A twice on page 1 and again on page 2."""
    client = app.test_client()
    connect_sandbox(client, auth, side)
    assert sync(client, auth, side)["eventsCreated"] == 0
    cursor = stored_cursor(app, side)
    a = sandbox.create(side, side.body("Alpha", soon(30), "ka"))
    b = sandbox.create(side, side.body("Beta", soon(32), "kb"))
    a, b = sorted(sandbox.items(side), key=lambda item: side.view(item).title)
    listing = "/calendarView/delta" if side.name == "OUTLOOK" else f"/{side.email}/events"
    second = "page-2" if side.name == "GOOGLE" else cursor.split("?")[0] + "?$skiptoken=page-2"
    for body in (
        listing_page(side, [a, a], more=second, last=None),
        listing_page(side, [b, a], more=None, last=cursor),
    ):
        sandbox.fault(method="GET", path=listing, status=200, body=body)
    sandbox.call("DELETE", "/requests", status=204)

    result = sync(client, auth, side)

    assert [e["status"] for e in sandbox.requests() if e["fault"]] == [200, 200]  # both pages
    assert (result["eventsCreated"], result["eventsUpdated"], result["eventsDeleted"]) == (2, 0, 0)
    assert result["eventsPushed"] == 0
    assert crm_views(client, auth) == sandbox.views(side)
    sources = sorted(item["sources"][side.name] for item in crm_items(client, auth))
    assert sources == sorted([a["id"], b["id"]])
    again = sync(client, auth, side)  # the same changes listed again by the real cursor
    assert (again["eventsCreated"], again["eventsUpdated"], again["eventsDeleted"]) == (0, 0, 0)
    assert crm_views(client, auth) == sandbox.views(side)
