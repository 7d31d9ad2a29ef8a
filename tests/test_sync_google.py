"""The sync engine against Google Calendar (mocked with `responses`, Google-shaped payloads)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
from flask import Flask
from sqlalchemy import select
from urllib3 import HTTPResponse

from calendar_connections.config import get_settings
from calendar_connections.crypto import get_cipher
from calendar_connections.models import CalendarEvent, EventLink
from calendar_connections.providers.http import RetryPolicy
from calendar_connections.providers.session import retry_policy
from calendar_connections.token_store import load_token

from .support import payloads as p
from .support.connections import OUTLOOK, connect
from .support.google import (
    CONNECTIONS,
    DAY,
    EVENTS,
    NEW_YORK,
    SYNC,
    URL,
    Harness,
    ago,
    at,
    body_of,
    connection,
    gevent,
    instant,
    page,
    params,
    tagged,
)
from .support.problems import assert_problem

pytestmark = pytest.mark.app_config(SYNC_RETRY_BACKOFF=0)  # retries without waiting


def test_first_full_sync_pages_through_and_saves_the_token(g: Harness) -> None:
    """A first sync lists every page from 30 days back and creates each event once."""
    review = gevent("rev1", "Review", description="Q4 numbers", location="Room 1")
    g.lists(
        page(review, gevent("std1", "Standup", 1), next_page="pg2"),
        page(next_page="pg3"),  # a page may be empty and still not be the last
        page(gevent("lun1", "Lunch", 2, 12), token="sync-1"),
    )
    g.sync(3, 0, 0, 0)
    lists = g.calls("GET")
    assert [params(r).get("pageToken") for r in lists] == [None, "pg2", "pg3"]
    first = params(lists[0])
    assert first["maxResults"] == "2500" and first["showDeleted"] == "true"
    assert not {"timeMax", "syncToken"} & set(first)
    time_min = instant(first["timeMin"].replace("Z", "+00:00"))
    assert abs(time_min - (datetime.now(UTC) - timedelta(days=30))) < timedelta(minutes=5)
    assert all(params(r)["timeMin"] == first["timeMin"] for r in lists)
    assert {r.headers["Authorization"] for r in lists} == {"Bearer ya29.access-1"}
    events = g.events()
    assert set(events) == {"Review", "Standup", "Lunch"}
    event = events["Review"]
    assert (event["description"], event["location"]) == ("Q4 numbers", "Room 1")
    assert instant(event["start"]) == at(0, 10) and instant(event["end"]) == at(0, 11)
    assert event["timeZone"] == "Europe/Berlin" and event["sources"] == {"GOOGLE": "rev1"}
    assert event["allDay"] is False and event["recurrence"] == []
    with g.db() as session:
        assert connection(session).sync_cursor == "sync-1"
    state = g.status()
    assert state["lastSyncStatus"] == "SUCCESS" and state["lastSyncError"] is None
    assert datetime.now(UTC) - instant(state["lastSyncAt"]) < timedelta(minutes=1)


def test_incremental_sync_creates_updates_and_deletes(g: Harness) -> None:
    """An incremental listing by syncToken applies a create, an update and a cancellation."""
    alpha2, gamma = gevent("a1", "Alpha v2", updated=ago(0)), gevent("c1", "Gamma", 2)
    g.lists(
        page(gevent("a1", "Alpha"), gevent("b1", "Beta", 1)),
        page(alpha2, p.google_cancelled("b1"), gamma, token="st-2"),
        page(gamma, token="st-3"),  # listed again with the same etag: no change
    )
    g.sync(2, 0, 0, 0)
    g.sync(1, 1, 1, 0)
    g.sync(0, 0, 0, 0)
    second, third = g.calls("GET")[1:]
    assert params(second) == {"maxResults": "2500", "showDeleted": "true", "syncToken": "st-1"}
    assert params(third)["syncToken"] == "st-2" and "timeMin" not in params(third)
    assert set(g.events()) == {"Alpha v2", "Gamma"}
    with g.db() as session:
        assert connection(session).sync_cursor == "st-3"


def test_expired_sync_token_runs_a_reconciling_full_sync(g: Harness) -> None:
    """410 fullSyncRequired: a full listing deletes what Google dropped and duplicates nothing."""
    a, b, c = gevent("a1", "Alpha"), gevent("b1", "Beta", 1), gevent("c1", "Gamma", 2)
    g.lists(page(a, b, c))
    g.sync(3, 0, 0, 0)
    with g.db() as session:  # linked long ago and now before the window: Google won't list it
        start = datetime.now(UTC) - timedelta(days=60)
        old = CalendarEvent(user_id="user-1", title="Old", start_at=start, time_zone="UTC")
        old.end_at = start + timedelta(hours=1)
        link = EventLink(connection_id=connection(session).id, external_id="old1")
        old.links.append(link)
        link.synced_version = 1
        session.add(old)
        session.commit()
    _, uid = g.create("CRM only", 3, 9)  # not at Google yet: must survive the reconciliation
    reason = "Sync token is no longer valid, a full sync is required."
    g.lists((410, p.google_error(410, "fullSyncRequired", reason)), page(a, c, token="st-2"))
    g.http.post(URL, json=gevent(uid, "CRM only", 3, 9, **tagged(uid)))
    g.sync(0, 0, 1, 1)
    expired, full = g.calls("GET")[1:]
    assert params(expired)["syncToken"] == "st-1"
    assert "syncToken" not in params(full) and "timeMin" in params(full)
    assert set(g.events()) == {"Alpha", "Gamma", "CRM only", "Old"}
    with g.db() as session:
        assert connection(session).sync_cursor == "st-2"


def test_push_inserts_patches_and_deletes(g: Harness) -> None:
    """CRM creates, changes and deletes reach Google; the tombstone goes after the delete."""
    g.lists(page(), *(page(token=f"st-{n}") for n in (2, 3, 4)))
    g.sync(0, 0, 0, 0)
    event_id, uid = g.create("Demo", description="Agenda", location="HQ")
    g.http.post(URL, json=gevent(uid, "Demo", 1, 14, etag='"e1"', **tagged(uid)))
    g.sync(0, 0, 0, 1)
    body = body_of(g.calls("POST")[0])
    # The tag names the CRM event by the id the API gives it; the uid makes the insert idempotent.
    assert body["id"] == uid
    assert body["extendedProperties"] == tagged(str(event_id))["extendedProperties"]
    assert (body["summary"], body["description"], body["location"]) == ("Demo", "Agenda", "HQ")
    assert body["start"] == {"dateTime": at(1, 14).isoformat(), "timeZone": "Europe/Berlin"}
    assert body["end"] == {"dateTime": at(1, 15).isoformat(), "timeZone": "Europe/Berlin"}
    assert g.events()["Demo"]["sources"] == {"GOOGLE": uid}
    g.edit(event_id, title="Demo v2")
    g.http.patch(f"{URL}/{uid}", json=gevent(uid, "Demo v2", 1, 14, etag='"e2"', **tagged(uid)))
    g.sync(0, 0, 0, 1)
    (patch,) = g.calls("PATCH", f"/{uid}")
    assert patch.headers["If-Match"] == '"e1"' and body_of(patch)["summary"] == "Demo v2"
    assert g.client.delete(f"{EVENTS}/{event_id}", headers=g.auth).status_code == 204
    with g.db() as session:
        tombstone = session.get(CalendarEvent, event_id)
        assert tombstone is not None and tombstone.deleted_at is not None
    g.http.delete(f"{URL}/{uid}", status=204)
    g.sync(0, 0, 0, 1)
    assert len(g.calls("DELETE", f"/{uid}")) == 1
    with g.db() as session:
        assert session.get(CalendarEvent, event_id) is None
    assert g.events() == {}


def test_pushed_event_listed_back_is_not_duplicated(g: Harness) -> None:
    """The pushed event coming back (same etag, new etag, lost link) stays one event."""
    event_id, uid = g.create("Demo")
    g.lists(page())
    g.http.post(URL, json=gevent(uid, "Demo", 1, 14, etag='"e1"', **tagged(uid)))
    g.sync(0, 0, 0, 1)
    later = ago(-1)
    g.lists(
        page(gevent(uid, "Demo", 1, 14, etag='"e1"', **tagged(uid)), token="st-2"),
        page(gevent(uid, "Demo!", 1, 14, etag='"e2"', updated=later, **tagged(uid)), token="st-3"),
        page(gevent(uid, "Demo!", 1, 14, etag='"e3"', updated=later, **tagged(uid)), token="st-4"),
    )
    g.sync(0, 0, 0, 0)
    g.sync(0, 1, 0, 0)
    with g.db() as session:  # as if a sync died between the insert and recording it
        session.execute(EventLink.__table__.delete())
        session.commit()
    g.sync(0, 0, 0, 0)  # matched by our tag
    events = g.events()
    assert list(events) == ["Demo!"] and events["Demo!"]["id"] == event_id
    assert events["Demo!"]["sources"] == {"GOOGLE": uid}
    assert len(g.calls("POST")) == 1 and g.calls("PATCH", f"/{uid}") == []


def test_event_found_by_tag_keeps_a_later_crm_edit(g: Harness) -> None:
    """A pushed event whose link was lost is found by its tag; a CRM edit made since wins."""
    event_id, uid = g.create("Demo")
    inserted = gevent(uid, "Demo", 1, 14, etag='"e1"', updated=ago(0), **tagged(uid))
    g.lists(page(), page(inserted, token="st-2"))
    g.http.post(URL, json=inserted)
    g.sync(0, 0, 0, 1)
    with g.db() as session:  # as if the sync died between the insert and recording it
        session.execute(EventLink.__table__.delete())
        session.commit()
    g.edit(event_id, title="Demo v2")
    g.http.patch(f"{URL}/{uid}", json=gevent(uid, "Demo v2", 1, 14, etag='"e2"', **tagged(uid)))
    g.sync(0, 0, 0, 1)
    (patch,) = g.calls("PATCH", f"/{uid}")
    assert patch.headers["If-Match"] == '"e1"' and body_of(patch)["summary"] == "Demo v2"
    assert list(g.events()) == ["Demo v2"] and len(g.calls("POST")) == 1


def test_copy_of_an_event_deleted_in_the_crm_is_deleted_not_pulled(g: Harness) -> None:
    """A pushed copy found by its tag after the CRM deleted the event is deleted at Google."""
    event_id, uid = g.create("Demo")
    inserted = gevent(uid, "Demo", 1, 14, etag='"e1"', updated=ago(0), **tagged(uid))
    g.lists(page(), page(inserted, token="st-2"))
    g.http.post(URL, json=inserted)
    g.sync(0, 0, 0, 1)
    with g.db() as session:  # as if the sync died between the insert and recording it
        session.execute(EventLink.__table__.delete())
        event = session.get(CalendarEvent, event_id)
        assert event is not None
        event.deleted_at = datetime.now(UTC)  # a tombstone kept for another provider
        event.touch()
        session.commit()
    g.http.delete(f"{URL}/{uid}", status=204)
    g.sync(0, 0, 0, 1)
    assert len(g.calls("DELETE", f"/{uid}")) == 1
    assert g.events() == {}
    with g.db() as session:
        assert session.get(CalendarEvent, event_id) is None  # no link left: tombstone gone


def test_insert_answered_409_takes_the_event_over(g: Harness) -> None:
    """An insert Google already has (409 duplicate) is patched instead, never duplicated."""
    event_id, uid = g.create("Demo")
    g.lists(page())
    exists = p.google_error(409, "duplicate", "The requested identifier already exists.")
    g.http.post(URL, status=409, json=exists)
    g.http.patch(f"{URL}/{uid}", json=gevent(uid, "Demo", 1, 14, etag='"e2"', **tagged(uid)))
    g.sync(0, 0, 0, 1)
    (insert,) = g.calls("POST")
    (patch,) = g.calls("PATCH", f"/{uid}")
    assert body_of(insert)["id"] == uid and "If-Match" not in patch.headers
    assert (
        body_of(patch)["summary"] == "Demo"
        and body_of(patch)["extendedProperties"] == (tagged(str(event_id))["extendedProperties"])
    )
    assert g.events()["Demo"]["sources"] == {"GOOGLE": uid}
    with g.db() as session:
        (link,) = session.execute(select(EventLink)).scalars()
        assert (link.external_id, link.etag) == (uid, '"e2"')


def pulled_then_edited(g: Harness) -> int:
    """An event pulled from Google (updated an hour ago, etag g1), then renamed in the CRM."""
    g.lists(page(gevent("g1", "Original", updated=ago(60), etag='"g1"')))
    g.sync(1, 0, 0, 0)
    event_id: int = g.events()["Original"]["id"]
    g.edit(event_id, title="CRM title")
    return event_id


@pytest.mark.parametrize("google_later", [True, False], ids=["google-wins", "crm-wins"])
def test_conflict_later_modification_wins(g: Harness, google_later: bool) -> None:
    """Changed on both sides: Google's later `updated` wins the CRM, or the CRM's is patched."""
    event_id = pulled_then_edited(g)
    updated = ago(-1 if google_later else 30)
    g.lists(page(gevent("g1", "Google title", etag='"g2"', updated=updated), token="st-2"))
    g.http.patch(f"{URL}/g1", json=gevent("g1", "CRM title", etag='"g3"'))
    if google_later:
        g.sync(0, 1, 0, 0)
        assert g.calls("PATCH", "/g1") == []
    else:
        g.sync(0, 0, 0, 1)
        (patch,) = g.calls("PATCH", "/g1")
        assert patch.headers["If-Match"] == '"g2"' and body_of(patch)["summary"] == "CRM title"
    assert g.events()["Google title" if google_later else "CRM title"]["id"] == event_id
    g.lists(page(token="st-3"))
    g.sync(0, 0, 0, 0)  # settled: nothing left to push


@pytest.mark.parametrize("google_later", [True, False], ids=["google-wins", "crm-wins"])
def test_precondition_failed_patch_rereads_and_resolves(g: Harness, google_later: bool) -> None:
    """A 412 on PATCH re-reads the event (GET) and applies the same later-wins rule."""
    event_id = pulled_then_edited(g)
    updated = ago(-1 if google_later else 30)
    g.lists(page(token="st-2"))
    stale = p.google_error(412, "conditionNotMet", "Precondition Failed")
    g.http.patch(f"{URL}/g1", status=412, json=stale)
    g.http.get(f"{URL}/g1", json=gevent("g1", "Google title", etag='"g2"', updated=updated))
    g.http.patch(f"{URL}/g1", json=gevent("g1", "CRM title", etag='"g3"'))
    g.sync(0, 1, 0, 0) if google_later else g.sync(0, 0, 0, 1)
    patches = g.calls("PATCH", "/g1")
    assert patches[0].headers["If-Match"] == '"g1"' and len(g.calls("GET", "/g1")) == 1
    assert [r.headers["If-Match"] for r in patches[1:]] == ([] if google_later else ['"g2"'])
    assert g.events()["Google title" if google_later else "CRM title"]["id"] == event_id


def berlin(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.isoformat(), "timeZone": "Europe/Berlin"}


def key(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"


@pytest.mark.parametrize("instances_first", [False, True], ids=["master-first", "instances-first"])
def test_series_with_moved_and_cancelled_instances(g: Harness, instances_first: bool) -> None:
    """One CRM series with the RRULE and an EXDATE, plus the moved instance as its own event."""
    master = gevent("wk1", "Weekly", recurrence=["RRULE:FREQ=WEEKLY;COUNT=6"])
    moved_from, cut = at(7, 10), at(14, 10)
    moved = p.google_instance("wk1", berlin(moved_from), key(moved_from), summary="Moved")
    moved |= {"start": berlin(at(8, 15)), "end": berlin(at(8, 16))}
    cancelled = p.google_instance("wk1", berlin(cut), key(cut), status="cancelled")
    if instances_first:
        g.lists(page(moved, cancelled, next_page="pg2"), page(master))
    else:
        g.lists(page(master, next_page="pg2"), page(moved, cancelled))
    g.sync(2, 0, 0, 0)
    events = g.events()
    assert set(events) == {"Weekly", "Moved"}
    series, instance = events["Weekly"], events["Moved"]
    exdate = f"EXDATE;TZID=Europe/Berlin:{cut:%Y%m%dT%H%M%S}"
    assert series["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=6", exdate]
    assert series["sources"] == {"GOOGLE": "wk1"} and series["seriesId"] is None
    assert instance["seriesId"] == series["id"] and instance["recurrence"] == []
    assert instant(instance["originalStart"]) == moved_from
    assert instant(instance["start"]) == at(8, 15)
    assert instance["sources"] == {"GOOGLE": f"wk1_{key(moved_from)}"}


def test_all_day_events_stay_all_day_both_ways(g: Harness) -> None:
    """A Google all-day event keeps its dates (end exclusive); a CRM one is pushed as dates."""
    first, last, day_after = DAY + timedelta(days=3), DAY + timedelta(days=5), DAY + timedelta(1)
    dates = {"startDate": DAY.isoformat(), "endDate": day_after.isoformat()}
    _, uid = g.create("Holiday", allDay=True, **dates)
    g.lists(page(p.google_event("ad1", "Offsite", str(first), str(last), all_day=True)))
    holiday = p.google_event(uid, "Holiday", str(DAY), str(day_after), all_day=True, **tagged(uid))
    g.http.post(URL, json=holiday)
    g.sync(1, 0, 0, 1)
    body = body_of(g.calls("POST")[0])
    assert (body["start"], body["end"]) == ({"date": str(DAY)}, {"date": str(day_after)})
    events = g.events()
    pulled = events["Offsite"]
    assert pulled["allDay"] is True and (pulled["start"], pulled["end"]) == (None, None)
    assert (pulled["startDate"], pulled["endDate"]) == (str(first), str(last))
    assert events["Holiday"]["allDay"] is True and events["Holiday"]["sources"] == {"GOOGLE": uid}


def test_non_utc_zone_is_kept_and_pushed_back(g: Harness) -> None:
    """A New York event has the right instants, keeps its zone, and is patched in that zone."""
    g.lists(page(gevent("ny1", "NYC call", hour=9, zone=NEW_YORK, etag='"n1"')))
    g.sync(1, 0, 0, 0)
    event = g.events()["NYC call"]
    assert event["timeZone"] == "America/New_York"
    assert instant(event["start"]) == at(0, 9, NEW_YORK)  # 14:00 or 13:00 UTC
    assert instant(event["end"]) == at(0, 10, NEW_YORK)
    start, end = (at(0, h, NEW_YORK).astimezone(UTC).isoformat() for h in (11, 12))
    g.edit(event["id"], start=start, end=end)
    g.lists(page(token="st-2"))
    g.http.patch(f"{URL}/ny1", json=gevent("ny1", "NYC call", hour=11, zone=NEW_YORK))
    g.sync(0, 0, 0, 1)
    (patch,) = g.calls("PATCH", "/ny1")
    assert patch.headers["If-Match"] == '"n1"'
    zone = {"timeZone": "America/New_York"}
    assert body_of(patch)["start"] == {"dateTime": at(0, 11, NEW_YORK).isoformat(), **zone}
    assert body_of(patch)["end"] == {"dateTime": at(0, 12, NEW_YORK).isoformat(), **zone}
    assert body_of(patch)["start"]["dateTime"].startswith(f"{DAY}T11:00:00-0")  # local time


def expire_access_token(g: Harness) -> None:
    with g.db() as session:
        token = connection(session).token
        assert token is not None
        token.expires_at = datetime.now(UTC) - timedelta(hours=1)
        session.commit()


def token_requests(g: Harness) -> list[dict[str, str]]:
    """The forms posted to Google's token endpoint, the code exchange first."""
    bodies = [c.request.body for c in g.http.calls if c.request.url == p.GOOGLE_TOKEN_URL]
    return [{k: v[0] for k, v in parse_qs(body).items()} for body in bodies]


@pytest.mark.parametrize("expired", [True, False], ids=["expired", "401"])
def test_access_token_is_refreshed(g: Harness, expired: bool) -> None:
    """An expired token is refreshed before the call, a 401 forces one refresh and a retry."""
    if expired:
        expire_access_token(g)
    else:
        g.lists((401, p.google_error(401, "authError", "Invalid Credentials")))
    g.http.post(p.GOOGLE_TOKEN_URL, json=p.google_token("ya29.access-2", refresh=None))
    g.lists(page(gevent("a1", "Alpha")))
    g.sync(1, 0, 0, 0)
    exchange, refresh = token_requests(g)
    assert exchange["grant_type"] == "authorization_code"
    assert refresh["grant_type"] == "refresh_token" and refresh["refresh_token"] == "1//refresh-1"
    assert refresh["client_id"] == "google-client-id"
    after_connect = [c.request.url.split("?")[0] for c in g.http.calls][2:]
    assert after_connect == ([] if expired else [URL]) + [p.GOOGLE_TOKEN_URL, URL]
    used = [r.headers["Authorization"] for r in g.calls("GET")]
    assert used == ([] if expired else ["Bearer ya29.access-1"]) + ["Bearer ya29.access-2"]
    with g.db() as session:  # stored, encrypted; Google sends no refresh token: the old one kept
        stored = connection(session).token
        token = load_token(connection(session), get_cipher())
        assert token is not None and token["access_token"] == "ya29.access-2"
        assert token["refresh_token"] == "1//refresh-1"
        assert stored is not None and "ya29.access-2" not in stored.access_token_encrypted


def test_invalid_grant_disconnects_and_asks_to_reconnect(g: Harness) -> None:
    """A refused refresh (invalid_grant) fails the sync: connected false, reconnect message."""
    expire_access_token(g)
    revoked = p.oauth_error("invalid_grant", "Token has been expired or revoked.")
    g.http.post(p.GOOGLE_TOKEN_URL, status=400, json=revoked)
    result = g.sync()
    assert result["success"] is False and "reconnect" in result["error"]
    assert "Google Calendar" in result["error"] and g.calls("GET") == []
    state = g.status()
    assert state["connected"] is False and state["lastSyncStatus"] == "FAILED"
    assert state["lastSyncError"] == result["error"]
    assert_problem(g.client.post(SYNC, headers=g.auth), 404)  # no longer connected


RETRIED = {
    "429-retry-after": (429, "rateLimitExceeded", {"Retry-After": "2"}),
    "500": (500, "backendError", {}),
    "503-retry-after": (503, "backendError", {"Retry-After": "1"}),
}
FAILING = {
    "403": (403, "forbidden", "refused to list events (HTTP 403): Nope"),
    "500-every-time": (500, "backendError", "HTTP 500 to list events after retries: Nope"),
}


@pytest.mark.parametrize("code, reason, headers", RETRIED.values(), ids=list(RETRIED))
def test_throttling_and_server_errors_are_retried(
    g: Harness, code: int, reason: str, headers: dict[str, str]
) -> None:
    """429 (with Retry-After) and 5xx answers are retried, and the sync then succeeds."""
    g.http.get(URL, status=code, json=p.google_error(code, reason, "Try later"), headers=headers)
    g.lists(page(gevent("a1", "Alpha")))
    g.sync(1, 0, 0, 0)
    assert len(g.calls("GET")) == 2
    assert g.status()["lastSyncStatus"] == "SUCCESS"


def test_retry_after_is_honoured_and_capped(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The retry policy waits what Retry-After says (capped), else its exponential backoff."""
    slept: list[float] = []
    monkeypatch.setattr("urllib3.util.retry.time.sleep", slept.append)
    throttled = HTTPResponse(status=429, headers={"Retry-After": "7"})
    retry = RetryPolicy(backoff_factor=0, max_retry_after=30).build()
    retry = retry.increment("GET", "/", response=throttled)  # urllib3 sleeps on this copy
    assert retry.get_retry_after(throttled) == 7
    retry.sleep(throttled)
    retry.sleep(HTTPResponse(status=429, headers={"Retry-After": "3600"}))
    retry.sleep(HTTPResponse(status=500))  # no Retry-After and backoff 0: no wait at all
    assert slept == [7, 30]
    retry = RetryPolicy(backoff_factor=1, jitter=0).build().increment("GET", "/").increment()
    retry.sleep(HTTPResponse(status=503))
    assert slept == [7, 30, 2]  # exponential: 1 * 2 ** (2 - 1)
    configured = retry_policy(get_settings(app))
    assert configured.backoff_factor == 0 and configured.max_retry_after == 60


@pytest.mark.parametrize("code, reason, expected", FAILING.values(), ids=list(FAILING))
def test_other_errors_fail_the_sync_clearly(g: Harness, code: int, reason: str, expected: str):
    """A 403 fails at once, a 500 after the bounded retries: FAILED with a clear error."""
    g.http.get(URL, status=code, json=p.google_error(code, reason, "Nope"))
    result = g.sync()
    assert result["success"] is False and expected in result["error"]
    assert result["error"].startswith("Google Calendar")
    assert len(g.calls("GET")) == (1 if code == 403 else 6)  # 1 + 5 retries
    state = g.status()
    assert state["connected"] is True and state["lastSyncStatus"] == "FAILED"
    assert state["lastSyncError"] == result["error"] and state["lastSyncAt"] is None


def test_sync_endpoint_errors(harness: Harness) -> None:
    """Not connected is a 404 problem; an unknown provider a 400 listing the allowed ones."""
    client, auth = harness.client, harness.auth
    assert "not connected" in assert_problem(client.post(SYNC, headers=auth), 404)["detail"]
    body = assert_problem(client.post(f"{CONNECTIONS}/yahoo/sync", headers=auth), 400)
    assert body["allowedValues"] == ["GOOGLE", "OUTLOOK"]
    assert client.post(f"{CONNECTIONS}/GoOgLe/sync", headers=auth).status_code == 404
    assert len(harness.http.calls) == 0


def test_sync_if_stale_syncs_only_stale_providers(g: Harness) -> None:
    """`sync-if-stale` syncs each stale connection once and returns [] when all are fresh."""
    assert connect(g.client, g.auth, g.http, OUTLOOK).status_code == 200
    with g.db() as session:  # Outlook synced a minute ago: fresh
        connection(session, "OUTLOOK").last_sync_at = datetime.now(UTC) - timedelta(minutes=1)
        session.commit()
    g.lists(page(gevent("a1", "Alpha")))
    response = g.client.post(f"{CONNECTIONS}/sync-if-stale", headers=g.auth)
    assert response.status_code == 200
    (result,) = response.json
    assert (result["provider"], result["success"], result["eventsCreated"]) == ("GOOGLE", True, 1)
    response = g.client.post(f"{CONNECTIONS}/sync-if-stale", headers=g.auth)
    assert response.status_code == 200 and response.json == []
    assert len(g.calls("GET")) == 1
