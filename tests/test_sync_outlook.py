"""Outlook (Microsoft Graph) sync: delta rounds, resync, window, push and conflicts.

Series, all-day events and zones are in test_sync_outlook_series.py; tokens, retries and
refused requests in test_sync_outlook_auth.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, CalendarEvent, EventLink

from .support import payloads as p
from .support.connections import OUTLOOK, connect
from .support.outlook import (
    EVENTS,
    TAG,
    body_of,
    connection,
    counts,
    crm_events,
    delta_link,
    event_url,
    graph_time,
    instant,
    serve,
    status,
    sync,
)


@pytest.fixture(autouse=True)
def linked(client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock) -> None:
    """An Outlook connection, not synced yet."""
    assert connect(client, auth, http, OUTLOOK).status_code == 200


def test_first_full_sync_follows_next_links_and_stores_the_delta_link(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask
) -> None:
    """A first sync lists the window page by page and creates every event once."""
    review_start, review_end = p.local(0, 10), p.local(0, 11, 30)  # Berlin
    described = p.graph_event(
        "AAMkAD-ev1=",
        "Quarterly review",
        p.graph_utc(review_start),
        p.graph_utc(review_end),
        body={"contentType": "text", "content": "Numbers for Q4"},
        location={"displayName": "Room 4.01", "locationType": "default"},
    )
    others = [p.graph_event(f"AAMkAD-ev{n}=", f"Call {n}", original_zone="UTC") for n in (2, 3, 4)]
    routes = serve(http, None, [described, others[0]], [others[1]], [others[2]], delta="D1")

    assert counts(sync(client, auth)) == (4, 0, 0, 0)

    assert [len(route.calls) for route in routes] == [1, 1, 1]
    first = routes[0].calls[0].request
    window = {k: v[0] for k, v in parse_qs(urlsplit(first.url).query).items()}
    start, end = instant(window["startDateTime"]), instant(window["endDateTime"])
    assert end - start == timedelta(days=395)
    assert abs(start - (datetime.now(UTC) - timedelta(days=30))) < timedelta(minutes=5)
    for route in routes:
        prefer = route.calls[0].request.headers["Prefer"]
        assert "odata.maxpagesize=200" in prefer and 'outlook.timezone="UTC"' in prefer
    stored = connection(app)
    assert stored.sync_cursor == delta_link("D1")
    assert stored.window_start and stored.window_end
    assert stored.window_start.replace(microsecond=0) == start
    assert stored.window_end.replace(microsecond=0) == end
    events = crm_events(client, auth)
    assert set(events) == {"AAMkAD-ev1=", "AAMkAD-ev2=", "AAMkAD-ev3=", "AAMkAD-ev4="}
    review = events["AAMkAD-ev1="]
    assert review["title"] == "Quarterly review"
    assert review["description"] == "Numbers for Q4"
    assert review["location"] == "Room 4.01"
    assert review["timeZone"] == "Europe/Berlin"
    assert instant(review["start"]) == review_start
    assert instant(review["end"]) == review_end
    assert review["allDay"] is False
    assert events["AAMkAD-ev2="]["timeZone"] == "UTC"
    state = status(client, auth)
    assert state["lastSyncStatus"] == "SUCCESS" and state["lastSyncError"] is None
    assert instant(state["lastSyncAt"]) > start


def test_small_page_size_setting_is_sent(
    make_app: Callable[..., Flask], auth: dict[str, str], http: responses.RequestsMock
) -> None:
    """`OUTLOOK_PAGE_SIZE` sets `Prefer: odata.maxpagesize`."""
    client = make_app(OUTLOOK_PAGE_SIZE=2).test_client()
    routes = serve(http, None, [p.graph_event("a"), p.graph_event("b")], [p.graph_event("c")])
    assert counts(sync(client, auth)) == (3, 0, 0, 0)
    assert "odata.maxpagesize=2" in routes[0].calls[0].request.headers["Prefer"]


def three_events() -> list[dict[str, Any]]:
    return [p.graph_event(f"AAMkAD-{n}=", f"Event {n}", original_zone="UTC") for n in "abc"]


def test_incremental_round_creates_updates_and_deletes(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask
) -> None:
    """The stored delta link brings a new event, a changed one and an `@removed` entry."""
    a = three_events()[0]
    serve(http, None, three_events(), delta="D1")
    assert counts(sync(client, auth)) == (3, 0, 0, 0)
    moved_to = datetime.combine(p.day(1), time(13), UTC)
    changed = p.graph_event(
        "AAMkAD-b=",
        "Event b, moved",
        p.graph_utc(moved_to),
        p.graph_utc(moved_to + timedelta(hours=1)),
        original_zone="UTC",
        modified=p.graph_stamp(p.NOW),
    )
    new = p.graph_event("AAMkAD-d=", "Event d", original_zone="UTC")
    routes = serve(http, "D1", [a, changed], [p.graph_removed("AAMkAD-c="), new], delta="D2")

    assert counts(sync(client, auth)) == (1, 1, 1, 0)

    assert [len(route.calls) for route in routes] == [1, 1]
    assert connection(app).sync_cursor == delta_link("D2")
    events = crm_events(client, auth)
    assert set(events) == {"AAMkAD-a=", "AAMkAD-b=", "AAMkAD-d="}
    assert events["AAMkAD-b="]["title"] == "Event b, moved"
    assert instant(events["AAMkAD-b="]["start"]) == moved_to


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (410, p.graph_error("SyncStateNotFound", "The sync state generation is not found.")),
        (400, p.graph_error("resyncRequired", "Resync required.")),
    ],
    ids=["410-SyncStateNotFound", "400-resyncRequired"],
)
def test_expired_delta_token_runs_a_reconciling_full_resync(
    client: FlaskClient,
    auth: dict[str, str],
    http: responses.RequestsMock,
    app: Flask,
    code: int,
    error: dict[str, Any],
) -> None:
    """An expired delta link restarts from a full listing that removes what Graph dropped."""
    a, b, _ = three_events()
    serve(http, None, three_events(), delta="D1")
    assert counts(sync(client, auth)) == (3, 0, 0, 0)
    with app.app_context():  # an old event, outside the window: not listed, but not deleted
        long_ago = datetime.combine(p.TODAY - timedelta(days=90), time(9), UTC)
        old = CalendarEvent(
            user_id="user-1",
            title="Months ago",
            start_at=long_ago,
            end_at=long_ago + timedelta(hours=1),
            time_zone="UTC",
            origin="OUTLOOK",
        )
        conn = db.session.execute(select(CalendarConnection)).scalar_one()
        db.session.add(
            EventLink(connection_id=conn.id, event=old, external_id="AAMkAD-old=", synced_version=1)
        )
        db.session.commit()
    expired = http.get(delta_link("D1"), json=error, status=code)
    full = serve(http, None, [a], [b, p.graph_event("AAMkAD-e=", "Event e")], delta="D2")

    assert counts(sync(client, auth)) == (1, 0, 1, 0)

    assert len(expired.calls) == 1 and len(full[0].calls) == 1
    assert connection(app).sync_cursor == delta_link("D2")
    events = crm_events(client, auth)
    assert set(events) == {"AAMkAD-a=", "AAMkAD-b=", "AAMkAD-e=", "AAMkAD-old="}
    with app.app_context():
        assert db.session.query(CalendarEvent).count() == 4


def test_window_moves_forward_with_a_full_resync_when_it_grows_old(
    make_app: Callable[..., Flask], auth: dict[str, str], http: responses.RequestsMock
) -> None:
    """With `SYNC_WINDOW_SHIFT` passed, the next sync lists a new window instead of the delta."""
    app = make_app(SYNC_WINDOW_SHIFT=3600)
    client = app.test_client()
    a, b, _ = three_events()
    serve(http, None, [a, b], delta="D1")
    assert counts(sync(client, auth)) == (2, 0, 0, 0)
    serve(http, "D1", [], delta="D2")
    assert counts(sync(client, auth)) == (0, 0, 0, 0)  # young window: incremental
    first = connection(app)
    assert first.sync_cursor == delta_link("D2") and first.window_start is not None
    with app.app_context():
        conn = db.session.get(CalendarConnection, first.id)
        assert conn is not None and conn.window_start and conn.window_end
        conn.window_start -= timedelta(hours=2)
        conn.window_end -= timedelta(hours=2)
        db.session.commit()
    stale = http.get(delta_link("D2"), json=p.graph_page([], delta_link=delta_link("D9")))
    full = serve(http, None, [a], delta="D3")

    assert counts(sync(client, auth)) == (0, 0, 1, 0)

    assert not stale.calls and len(full[0].calls) == 1
    query = parse_qs(urlsplit(full[0].calls[0].request.url).query)
    moved = connection(app)
    assert moved.window_start is not None and moved.window_end is not None
    assert instant(query["startDateTime"][0]) == moved.window_start.replace(microsecond=0)
    assert moved.window_start - (first.window_start - timedelta(hours=2)) >= timedelta(hours=2)
    assert moved.window_end - moved.window_start == timedelta(days=395)
    assert moved.sync_cursor == delta_link("D3")


DEMO_START, DEMO_END = p.local(3, 10), p.local(3, 11)  # a Thursday, Berlin time
DEMO = {
    "title": "Demo",
    "description": "Show v2",
    "location": "Berlin office",
    "start": DEMO_START.isoformat(),
    "end": DEMO_END.isoformat(),
    "timeZone": "Europe/Berlin",
}
CREATED = "AAMkAD-crm1="
WEST_EUROPE = "W. Europe Standard Time"


def graph_demo(change_key: str, subject: str = "Demo", **extra: Any) -> dict[str, Any]:
    """Graph's copy of DEMO (times in UTC, as asked with `outlook.timezone`)."""
    fields: dict[str, Any] = {
        "body": {"contentType": "text", "content": "Show v2"},
        "location": {"displayName": "Berlin office", "locationType": "default"},
        "modified": p.graph_stamp(p.NOW - timedelta(hours=5)),
    }
    fields.update(extra)
    return p.graph_event(
        CREATED,
        subject,
        p.graph_utc(DEMO_START),
        p.graph_utc(DEMO_END),
        change_key=change_key,
        **fields,
    )


def push_demo(client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock) -> Any:
    """Create DEMO in the CRM and sync it to Outlook (first, empty, full round: D1)."""
    event = client.post(EVENTS, json=DEMO, headers=auth).json
    serve(http, None, [], delta="D1")
    insert = http.post(f"{p.GRAPH_CALENDAR_URL}/events", status=201, json=graph_demo("ck-1"))
    assert counts(sync(client, auth)) == (0, 0, 0, 1)
    return event, insert


def test_push_creates_patches_and_deletes_at_graph(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask
) -> None:
    """CRM creates, changes and deletes become POST, PATCH and DELETE at Graph."""
    event, insert = push_demo(client, auth, http)
    with app.app_context():
        uid = db.session.get(CalendarEvent, event["id"]).uid  # type: ignore[union-attr]
    sent = body_of(insert)
    assert sent["subject"] == "Demo"
    assert sent["body"] == {"contentType": "text", "content": "Show v2"}
    assert sent["location"]["displayName"] == "Berlin office"
    assert sent["start"] == {"dateTime": f"{p.day(3)}T10:00:00", "timeZone": WEST_EUROPE}
    assert sent["end"] == {"dateTime": f"{p.day(3)}T11:00:00", "timeZone": WEST_EUROPE}
    assert sent["isAllDay"] is False
    assert sent["transactionId"] == uid
    assert sent["singleValueExtendedProperties"] == [{"id": TAG, "value": str(event["id"])}]
    url = f"{EVENTS}/{event['id']}"
    assert client.get(url, headers=auth).json["sources"] == {"OUTLOOK": CREATED}

    change = {
        "title": "Demo (moved)",
        "start": p.local(3, 14).isoformat(),
        "end": p.local(3, 15).isoformat(),
    }
    assert client.patch(url, json=change, headers=auth).status_code == 200
    serve(http, "D1", [graph_demo("ck-1")], delta="D2")  # Graph lists what the push created
    patch = http.patch(event_url(CREATED), json=graph_demo("ck-2", "Demo (moved)"))
    assert counts(sync(client, auth)) == (0, 0, 0, 1)
    sent = body_of(patch)
    assert sent["subject"] == "Demo (moved)"
    assert sent["start"] == {"dateTime": f"{p.day(3)}T14:00:00", "timeZone": WEST_EUROPE}
    assert "transactionId" not in sent

    assert client.delete(url, headers=auth).status_code == 204
    serve(http, "D2", [], delta="D3")
    delete = http.delete(event_url(CREATED), status=204)
    assert counts(sync(client, auth)) == (0, 0, 0, 1)
    assert len(delete.calls) == 1
    assert client.get(url, headers=auth).status_code == 404
    with app.app_context():
        assert db.session.query(CalendarEvent).count() == 0
        assert db.session.query(EventLink).count() == 0


def test_pushed_event_coming_back_is_no_duplicate(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask
) -> None:
    """The event the CRM created comes back in the delta: same changeKey, then new ones."""
    event, _ = push_demo(client, auth, http)
    serve(http, "D1", [graph_demo("ck-1")], delta="D2")
    assert counts(sync(client, auth)) == (0, 0, 0, 0)
    serve(http, "D2", [graph_demo("ck-2")], delta="D3")  # same fields, new changeKey
    assert counts(sync(client, auth)) == (0, 0, 0, 0)
    later = graph_time(datetime.now(UTC) + timedelta(minutes=5))
    edited = graph_demo("ck-3", "Demo (Outlook)", modified=later)
    serve(http, "D3", [edited], delta="D4")
    assert counts(sync(client, auth)) == (0, 1, 0, 0)
    events = crm_events(client, auth)
    assert list(events) == [CREATED]
    assert events[CREATED]["id"] == event["id"] and events[CREATED]["title"] == "Demo (Outlook)"
    with app.app_context():
        assert db.session.query(CalendarEvent).count() == 1


@pytest.mark.parametrize("winner", ["crm", "outlook"])
def test_conflict_later_modification_wins(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, winner: str
) -> None:
    """Changed on both sides: `lastModifiedDateTime` against the CRM's `updatedAt`."""
    event, _ = push_demo(client, auth, http)
    url = f"{EVENTS}/{event['id']}"
    updated_at = instant(
        client.patch(url, json={"title": "CRM title"}, headers=auth).json["updatedAt"]
    )
    offset = timedelta(minutes=10 if winner == "outlook" else -10)
    remote = graph_demo("ck-2", "Outlook title", modified=graph_time(updated_at + offset))
    serve(http, "D1", [remote], delta="D2")
    patch = http.patch(event_url(CREATED), json=graph_demo("ck-3", "CRM title"))

    result = counts(sync(client, auth))

    title = client.get(url, headers=auth).json["title"]
    if winner == "crm":
        assert (result, title, len(patch.calls)) == ((0, 0, 0, 1), "CRM title", 1)
        assert body_of(patch)["subject"] == "CRM title"
        # The pull kept Outlook's changeKey, so the overwrite is conditional on that version.
        assert patch.calls[0].request.headers["If-Match"] == 'W/"ck-2"'
    else:
        assert (result, title, len(patch.calls)) == ((0, 1, 0, 0), "Outlook title", 0)


@pytest.mark.parametrize(
    ("code", "winner"), [(412, "crm"), (409, "crm"), (412, "outlook")], ids=str
)
def test_conflict_on_patch_rereads_and_resolves(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, code: int, winner: str
) -> None:
    """A 412/409 on PATCH re-reads the event and applies the later change."""
    event, _ = push_demo(client, auth, http)
    url = f"{EVENTS}/{event['id']}"
    updated_at = instant(
        client.patch(url, json={"title": "CRM title"}, headers=auth).json["updatedAt"]
    )
    serve(http, "D1", [graph_demo("ck-1")], delta="D2")  # the pushed event, unchanged
    conflict = p.graph_error(
        "ErrorIrresolvableConflict",
        "The send or update operation could not be performed because the change key passed in "
        "the request does not match the current change key for the item.",
    )
    offset = timedelta(minutes=10 if winner == "outlook" else -10)
    current = graph_demo("ck-2", "Outlook title", modified=graph_time(updated_at + offset))
    reread = http.get(event_url(CREATED), json=current)
    patch = http.patch(event_url(CREATED), json=conflict, status=code)
    http.patch(event_url(CREATED), json=graph_demo("ck-3", "CRM title"))

    result = counts(sync(client, auth))

    assert len(reread.calls) == 1
    title = client.get(url, headers=auth).json["title"]
    if winner == "crm":
        assert (result, title) == ((0, 0, 0, 1), "CRM title")
        patches = [c.request for c in http.calls if c.request.method == "PATCH"]
        # The PATCH is conditional on the changeKey we knew, then on the one just re-read.
        assert [r.headers.get("If-Match") for r in patches] == ['W/"ck-1"', 'W/"ck-2"']
        assert json.loads(patches[1].body or b"")["subject"] == "CRM title"
    else:
        assert (result, title) == ((0, 1, 0, 0), "Outlook title")
        assert len(patch.calls) == 1
