"""The CRM events API: create, read, list, change and delete a user's events."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient

from calendar_connections.extensions import db
from calendar_connections.models import CalendarEvent

from .support.connections import GOOGLE, OUTLOOK, connect
from .support.events import (
    BASE,
    T1,
    T2,
    WEEKLY,
    add_instance,
    all_day,
    create,
    link,
    row,
    row_count,
    timed,
    titles,
)
from .support.problems import assert_problem


def test_create_timed_event_and_read_it_back(
    client: FlaskClient, auth: dict[str, str], app: Flask
) -> None:
    body = timed(
        "Call with Ada",
        "2026-03-02T10:00:00+01:00",
        "2026-03-02T11:30:00+01:00",
        timeZone="Europe/Berlin",
        description="Quarterly review",
        location="Room 4",
    )
    response = client.post(BASE, json=body, headers=auth)

    assert response.status_code == 201, response.json
    event = response.json
    assert response.headers["Location"] == f"{BASE}/{event['id']}"
    assert event["start"] == "2026-03-02T09:00:00+00:00"
    assert event["end"] == "2026-03-02T10:30:00+00:00"
    assert (event["allDay"], event["startDate"], event["endDate"]) == (False, None, None)
    assert event["timeZone"] == "Europe/Berlin"
    assert (event["status"], event["recurrence"], event["sources"]) == ("confirmed", [], {})
    assert (event["seriesId"], event["originalStart"]) == (None, None)
    for name in ("createdAt", "updatedAt"):
        assert datetime.fromisoformat(event[name]).utcoffset() is not None
    assert client.get(f"{BASE}/{event['id']}", headers=auth).json == event
    stored = row(app, event["id"])
    assert stored is not None
    assert (stored.user_id, stored.origin, stored.version) == ("user-1", "CRM", 1)
    assert len(stored.uid) == 32
    utc = create(client, auth, timed("b", T1, T2))
    assert (utc["timeZone"], utc["start"]) == ("UTC", "2026-03-02T09:00:00+00:00")


def test_create_all_day_event(client: FlaskClient, auth: dict[str, str]) -> None:
    event = create(client, auth, all_day("Offsite", "2026-03-02", "2026-03-04"))
    assert (event["allDay"], event["startDate"], event["endDate"]) == (
        True,
        "2026-03-02",
        "2026-03-04",
    )
    assert (event["start"], event["end"], event["timeZone"]) == (None, None, None)
    assert client.get(f"{BASE}/{event['id']}", headers=auth).json == event


@pytest.mark.parametrize(
    "body",
    [
        timed("Standup", "2026-03-02T09:00:00Z", "2026-03-02T09:15:00Z", recurrence=WEEKLY),
        all_day("Gym", "2026-03-02", "2026-03-03", recurrence=["RRULE:FREQ=DAILY;COUNT=3"]),
    ],
    ids=["timed", "all-day"],
)
def test_create_recurring_series(
    client: FlaskClient, auth: dict[str, str], body: dict[str, Any]
) -> None:
    event = create(client, auth, {**body, "status": "tentative"})
    assert event["recurrence"] == body["recurrence"]
    assert event["status"] == "tentative"
    assert (
        client.get(f"{BASE}/{event['id']}", headers=auth).json["recurrence"] == body["recurrence"]
    )


INVALID = {
    "end-before-start": (timed("a", T2, T1), "end"),
    "end-equals-start": (timed("a", T1, T1), "end"),
    "all-day-end-not-after-start": (all_day("a", "2026-03-02", "2026-03-02"), "endDate"),
    "unknown-zone": (timed("a", T1, T2, timeZone="Mars/Olympus_Mons"), "timeZone"),
    "host-zone": (timed("a", T1, T2, timeZone="localtime"), "timeZone"),
    "bad-rrule": (timed("a", T1, T2, recurrence=["RRULE:FREQ=SOMETIMES"]), "recurrence"),
    "date-exdate-on-timed": (
        timed("a", T1, T2, recurrence=["RRULE:FREQ=DAILY", "EXDATE;VALUE=DATE:20260303"]),
        "recurrence",
    ),
    "not-a-line": (timed("a", T1, T2, recurrence=["weekly please"]), "recurrence"),
    "impossible-exdate": (
        timed("a", T1, T2, recurrence=["RRULE:FREQ=DAILY", "EXDATE:20260230T090000Z"]),
        "recurrence",
    ),
    "recurrence-not-a-list": (timed("a", T1, T2, recurrence="RRULE:FREQ=DAILY"), "recurrence"),
    "all-day-with-start": ({**all_day("a", "2026-03-02", "2026-03-03"), "start": T1}, "start"),
    "timed-with-start-date": (timed("a", T1, T2, startDate="2026-03-02"), "startDate"),
    "all-day-without-end-date": (
        {"title": "a", "allDay": True, "startDate": "2026-03-02"},
        "endDate",
    ),
    "timed-without-end": ({"title": "a", "start": T1}, "end"),
    "nothing-but-title": ({"title": "a"}, "start"),
    "unknown-status": (timed("a", T1, T2, status="cancelled"), "status"),
    "missing-title": ({"start": T1, "end": T2}, "title"),
    "empty-title": (timed("", T1, T2), "title"),
    "long-title": (timed("x" * 1025, T1, T2), "title"),
    "unknown-field": (timed("a", T1, T2, colour="red"), "colour"),
    "read-only-field": (timed("a", T1, T2, id=7), "id"),
    "start-without-offset": (timed("a", "2026-03-02T09:00:00", T2), "start"),
    "end-without-offset": (timed("a", T1, "2026-03-02T10:00:00"), "end"),
    "start-not-a-date-time": (timed("a", "next monday", T2), "start"),
    "start-out-of-range": (timed("a", "9999-12-31T23:00:00-05:00", T2), "start"),
    "all-day-null": ({**all_day("a", "2026-03-02", "2026-03-03"), "allDay": None}, "allDay"),
}


@pytest.mark.parametrize(("body", "field"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_events_are_422_problems_naming_the_field(
    client: FlaskClient, auth: dict[str, str], app: Flask, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(client.post(BASE, json=body, headers=auth), 422)
    assert problem["type"].endswith(":validation")
    assert field in problem["errors"]
    assert field in problem["detail"]
    assert row_count(app) == 0


@pytest.fixture
def week(client: FlaskClient, auth: dict[str, str]) -> None:
    """Events around 2026-03-02 (a Monday), created out of order; listed by initial."""
    for body in [
        timed("G after", "2026-03-04T10:00:00Z", "2026-03-04T11:00:00Z"),
        timed("B over midnight", "2026-03-02T23:30:00Z", "2026-03-03T00:30:00Z"),
        all_day("C next day", "2026-03-03", "2026-03-04"),
        timed("A morning", "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"),
        all_day("D day before", "2026-03-01", "2026-03-02"),
        timed("E series", "2026-02-02T09:00:00Z", "2026-02-02T10:00:00Z", recurrence=WEEKLY),
        timed("F later series", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z", recurrence=WEEKLY),
    ]:
        create(client, auth, body)


@pytest.mark.usefixtures("week")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, "EDABCGF"),
        # Dates are midnight UTC; bounds touching an event's end or start exclude it.
        ({"from": "2026-03-02", "to": "2026-03-03"}, "EAB"),
        ({"from": "2026-03-03T00:30:00+01:00", "to": "2026-03-03T02:00:00+01:00"}, "EBC"),
        ({"from": "2026-03-04"}, "EGF"),
        ({"to": "2026-03-02"}, "ED"),
        ({"from": "2026-05-01", "to": "2026-05-02"}, "EF"),
    ],
    ids=["all", "dates", "offsets", "from-only", "to-only", "only-series"],
)
def test_list_filters_by_window(
    client: FlaskClient, auth: dict[str, str], query: dict[str, str], expected: str
) -> None:
    listed = titles(client.get(BASE, query_string=query, headers=auth))
    assert "".join(title[0] for title in listed) == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-03-02T00:00:00"}, "query.from"),
        ({"to": "2026-03-02T00:00:00"}, "query.to"),
        ({"from": "tomorrow"}, "query.from"),
        ({"from": "2026-03-03", "to": "2026-03-02"}, "query.to"),
        ({"page_size": "101"}, "query.page_size"),
    ],
)
def test_bad_list_parameters_are_422(
    client: FlaskClient, auth: dict[str, str], query: dict[str, str], field: str
) -> None:
    problem = assert_problem(client.get(BASE, query_string=query, headers=auth), 422)
    assert field in problem["errors"]


def test_list_is_paged(client: FlaskClient, auth: dict[str, str]) -> None:
    for day in range(1, 6):
        create(client, auth, all_day(f"day {day}", f"2026-03-0{day}", f"2026-03-0{day + 1}"))

    first = client.get(BASE, query_string={"page_size": 2}, headers=auth)
    last = client.get(BASE, query_string={"page_size": 2, "page": 3}, headers=auth)

    assert titles(first) == ["day 1", "day 2"]
    assert titles(last) == ["day 5"]
    paging = json.loads(first.headers["X-Pagination"])
    assert (paging["total"], paging["total_pages"], paging["next_page"]) == (5, 3, 2)


def test_patch_changes_only_given_fields_and_bumps_version(
    client: FlaskClient, auth: dict[str, str], app: Flask
) -> None:
    event = create(client, auth, timed("a", T1, T2, location="Room 4", description="d"))
    path = f"{BASE}/{event['id']}"

    response = client.patch(path, json={"title": "b", "description": None}, headers=auth)

    assert response.status_code == 200, response.json
    changed = response.json
    assert (changed["title"], changed["description"], changed["location"]) == ("b", None, "Room 4")
    assert (changed["start"], changed["end"]) == (event["start"], event["end"])
    assert datetime.fromisoformat(changed["updatedAt"]) > datetime.fromisoformat(event["updatedAt"])
    stored = row(app, event["id"])
    assert stored is not None and stored.version == 2
    assert client.get(path, headers=auth).json == changed


@pytest.mark.parametrize(
    "patch",
    [{}, {"title": "a"}, {"start": "2026-03-02T10:00:00+01:00"}, {"recurrence": None}],
    ids=["empty", "same-title", "same-instant-other-offset", "no-recurrence"],
)
def test_patch_changing_nothing_does_not_touch(
    client: FlaskClient, auth: dict[str, str], app: Flask, patch: dict[str, Any]
) -> None:
    event = create(client, auth, timed("a", T1, T2))
    response = client.patch(f"{BASE}/{event['id']}", json=patch, headers=auth)
    assert response.status_code == 200, response.json
    assert response.json == event
    stored = row(app, event["id"])
    assert stored is not None and stored.version == 1


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"end": "2026-03-02T08:00:00Z"}, "end"),
        ({"startDate": "2026-03-02"}, "startDate"),
        ({"allDay": True}, "startDate"),
        ({"allDay": True, "startDate": "2026-03-02"}, "endDate"),
        ({"start": None}, "start"),
        ({"title": None}, "title"),
        ({"timeZone": "Europe/Nowhere"}, "timeZone"),
        ({"recurrence": ["EXDATE;VALUE=DATE:20260309"]}, "recurrence"),
        ({"start": "2026-03-02T09:30:00"}, "start"),
    ],
)
def test_patch_checks_the_merged_event(
    client: FlaskClient, auth: dict[str, str], app: Flask, patch: dict[str, Any], field: str
) -> None:
    event = create(client, auth, timed("a", T1, T2))
    problem = assert_problem(client.patch(f"{BASE}/{event['id']}", json=patch, headers=auth), 422)
    assert field in problem["errors"]
    assert client.get(f"{BASE}/{event['id']}", headers=auth).json == event
    stored = row(app, event["id"])
    assert stored is not None and stored.version == 1


def test_switch_between_timed_and_all_day(
    client: FlaskClient, auth: dict[str, str], app: Flask
) -> None:
    event = create(client, auth, timed("a", T1, T2, timeZone="Europe/Berlin"))
    path = f"{BASE}/{event['id']}"

    day = client.patch(
        path,
        json={"allDay": True, "startDate": "2026-03-02", "endDate": "2026-03-03"},
        headers=auth,
    ).json
    assert (day["allDay"], day["start"], day["end"]) == (True, None, None)
    assert (day["startDate"], day["endDate"]) == ("2026-03-02", "2026-03-03")

    back = client.patch(path, json={"allDay": False, "start": T1, "end": T2}, headers=auth).json
    assert (back["allDay"], back["startDate"], back["endDate"]) == (False, None, None)
    assert (back["start"], back["timeZone"]) == ("2026-03-02T09:00:00+00:00", "Europe/Berlin")
    stored = row(app, event["id"])
    assert stored is not None and stored.version == 3


def test_delete_unlinked_event_removes_the_row(
    client: FlaskClient, auth: dict[str, str], app: Flask
) -> None:
    event = create(client, auth, timed("a", T1, T2))
    path = f"{BASE}/{event['id']}"

    response = client.delete(path, headers=auth)

    assert (response.status_code, response.data) == (204, b"")
    assert row(app, event["id"]) is None
    assert_problem(client.get(path, headers=auth), 404)
    assert_problem(client.delete(path, headers=auth), 404)


def test_linked_event_shows_sources_and_is_kept_as_a_tombstone(
    client: FlaskClient, auth: dict[str, str], app: Flask, http: responses.RequestsMock
) -> None:
    assert connect(client, auth, http, GOOGLE).status_code == 200
    assert connect(client, auth, http, OUTLOOK).status_code == 200
    event = create(client, auth, timed("a", T1, T2))
    path = f"{BASE}/{event['id']}"
    link(app, event["id"], GOOGLE, "g-123")
    link(app, event["id"], OUTLOOK, "AAMk-occ", kind="occurrence")
    assert client.get(path, headers=auth).json["sources"] == {"GOOGLE": "g-123"}
    link(app, event["id"], OUTLOOK, "AAMk-1")
    assert client.get(BASE, headers=auth).json[0]["sources"] == {
        "GOOGLE": "g-123",
        "OUTLOOK": "AAMk-1",
    }

    assert client.delete(path, headers=auth).status_code == 204

    stored = row(app, event["id"])
    assert stored is not None and stored.deleted_at is not None and stored.version == 2
    for method in ("GET", "PATCH", "DELETE"):
        assert_problem(client.open(path, method=method, json={}, headers=auth), 404)
    assert client.get(BASE, headers=auth).json == []


def test_deleting_a_series_deletes_its_instances(
    client: FlaskClient, auth: dict[str, str], app: Flask, http: responses.RequestsMock
) -> None:
    assert connect(client, auth, http, GOOGLE).status_code == 200
    series = create(client, auth, timed("s", T1, T2, recurrence=WEEKLY))
    plain = add_instance(app, series["id"], datetime(2026, 3, 16, 9, tzinfo=UTC))
    linked = add_instance(app, series["id"], datetime(2026, 3, 23, 9, tzinfo=UTC))
    link(app, linked, GOOGLE, "g-series_20260323T090000Z")
    instance = client.get(f"{BASE}/{plain}", headers=auth).json
    assert (instance["seriesId"], instance["originalStart"]) == (
        series["id"],
        "2026-03-16T09:00:00+00:00",
    )
    assert_problem(client.patch(f"{BASE}/{plain}", json={"recurrence": WEEKLY}, headers=auth), 422)

    assert client.delete(f"{BASE}/{series['id']}", headers=auth).status_code == 204

    # With a calendar connected every delete is a tombstone: a sync may be pushing the event.
    unlinked = row(app, plain)
    assert unlinked is not None and unlinked.deleted_at is not None
    kept = row(app, linked)
    assert kept is not None and kept.deleted_at is not None
    # The series row stays while its instance's tombstone does (series_id cascades).
    series_row = row(app, series["id"])
    assert series_row is not None and series_row.deleted_at is not None
    assert client.get(BASE, headers=auth).json == []


def test_deleting_a_moved_instance_cancels_its_occurrence(
    client: FlaskClient, auth: dict[str, str], app: Flask
) -> None:
    series = create(client, auth, timed("s", T1, T2, recurrence=WEEKLY))
    instance = add_instance(app, series["id"], datetime(2026, 3, 16, 9, tzinfo=UTC))
    to_all_day = all_day("s", "2026-03-02", "2026-03-03", recurrence=WEEKLY[:1])
    del to_all_day["title"]
    problem = assert_problem(
        client.patch(f"{BASE}/{series['id']}", json=to_all_day, headers=auth), 422
    )
    assert "allDay" in problem["errors"]

    assert client.delete(f"{BASE}/{instance}", headers=auth).status_code == 204

    changed = client.get(f"{BASE}/{series['id']}", headers=auth).json
    assert changed["recurrence"] == [*WEEKLY, "EXDATE:20260316T090000Z"]
    stored = row(app, series["id"])
    assert stored is not None and stored.version == 2
    assert row(app, instance) is None


def test_deleting_an_unlinked_series_removes_every_row(
    client: FlaskClient, auth: dict[str, str], app: Flask
) -> None:
    series = create(client, auth, all_day("s", "2026-03-02", "2026-03-03", recurrence=WEEKLY[:1]))
    with app.app_context():
        db.session.add(
            CalendarEvent(
                user_id="user-1",
                all_day=True,
                start_date=date(2026, 3, 10),
                end_date=date(2026, 3, 11),
                series_id=series["id"],
                original_start_date=date(2026, 3, 9),
            )
        )
        db.session.commit()
    instance = client.get(BASE, headers=auth).json[1]
    assert instance["originalStart"] == "2026-03-09"

    assert client.delete(f"{BASE}/{series['id']}", headers=auth).status_code == 204

    assert row_count(app) == 0


def test_other_users_events_are_404_and_never_listed(
    client: FlaskClient,
    auth: dict[str, str],
    token_for: Callable[[str], dict[str, str]],
    app: Flask,
) -> None:
    event = create(client, auth, timed("mine", T1, T2))
    other = token_for("user-2")
    missing = assert_problem(client.get(f"{BASE}/999999", headers=other), 404)
    for method in ("GET", "PATCH", "DELETE"):
        response = client.open(
            f"{BASE}/{event['id']}", method=method, json={"title": "x"}, headers=other
        )
        problem = assert_problem(response, 404)
        assert (problem["type"], problem["title"]) == (missing["type"], missing["title"])
        assert str(event["id"]) in problem["detail"] and "mine" not in problem["detail"]
    assert client.get(BASE, headers=other).json == []
    assert json.loads(client.get(BASE, headers=other).headers["X-Pagination"])["total"] == 0
    assert client.get(f"{BASE}/{event['id']}", headers=auth).json == event


def test_id_beyond_the_integer_range_is_404(client: FlaskClient, auth: dict[str, str]) -> None:
    assert_problem(client.get(f"{BASE}/99999999999999999999", headers=auth), 404)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", BASE, None),
        ("GET", f"{BASE}?from=not-a-date", None),
        ("POST", BASE, {"title": ""}),
        ("GET", f"{BASE}/1", None),
        ("PATCH", f"{BASE}/1", {"colour": "red"}),
        ("DELETE", f"{BASE}/1", None),
    ],
)
def test_no_token_is_401_before_any_validation(
    client: FlaskClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = client.open(path, method=method, json=body)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
