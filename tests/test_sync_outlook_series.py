"""Outlook sync of recurring series, all-day events and time zones (Microsoft Graph)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient

from calendar_connections.extensions import db
from calendar_connections.models import CalendarEvent

from .support import payloads as p
from .support.connections import OUTLOOK, connect
from .support.outlook import (
    EVENTS,
    TAG,
    body_of,
    counts,
    crm_events,
    delta_link,
    event_url,
    instant,
    serve,
    sync,
)

SERIES = "AAMkAD-series="
WEEKLY = p.graph_weekly(["monday"], str(p.MONDAY), count=4)
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def exdate(days: int) -> str:
    """The EXDATE of the series' 09:00 (Berlin) slot `days` after its first Monday."""
    return f"EXDATE;TZID=Europe/Berlin:{p.day(days):%Y%m%d}T090000"


def utc_z(moment: datetime) -> str:
    """A Graph `originalStart` (UTC, `Z`)."""
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z"


@pytest.fixture(autouse=True)
def linked(client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock) -> None:
    """An Outlook connection, not synced yet."""
    assert connect(client, auth, http, OUTLOOK).status_code == 200


def master() -> dict[str, Any]:
    """Mondays 09:00-09:30 Berlin, four times from p.MONDAY (days 0, 7, 14 and 21)."""
    return p.graph_master(
        SERIES,
        WEEKLY,
        p.graph_utc(p.local(0, 9)),
        p.graph_utc(p.local(0, 9, 30)),
        subject="Weekly sync",
    )


def occurrence(days: int) -> dict[str, Any]:
    """The series' occurrence `days` after its first Monday (0, 7, 14 or 21), 09:00 Berlin:
    its UTC time follows daylight saving time, as Graph's does."""
    start, end = p.graph_utc(p.local(days, 9)), p.graph_utc(p.local(days, 9, 30))
    return p.graph_occurrence(f"AAMkAD-occ-{days}=", SERIES, start, end, subject="Weekly sync")


# The second Monday's instance, moved to Tuesday 15:00-15:30 Berlin.
MOVED = p.graph_exception(
    "AAMkAD-exc-7=",
    SERIES,
    utc_z(p.local(7, 9)),
    p.graph_utc(p.local(8, 15)),
    p.graph_utc(p.local(8, 15, 30)),
    subject="Weekly sync (moved)",
)


def test_series_keeps_its_rule_moved_and_cancelled_instances(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask
) -> None:
    """View occurrences + the master read by id give one CRM series, its exception, EXDATEs."""
    single = p.graph_event("AAMkAD-single=", "Lunch")
    # The view: the first Monday, the second one's instance moved to Tuesday, the third Monday
    # cancelled (missing), the fourth Monday.
    serve(http, None, [occurrence(0), single, MOVED], [occurrence(21)], delta="D1")
    read = http.get(event_url(SERIES), json=master())

    assert counts(sync(client, auth)) == (3, 0, 0, 0)

    assert len(read.calls) == 1  # once per round, however many instances name it
    expand = parse_qs(urlsplit(read.calls[0].request.url).query)["$expand"]
    assert expand == [f"singleValueExtendedProperties($filter=id eq '{TAG}')"]
    events = crm_events(client, auth)
    assert set(events) == {SERIES, "AAMkAD-exc-7=", "AAMkAD-single="}
    series = events[SERIES]
    assert series["title"] == "Weekly sync" and series["timeZone"] == "Europe/Berlin"
    assert instant(series["start"]) == p.local(0, 9)
    rule, *excluded = series["recurrence"]
    assert rule.startswith("RRULE:") and {"FREQ=WEEKLY", "BYDAY=MO", "COUNT=4"} <= set(
        rule[6:].split(";")
    )
    assert excluded == [exdate(14)]
    moved = events["AAMkAD-exc-7="]
    assert moved["seriesId"] == series["id"] and moved["title"] == "Weekly sync (moved)"
    assert instant(moved["originalStart"]) == p.local(7, 9)
    assert instant(moved["start"]) == p.local(8, 15)
    assert moved["recurrence"] == []

    # Next round: the fourth Monday's occurrence is deleted in Outlook.
    serve(http, "D1", [p.graph_removed("AAMkAD-occ-21=")], delta="D2")
    read = http.get(event_url(SERIES), json=master())
    assert counts(sync(client, auth)) == (0, 1, 0, 0)
    assert crm_events(client, auth)[SERIES]["recurrence"][1:] == [exdate(14), exdate(21)]

    # Then the whole series: its instances leave the view (the moved one first), the master is
    # gone: one deletion of the series and its moved instance, no EXDATE on the way.
    gone = p.graph_error("ErrorItemNotFound", "The specified object was not found in the store.")
    removed = [p.graph_removed(MOVED["id"]), p.graph_removed("AAMkAD-occ-0=")]
    serve(http, "D2", removed, delta="D3")
    http.get(event_url(SERIES), json=gone, status=404)
    assert counts(sync(client, auth)) == (0, 0, 2, 0)
    assert set(crm_events(client, auth)) == {"AAMkAD-single="}
    with app.app_context():
        assert db.session.query(CalendarEvent).count() == 1


def test_crm_weekly_series_is_created_as_a_graph_series(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock
) -> None:
    """A CRM RRULE becomes Graph's recurrence pattern and range."""
    start, end = p.local(0, 9), p.local(0, 9, 15)  # Monday, Berlin
    series = {
        "title": "Stand-up",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "timeZone": "Europe/Berlin",
        "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6"],
    }
    created = client.post(EVENTS, json=series, headers=auth).json
    serve(http, None, [], delta="D1")
    recurrence = p.graph_weekly(["monday", "wednesday"], str(p.MONDAY), count=6)
    answer = p.graph_master(
        "AAMkAD-standup=", recurrence, p.graph_utc(start), p.graph_utc(end), subject="Stand-up"
    )
    insert = http.post(f"{p.GRAPH_CALENDAR_URL}/events", status=201, json=answer)

    assert counts(sync(client, auth)) == (0, 0, 0, 1)

    sent = body_of(insert)
    assert sent["start"] == {
        "dateTime": f"{p.MONDAY}T09:00:00",
        "timeZone": "W. Europe Standard Time",
    }
    assert sent["recurrence"]["pattern"] == {
        "type": "weekly",
        "interval": 1,
        "daysOfWeek": ["monday", "wednesday"],
        "firstDayOfWeek": "sunday",
    }
    assert sent["recurrence"]["range"] == {
        "type": "numbered",
        "numberOfOccurrences": 6,
        "startDate": str(p.MONDAY),
        "recurrenceTimeZone": "W. Europe Standard Time",
    }
    event = client.get(f"{EVENTS}/{created['id']}", headers=auth).json
    assert event["sources"] == {"OUTLOOK": "AAMkAD-standup="}
    assert event["recurrence"] == series["recurrence"]


def test_all_day_event_stays_all_day_both_ways(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock
) -> None:
    """`isAllDay` midnight-to-midnight keeps its dates, pulled and pushed."""
    # Two days off (Thursday and Friday), then a one-day offsite the Wednesday after.
    first, after = p.day(17), p.day(19)
    offsite_day, offsite_end = p.day(23), p.day(24)
    holiday = p.graph_event(
        "AAMkAD-holiday=",
        "Holidays",
        f"{first}T00:00:00.0000000",
        f"{after}T00:00:00.0000000",
        all_day=True,
    )
    serve(http, None, [holiday], delta="D1")
    offsite = {
        "title": "Offsite",
        "allDay": True,
        "startDate": str(offsite_day),
        "endDate": str(offsite_end),
    }
    created = client.post(EVENTS, json=offsite, headers=auth).json
    answer = p.graph_event(
        "AAMkAD-offsite=",
        "Offsite",
        f"{offsite_day}T00:00:00.0000000",
        f"{offsite_end}T00:00:00.0000000",
        all_day=True,
        original_zone="UTC",
    )
    insert = http.post(f"{p.GRAPH_CALENDAR_URL}/events", status=201, json=answer)

    assert counts(sync(client, auth)) == (1, 0, 0, 1)

    pulled = crm_events(client, auth)["AAMkAD-holiday="]
    assert pulled["allDay"] is True
    assert (pulled["startDate"], pulled["endDate"]) == (str(first), str(after))
    sent = body_of(insert)
    assert sent["isAllDay"] is True
    assert sent["start"] == {"dateTime": f"{offsite_day}T00:00:00", "timeZone": "UTC"}
    assert sent["end"] == {"dateTime": f"{offsite_end}T00:00:00", "timeZone": "UTC"}
    # Graph's copy coming back changes nothing.
    serve(http, "D1", [answer], delta="D2")
    assert counts(sync(client, auth)) == (0, 0, 0, 0)
    pushed = client.get(f"{EVENTS}/{created['id']}", headers=auth).json
    assert (pushed["allDay"], pushed["startDate"], pushed["endDate"]) == (
        True,
        str(offsite_day),
        str(offsite_end),
    )
    assert date.fromisoformat(pushed["endDate"]) > date.fromisoformat(pushed["startDate"])


def test_windows_zone_name_becomes_iana_and_goes_back(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock
) -> None:
    """`Pacific Standard Time` is `America/Los_Angeles` in the CRM, with the right instants."""
    # 09:00-10:00 in Los Angeles: 17:00 UTC under PST, 16:00 under PDT.
    start, end = (p.local(1, hour, zone=LOS_ANGELES) for hour in (9, 10))
    call = p.graph_event(
        "AAMkAD-pst=",
        "West coast call",
        p.graph_utc(start),
        p.graph_utc(end),
        original_zone="Pacific Standard Time",
    )
    serve(http, None, [call], delta="D1")
    assert counts(sync(client, auth)) == (1, 0, 0, 0)
    event = crm_events(client, auth)["AAMkAD-pst="]
    assert event["timeZone"] == "America/Los_Angeles"
    assert instant(event["start"]) == start
    assert instant(event["end"]) == end

    url = f"{EVENTS}/{event['id']}"
    later = {"start": p.local(1, 10, zone=LOS_ANGELES).isoformat()}
    later["end"] = p.local(1, 11, zone=LOS_ANGELES).isoformat()
    assert client.patch(url, json=later, headers=auth).status_code == 200
    serve(http, "D1", [], delta="D2")
    patch = http.patch(event_url("AAMkAD-pst="), json=call)
    assert counts(sync(client, auth)) == (0, 0, 0, 1)
    sent = body_of(patch)
    pacific = {"timeZone": "Pacific Standard Time"}  # Graph's name, daylight saving or not
    assert sent["start"] == {"dateTime": f"{p.day(1)}T10:00:00", **pacific}
    assert sent["end"] == {"dateTime": f"{p.day(1)}T11:00:00", **pacific}


def test_deleting_a_moved_instance_cancels_its_slot(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock
) -> None:
    """An exception `@removed` from the view deletes the CRM instance and excludes its slot."""
    serve(http, None, [occurrence(0), MOVED, occurrence(14), occurrence(21)], delta="D1")
    http.get(event_url(SERIES), json=master())
    assert counts(sync(client, auth)) == (2, 0, 0, 0)
    assert crm_events(client, auth)[SERIES]["recurrence"][1:] == []

    serve(http, "D1", [p.graph_removed(MOVED["id"])], delta="D2")
    http.get(event_url(SERIES), json=master())
    assert counts(sync(client, auth)) == (0, 1, 1, 0)

    events = crm_events(client, auth)
    assert set(events) == {SERIES}
    # Without the EXDATE the series would show the second Monday's meeting again at 09:00.
    assert events[SERIES]["recurrence"][1:] == [exdate(7)]


def test_series_gone_during_a_full_resync_is_deleted_once(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock
) -> None:
    """A series deleted while the delta link expired: the resync deletes it and its instance."""
    single = p.graph_event("AAMkAD-single=", "Lunch")
    serve(http, None, [occurrence(0), MOVED, occurrence(14), single], delta="D1")
    http.get(event_url(SERIES), json=master())
    assert counts(sync(client, auth)) == (3, 0, 0, 0)

    expired = p.graph_error("SyncStateNotFound", "The sync state generation is not found.")
    http.get(delta_link("D1"), status=410, json=expired)
    serve(http, None, [single], delta="D2")
    assert counts(sync(client, auth)) == (0, 0, 2, 0)
    assert set(crm_events(client, auth)) == {"AAMkAD-single="}


def add_crm_instance(app: Flask, series_id: int, days: int) -> int:
    """A changed instance of the series made in the CRM: the slot `days` in, at 15:00."""
    with app.app_context():
        instance = CalendarEvent(
            user_id="user-1",
            title="Weekly sync (changed)",
            start_at=p.local(days, 15),
            end_at=p.local(days, 15, 30),
            time_zone="Europe/Berlin",
            series_id=series_id,
            original_start_at=p.local(days, 9),
        )
        db.session.add(instance)
        db.session.commit()
        return instance.id


def test_deleting_a_crm_instance_deletes_its_outlook_occurrence(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask
) -> None:
    """Outlook has no EXDATE: a CRM instance deleted (its slot cancelled) deletes the occurrence
    Graph lists for that slot, once; the other occurrences stay."""
    serve(http, None, [occurrence(0), occurrence(7), occurrence(14), occurrence(21)], delta="D1")
    http.get(event_url(SERIES), json=master())
    assert counts(sync(client, auth)) == (1, 0, 0, 0)
    series = crm_events(client, auth)[SERIES]
    instance = add_crm_instance(app, series["id"], 7)

    assert client.delete(f"{EVENTS}/{instance}", headers=auth).status_code == 204
    serve(http, "D1", [], delta="D2")
    patch = http.patch(event_url(SERIES), json=master())
    deleted = http.delete(event_url("AAMkAD-occ-7="), status=204)
    assert counts(sync(client, auth)) == (0, 0, 0, 2)

    assert len(patch.calls) == 1 and len(deleted.calls) == 1
    assert "recurrence" in body_of(patch)
    events = crm_events(client, auth)
    assert set(events) == {SERIES}
    assert events[SERIES]["recurrence"][1:] == [exdate(7)]
    assert client.get(f"{EVENTS}/{instance}", headers=auth).status_code == 404
    # The next round finds nothing more to write.
    serve(http, "D2", [], delta="D3")
    assert counts(sync(client, auth)) == (0, 0, 0, 0)
