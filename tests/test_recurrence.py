"""RFC 5545 recurrence lines: validation, EXDATEs, expansion and the Microsoft Graph mapping."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calendar_connections.ical import recurrence
from calendar_connections.ical.recurrence import (
    MAX_OCCURRENCES,
    exdates,
    occurrences,
    split_recurrence,
    validate_recurrence,
    with_exdate,
)
from calendar_connections.ical.rrule import RecurrenceError, canonical_rrule
from calendar_connections.providers.outlook.recurrence import graph_to_rrule, rrule_to_graph

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
# Monday 7 December 2026, 10:00 in Berlin (09:00 UTC).
START = datetime(2026, 12, 7, 10, tzinfo=BERLIN)
WEEKLY = ["RRULE:FREQ=WEEKLY;BYDAY=MO"]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def window(days: int = 60, start: datetime = START) -> tuple[datetime, datetime]:
    return start - timedelta(days=1), start + timedelta(days=days)


# --- split_recurrence / exdates -------------------------------------------------------------


def test_split_recurrence_keeps_order() -> None:
    lines = [
        "RRULE:FREQ=WEEKLY;BYDAY=MO",
        "EXDATE;TZID=Europe/Berlin:20261207T100000",
        "RDATE:20261209T090000Z",
        "exdate:20261214T090000Z",
    ]
    assert split_recurrence(lines) == (
        ["RRULE:FREQ=WEEKLY;BYDAY=MO", "RDATE:20261209T090000Z"],
        ["EXDATE;TZID=Europe/Berlin:20261207T100000", "exdate:20261214T090000Z"],
    )


def test_exdates_parses_every_form() -> None:
    lines = [
        "RRULE:FREQ=WEEKLY;BYDAY=MO",
        "EXDATE;TZID=Europe/Berlin:20261207T100000,20261214T100000",
        "EXDATE:20261221T090000Z",
        "EXDATE;VALUE=DATE:20261228",
        "EXDATE:20270104T100000",
        'EXDATE;TZID="W. Europe Standard Time":20270111T100000',
    ]
    assert exdates(lines, "America/New_York") == [
        datetime(2026, 12, 7, 10, tzinfo=BERLIN),
        datetime(2026, 12, 14, 10, tzinfo=BERLIN),
        utc(2026, 12, 21, 9),
        date(2026, 12, 28),
        # Floating values are read in the default zone.
        datetime(2027, 1, 4, 10, tzinfo=NEW_YORK),
        datetime(2027, 1, 11, 10, tzinfo=BERLIN),
    ]


def test_exdates_floating_without_default_zone_is_utc() -> None:
    assert exdates(["EXDATE:20261207T100000"], None) == [utc(2026, 12, 7, 10)]


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("EXDATE:2026-12-07", "2026-12-07"),
        ("EXDATE;TZID=Mars/Olympus:20261207T100000", "Mars/Olympus"),
        ("EXDATE;VALUE=DATE:20261207T100000", "20261207T100000"),
        ("EXDATE;TZID=Europe/Berlin:20261207T100000Z", "UTC"),
        ("EXDATE;VALUE=PERIOD:20261207T100000Z/PT1H", "PERIOD"),
        ("EXDATE", "NAME:VALUE"),
    ],
)
def test_exdates_rejects_bad_values(line: str, fragment: str) -> None:
    with pytest.raises(RecurrenceError, match=fragment):
        exdates([line], None)


# --- validate_recurrence --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "start"),
    [
        ([], START),
        (WEEKLY, START),
        (
            [
                "RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20270301T225959Z",
                "EXDATE;TZID=Europe/Berlin:20261214T100000",
                "EXDATE:20261221T090000Z,20261228T090000Z",
                "RDATE;TZID=Europe/Berlin:20261209T100000",
            ],
            START,
        ),
        (["RRULE:FREQ=DAILY;COUNT=3", "EXDATE;VALUE=DATE:20261208"], date(2026, 12, 7)),
        (["RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO"], START),  # rare, but it occurs
        (["RRULE:FREQ=DAILY;INTERVAL=7;BYDAY=MO"], START),  # START is a Monday
        # A bare-date UNTIL on a timed series is read as "through that day".
        (["RRULE:FREQ=DAILY;UNTIL=20270101"], START),
        (["RRULE:FREQ=DAILY;UNTIL=20270101T000000Z"], date(2026, 12, 7)),
    ],
)
def test_validate_accepts_good_recurrences(lines: list[str], start: datetime | date) -> None:
    validate_recurrence(lines, start)


@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        (["EXRULE:FREQ=DAILY"], "EXRULE"),
        (["DTSTART:20261207T100000Z"], "DTSTART"),
        (["FREQ=DAILY"], "NAME:VALUE"),
        (["RRULE:FREQ=SOMETIMES"], "FREQ"),
        (["RRULE:INTERVAL=2"], "FREQ"),
        (["RRULE:FREQ=DAILY;FOO=1"], "FOO"),
        (["RRULE:FREQ=DAILY;INTERVAL=0"], "INTERVAL"),
        (["RRULE:FREQ=DAILY;INTERVAL=x"], "INTERVAL"),
        (["RRULE:FREQ=YEARLY;BYMONTH=13"], "BYMONTH"),
        (["RRULE:FREQ=MONTHLY;BYMONTHDAY=32"], "BYMONTHDAY"),
        (["RRULE:FREQ=WEEKLY;BYDAY=XX"], "BYDAY"),
        (["RRULE:FREQ=MONTHLY;BYDAY=0MO"], "BYDAY"),
        (["RRULE:FREQ=WEEKLY;WKST=XX"], "WKST"),
        (["RRULE:FREQ=DAILY;UNTIL=tomorrow"], "UNTIL"),
        (["RRULE:FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z"], "COUNT and UNTIL"),
        (["RRULE:FREQ=DAILY;FREQ=WEEKLY"], "FREQ more than once"),
        (["RRULE:FREQ=DAILY", "RRULE:FREQ=WEEKLY"], "one RRULE"),
        ([*WEEKLY, "EXDATE:yesterday"], "YESTERDAY"),
        ([*WEEKLY, "EXDATE;VALUE=DATE:20261214"], "date value; the event is timed"),
        ([*WEEKLY, "RDATE;VALUE=DATE:20261214"], "RDATE"),
        # Rules no provider can take.
        (["RRULE:FREQ=HOURLY;INTERVAL=6"], "FREQ=HOURLY cannot be synced"),
        (["RRULE:FREQ=MINUTELY"], "FREQ=MINUTELY cannot be synced"),
        (["RRULE:FREQ=YEARLY;BYEASTER=0"], "BYEASTER"),
        # Rules that never occur.
        (["RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"], "never occurs"),
        (["RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"], "never occurs"),
        (["RRULE:FREQ=MONTHLY;BYMONTH=4;BYMONTHDAY=31"], "never occurs"),
        (["RRULE:FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2"], "never occurs"),
        (["RRULE:FREQ=DAILY;INTERVAL=7;BYDAY=TU"], "never occurs"),
        (["RRULE:FREQ=DAILY;INTERVAL=999983;BYMONTH=2;BYMONTHDAY=30"], "never occurs"),
        (["RRULE:FREQ=DAILY;UNTIL=20200101T000000Z"], "before its first occurrence"),
    ],
)
def test_validate_rejects_with_a_message_naming_the_problem(
    lines: list[str], fragment: str
) -> None:
    with pytest.raises(RecurrenceError, match=fragment):
        validate_recurrence(lines, START)


def test_a_rule_that_never_occurs_is_searched_from_near_the_end_of_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dateutil would search a 30 February until the year 9999 (seconds of CPU): the check
    searches the same rule from a start moved by whole 400-year cycles, at most two cycles."""
    starts: list[datetime] = []
    real = recurrence._dateutil_set

    def recording(rule: Any, dtstart: datetime) -> Any:
        starts.append(dtstart)
        return real(rule, dtstart)

    monkeypatch.setattr(recurrence, "_dateutil_set", recording)
    recurrence._never_occurs_from.cache_clear()
    lines = ["RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"]
    with pytest.raises(RecurrenceError, match="never occurs"):
        validate_recurrence(lines, START)
    moved = [start for start in starts if start.year > START.year]
    assert len(moved) == 1 and 9999 - 800 < moved[0].year <= 9999 - 400
    assert (moved[0].year - START.year) % 400 == 0
    assert moved[0].replace(year=START.year) == START
    # Expanding it (reconciliation) knows it never occurs without searching again.
    starts.clear()
    window = (START, START + timedelta(days=400))
    assert occurrences(lines, START, "Europe/Berlin", *window) == []
    assert all(start.year == START.year for start in starts)


def test_validate_rejects_timed_exdate_on_all_day_event() -> None:
    lines = ["RRULE:FREQ=DAILY", "EXDATE:20261208T090000Z"]
    with pytest.raises(RecurrenceError, match="date-time value; the event is all-day"):
        validate_recurrence(lines, date(2026, 12, 7))


def test_recurrence_error_is_a_value_error() -> None:
    assert issubclass(RecurrenceError, ValueError)


# --- with_exdate ----------------------------------------------------------------------------


def test_with_exdate_timed_uses_the_event_zone_and_is_idempotent() -> None:
    lines = [*WEEKLY, "RDATE:20261209T090000Z"]
    once = with_exdate(lines, utc(2026, 12, 14, 9), "Europe/Berlin")
    assert once == [*lines, "EXDATE;TZID=Europe/Berlin:20261214T100000"]
    assert with_exdate(once, datetime(2026, 12, 14, 10, tzinfo=BERLIN), "Europe/Berlin") == once
    assert lines == [*WEEKLY, "RDATE:20261209T090000Z"]  # the input is not mutated


def test_with_exdate_recognises_the_same_instant_in_another_form() -> None:
    lines = [*WEEKLY, "EXDATE:20261214T090000Z"]
    assert with_exdate(lines, datetime(2026, 12, 14, 10, tzinfo=BERLIN), "Europe/Berlin") == lines


@pytest.mark.parametrize("zone", [None, "UTC", "Etc/UTC", "tzone://Microsoft/Utc"])
def test_with_exdate_utc_form(zone: str | None) -> None:
    lines = with_exdate(WEEKLY, datetime(2026, 12, 14, 10, tzinfo=BERLIN), zone)
    assert lines == [*WEEKLY, "EXDATE:20261214T090000Z"]
    assert with_exdate(lines, utc(2026, 12, 14, 9), zone) == lines


def test_with_exdate_windows_zone_is_written_as_iana() -> None:
    lines = with_exdate(WEEKLY, utc(2026, 12, 14, 9), "W. Europe Standard Time")
    assert lines[-1] == "EXDATE;TZID=Europe/Berlin:20261214T100000"


def test_with_exdate_all_day_and_idempotent() -> None:
    lines = ["RRULE:FREQ=DAILY", "EXDATE;VALUE=DATE:20261208"]
    once = with_exdate(lines, date(2026, 12, 9), None)
    assert once == [*lines, "EXDATE;VALUE=DATE:20261209"]
    assert with_exdate(once, date(2026, 12, 9), None) == once
    assert with_exdate(once, date(2026, 12, 8), "Europe/Berlin") == once


# --- occurrences ----------------------------------------------------------------------------


def test_weekly_series_stays_at_local_time_across_dst() -> None:
    start = datetime(2026, 10, 19, 10, tzinfo=BERLIN)
    found = occurrences(WEEKLY, start, "Europe/Berlin", *window(15, start))
    assert found == [start, start + timedelta(days=7), start + timedelta(days=14)]
    assert all(isinstance(o, datetime) and o.hour == 10 for o in found)
    # 26 October 2026 is after the switch to winter time: 10:00 local is 09:00 UTC, not 08:00.
    assert [o.astimezone(UTC).hour for o in found if isinstance(o, datetime)] == [8, 9, 9]


def test_series_expands_in_the_event_zone_not_the_start_offset() -> None:
    # The start arrives in UTC; the series is "Mondays 10:00 Berlin" all the same.
    start = utc(2027, 3, 22, 9)
    found = occurrences(WEEKLY, start, "Europe/Berlin", *window(7, start))
    assert found == [
        datetime(2027, 3, 22, 10, tzinfo=BERLIN),
        datetime(2027, 3, 29, 10, tzinfo=BERLIN),
    ]


def test_occurrences_honours_exdates_in_every_form_and_rdates() -> None:
    lines = [
        *WEEKLY,
        "EXDATE;TZID=Europe/Berlin:20261214T100000",
        "EXDATE:20261221T090000Z",
        "EXDATE;VALUE=DATE:20261228",
        "RDATE;TZID=Europe/Berlin:20261230T150000",
    ]
    found = occurrences(lines, START, "Europe/Berlin", *window(36))
    assert found == [
        START,
        datetime(2026, 12, 30, 15, tzinfo=BERLIN),
        datetime(2027, 1, 4, 10, tzinfo=BERLIN),
        datetime(2027, 1, 11, 10, tzinfo=BERLIN),
    ]


def test_occurrences_window_is_half_open() -> None:
    found = occurrences(WEEKLY, START, "Europe/Berlin", START, START + timedelta(days=14))
    assert found == [START, START + timedelta(days=7)]


def test_occurrences_count_and_until() -> None:
    counted = ["RRULE:FREQ=DAILY;COUNT=3"]
    assert len(occurrences(counted, START, "Europe/Berlin", *window())) == 3
    # UNTIL is inclusive: 14 December 10:00 Berlin is exactly 09:00 UTC.
    until = ["RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20261214T090000Z"]
    assert occurrences(until, START, "Europe/Berlin", *window()) == [START, START + timedelta(7)]


def test_all_day_series_returns_dates_and_honours_exdates() -> None:
    lines = ["RRULE:FREQ=WEEKLY;BYDAY=MO,FR;COUNT=6", "EXDATE;VALUE=DATE:20261211"]
    found = occurrences(lines, date(2026, 12, 7), None, utc(2026, 12, 1), utc(2027, 2, 1))
    # COUNT counts the excluded 11 December too (RFC 5545), so six become five.
    assert found == [
        date(2026, 12, 7),
        date(2026, 12, 14),
        date(2026, 12, 18),
        date(2026, 12, 21),
        date(2026, 12, 25),
    ]
    assert all(type(o) is date for o in found)


def test_all_day_window_is_compared_by_date_in_the_event_zone() -> None:
    lines = ["RRULE:FREQ=DAILY"]
    # 23:00 UTC on the 7th is already the 8th in Berlin.
    found = occurrences(
        lines, date(2026, 12, 1), "Europe/Berlin", utc(2026, 12, 7, 23), utc(2026, 12, 10)
    )
    assert found == [date(2026, 12, 8), date(2026, 12, 9)]


def test_occurrences_without_rrule_are_the_rdates() -> None:
    lines = ["RDATE:20261209T090000Z,20261210T090000Z"]
    assert occurrences(lines, START, "Europe/Berlin", *window()) == [
        datetime(2026, 12, 9, 10, tzinfo=BERLIN),
        datetime(2026, 12, 10, 10, tzinfo=BERLIN),
    ]


def test_endless_rule_is_bounded() -> None:
    found = occurrences(["RRULE:FREQ=DAILY"], START, "UTC", START, START + timedelta(days=100_000))
    assert len(found) == MAX_OCCURRENCES


def test_timed_series_needs_aware_window() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        occurrences(WEEKLY, START, "Europe/Berlin", datetime(2026, 12, 1), datetime(2027, 1, 1))


# --- canonical_rrule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "RRULE:UNTIL=20270301T225959Z;BYDAY=WE,MO;WKST=MO;INTERVAL=1;FREQ=WEEKLY",
            "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20270301T225959Z",
        ),
        ("freq=monthly;byday=+1mo", "RRULE:FREQ=MONTHLY;BYDAY=1MO"),
        ("RRULE:FREQ=MONTHLY;BYSETPOS=-1;BYDAY=FR", "RRULE:FREQ=MONTHLY;BYDAY=-1FR"),
        (
            "RRULE:FREQ=YEARLY;BYDAY=TH;BYSETPOS=4;BYMONTH=11",
            "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH",
        ),
        # Two months: BYSETPOS counts across both, so it cannot become an ordinal.
        (
            "RRULE:FREQ=YEARLY;BYMONTH=6,3;BYDAY=MO;BYSETPOS=2",
            "RRULE:FREQ=YEARLY;BYMONTH=3,6;BYDAY=MO;BYSETPOS=2",
        ),
        ("RRULE:FREQ=WEEKLY;WKST=SU;BYDAY=MO", "RRULE:FREQ=WEEKLY;BYDAY=MO"),
        (
            "RRULE:FREQ=WEEKLY;INTERVAL=2;WKST=SU;BYDAY=MO",
            "RRULE:FREQ=WEEKLY;INTERVAL=2;WKST=SU;BYDAY=MO",
        ),
        ("RRULE:FREQ=WEEKLY;INTERVAL=2;WKST=MO;BYDAY=MO", "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO"),
        (
            "RRULE:COUNT=5;BYMONTHDAY=15,1;FREQ=MONTHLY",
            "RRULE:FREQ=MONTHLY;BYMONTHDAY=1,15;COUNT=5",
        ),
        ("RRULE:BYHOUR=9,17;FREQ=DAILY", "RRULE:FREQ=DAILY;BYHOUR=9,17"),
        ("RRULE:FREQ=DAILY;COUNT=3;", "RRULE:FREQ=DAILY;COUNT=3"),
    ],
)
def test_canonical_rrule(line: str, expected: str) -> None:
    assert canonical_rrule(line) == expected
    assert canonical_rrule(expected) == expected


def test_canonical_rrule_rejects_garbage() -> None:
    with pytest.raises(RecurrenceError, match="FREQ"):
        canonical_rrule("RRULE:BYDAY=MO")


# --- RRULE -> Graph -------------------------------------------------------------------------


def graph(line: str, start: datetime | date = START, zone: str | None = "Europe/Berlin") -> Any:
    return rrule_to_graph([line], start, zone)


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("RRULE:FREQ=DAILY;INTERVAL=2", {"type": "daily", "interval": 2}),
        (
            "RRULE:FREQ=WEEKLY;BYDAY=FR,MO,WE",
            {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday", "friday"]},
        ),
        # Without BYDAY a weekly rule repeats on the start's weekday (a Monday).
        ("RRULE:FREQ=WEEKLY", {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]}),
        # Every day on some weekdays is weekly on those weekdays.
        (
            "RRULE:FREQ=DAILY;BYDAY=SA,SU",
            {"type": "weekly", "interval": 1, "daysOfWeek": ["saturday", "sunday"]},
        ),
        (
            "RRULE:FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=15",
            {"type": "absoluteMonthly", "interval": 3, "dayOfMonth": 15},
        ),
        ("RRULE:FREQ=MONTHLY", {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 7}),
        (
            "RRULE:FREQ=MONTHLY;BYDAY=2TU",
            {
                "type": "relativeMonthly",
                "interval": 1,
                "daysOfWeek": ["tuesday"],
                "index": "second",
            },
        ),
        (
            "RRULE:FREQ=MONTHLY;BYDAY=-1FR",
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
        ),
        (
            "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
            {
                "type": "relativeMonthly",
                "interval": 1,
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "index": "last",
            },
        ),
        (
            "RRULE:FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=15",
            {"type": "absoluteYearly", "interval": 1, "month": 3, "dayOfMonth": 15},
        ),
        (
            "RRULE:FREQ=YEARLY",
            {"type": "absoluteYearly", "interval": 1, "month": 12, "dayOfMonth": 7},
        ),
        (
            "RRULE:FREQ=YEARLY;INTERVAL=2;BYMONTH=11;BYDAY=4TH",
            {
                "type": "relativeYearly",
                "interval": 2,
                "month": 11,
                "daysOfWeek": ["thursday"],
                "index": "fourth",
            },
        ),
    ],
)
def test_rrule_to_graph_patterns(line: str, pattern: dict[str, Any]) -> None:
    result = graph(line)["pattern"]
    assert result == {"firstDayOfWeek": "sunday", **pattern}


@pytest.mark.parametrize(
    ("line", "first_day"),
    [
        ("RRULE:FREQ=WEEKLY;BYDAY=MO,SU", "sunday"),  # week start is irrelevant every week
        ("RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU", "monday"),  # RFC 5545 default WKST=MO
        ("RRULE:FREQ=WEEKLY;INTERVAL=2;WKST=SU;BYDAY=MO,SU", "sunday"),
        ("RRULE:FREQ=WEEKLY;INTERVAL=2;WKST=TU;BYDAY=MO,SU", "tuesday"),
    ],
)
def test_rrule_to_graph_first_day_of_week(line: str, first_day: str) -> None:
    assert graph(line)["pattern"]["firstDayOfWeek"] == first_day


def test_rrule_to_graph_ranges() -> None:
    assert graph("RRULE:FREQ=DAILY")["range"] == {
        "type": "noEnd",
        "startDate": "2026-12-07",
        "recurrenceTimeZone": "W. Europe Standard Time",
    }
    assert graph("RRULE:FREQ=DAILY;COUNT=10")["range"] == {
        "type": "numbered",
        "startDate": "2026-12-07",
        "numberOfOccurrences": 10,
        "recurrenceTimeZone": "W. Europe Standard Time",
    }
    until = graph("RRULE:FREQ=DAILY;UNTIL=20270301T225959Z")["range"]
    assert until["type"] == "endDate" and until["endDate"] == "2027-03-01"
    assert graph("RRULE:FREQ=DAILY;UNTIL=20270301")["range"]["endDate"] == "2027-03-01"


def test_rrule_to_graph_until_is_the_local_date_of_the_last_occurrence() -> None:
    evening = datetime(2026, 12, 7, 23, 30, tzinfo=NEW_YORK)
    # 04:30 UTC on 2 March is 23:30 on 1 March in New York: the last occurrence is on 1 March.
    line = "RRULE:FREQ=DAILY;UNTIL=20270302T043000Z"
    assert graph(line, evening, "America/New_York")["range"]["endDate"] == "2027-03-01"
    # One second earlier and 1 March's 23:30 occurrence is excluded too.
    line = "RRULE:FREQ=DAILY;UNTIL=20270302T042959Z"
    assert graph(line, evening, "America/New_York")["range"]["endDate"] == "2027-02-28"


def test_rrule_to_graph_start_date_is_local() -> None:
    # 23:30 UTC on 6 December is already 7 December in Berlin.
    result = graph("RRULE:FREQ=WEEKLY", utc(2026, 12, 6, 23, 30))
    assert result["range"]["startDate"] == "2026-12-07"
    assert result["pattern"]["daysOfWeek"] == ["monday"]


def test_rrule_to_graph_without_known_zone_omits_recurrence_time_zone() -> None:
    for zone in (None, "Customized Time Zone"):
        assert (
            "recurrenceTimeZone"
            not in graph("RRULE:FREQ=DAILY", utc(2026, 12, 7, 9), zone)["range"]
        )


def test_rrule_to_graph_all_day() -> None:
    result = graph("RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20270301", date(2026, 12, 7), None)
    assert result == {
        "pattern": {
            "type": "weekly",
            "interval": 1,
            "firstDayOfWeek": "sunday",
            "daysOfWeek": ["monday"],
        },
        "range": {"type": "endDate", "startDate": "2026-12-07", "endDate": "2027-03-01"},
    }


def test_rrule_to_graph_ignores_exdates() -> None:
    lines = [*WEEKLY, "EXDATE;TZID=Europe/Berlin:20261214T100000"]
    assert rrule_to_graph(lines, START, "Europe/Berlin") == graph(WEEKLY[0])


@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        (["RRULE:FREQ=HOURLY"], "HOURLY"),
        (["RRULE:FREQ=MINUTELY;INTERVAL=15"], "MINUTELY"),
        (["RRULE:FREQ=SECONDLY"], "SECONDLY"),
        ([*WEEKLY, "RDATE:20261209T090000Z"], "RDATE"),
        (["EXDATE:20261209T090000Z"], "RRULE"),
        (["RRULE:FREQ=DAILY;BYHOUR=9"], "BYHOUR"),
        (["RRULE:FREQ=YEARLY;BYWEEKNO=20"], "BYWEEKNO"),
        (["RRULE:FREQ=WEEKLY;BYDAY=1MO"], "ordinals"),
        (["RRULE:FREQ=DAILY;INTERVAL=2;BYDAY=MO"], "INTERVAL and BYDAY"),
        (["RRULE:FREQ=WEEKLY;BYMONTHDAY=1"], "BYMONTHDAY"),
        (["RRULE:FREQ=MONTHLY;BYMONTHDAY=1,15"], "BYMONTHDAY"),
        (["RRULE:FREQ=MONTHLY;BYMONTHDAY=-1"], "BYMONTHDAY"),
        (["RRULE:FREQ=MONTHLY;BYMONTH=1;BYMONTHDAY=1"], "BYMONTH"),
        (["RRULE:FREQ=MONTHLY;BYDAY=MO"], "BYSETPOS"),
        (["RRULE:FREQ=MONTHLY;BYDAY=1MO,2TU"], "several days"),
        (["RRULE:FREQ=MONTHLY;BYDAY=1MO,1TU"], "several days"),
        (["RRULE:FREQ=MONTHLY;BYDAY=MO,TU;BYSETPOS=1,2"], "BYSETPOS"),
        (["RRULE:FREQ=MONTHLY;BYDAY=5MO"], "position 5"),
        (["RRULE:FREQ=MONTHLY;BYDAY=-2MO"], "position -2"),
        (["RRULE:FREQ=MONTHLY;BYDAY=MO;BYSETPOS=3;BYMONTHDAY=1"], "BYMONTHDAY together with BYDAY"),
        (["RRULE:FREQ=MONTHLY;BYSETPOS=1"], "BYSETPOS without BYDAY"),
        (["RRULE:FREQ=YEARLY;BYMONTH=1,7"], "BYMONTH"),
        (["RRULE:FREQ=YEARLY;BYDAY=1MO"], "BYMONTH"),
        (["RRULE:FREQ=YEARLY;BYMONTHDAY=1"], "BYMONTH"),
    ],
)
def test_rrule_to_graph_rejects_what_graph_cannot_express(lines: list[str], fragment: str) -> None:
    with pytest.raises(RecurrenceError, match=fragment):
        rrule_to_graph(lines, START, "Europe/Berlin")


# --- Graph -> RRULE -------------------------------------------------------------------------


def graph_resource(pattern: dict[str, Any], **series: Any) -> dict[str, Any]:
    """A recurrence as Graph returns it: unused numbers 0, index "first", every field present."""
    full_pattern = {
        "type": "daily",
        "interval": 1,
        "month": 0,
        "dayOfMonth": 0,
        "daysOfWeek": [],
        "firstDayOfWeek": "sunday",
        "index": "first",
        **pattern,
    }
    full_range = {
        "type": "noEnd",
        "startDate": "2026-12-07",
        "endDate": "0001-01-01",
        "recurrenceTimeZone": "W. Europe Standard Time",
        "numberOfOccurrences": 0,
        **series,
    }
    return {"pattern": full_pattern, "range": full_range}


def test_graph_to_rrule_documented_example() -> None:
    recurrence = {
        "pattern": {
            "type": "weekly",
            "interval": 1,
            "month": 0,
            "dayOfMonth": 0,
            "daysOfWeek": ["monday"],
            "firstDayOfWeek": "sunday",
            "index": "first",
        },
        "range": {
            "type": "endDate",
            "startDate": "2026-12-07",
            "endDate": "2027-03-01",
            "recurrenceTimeZone": "W. Europe Standard Time",
            "numberOfOccurrences": 0,
        },
    }
    # The end of 1 March in Berlin (UTC+1 in winter) is 22:59:59 UTC.
    expected = ["RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20270301T225959Z"]
    assert graph_to_rrule(recurrence, START, "Europe/Berlin") == expected


@pytest.mark.parametrize(
    ("pattern", "line"),
    [
        ({"type": "daily", "interval": 3}, "RRULE:FREQ=DAILY;INTERVAL=3"),
        # Fields the type does not use are ignored, even when they hold junk.
        (
            {"type": "daily", "month": 99, "daysOfWeek": ["x"], "index": "y", "dayOfMonth": -4},
            "RRULE:FREQ=DAILY",
        ),
        (
            {"type": "weekly", "daysOfWeek": ["friday", "Monday"]},
            "RRULE:FREQ=WEEKLY;BYDAY=MO,FR",
        ),
        ({"type": "weekly", "daysOfWeek": []}, "RRULE:FREQ=WEEKLY;BYDAY=MO"),
        (
            {"type": "weekly", "interval": 2, "daysOfWeek": ["monday"]},
            "RRULE:FREQ=WEEKLY;INTERVAL=2;WKST=SU;BYDAY=MO",
        ),
        (
            {"type": "weekly", "interval": 2, "daysOfWeek": ["monday"], "firstDayOfWeek": "monday"},
            "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO",
        ),
        ({"type": "absoluteMonthly", "dayOfMonth": 31}, "RRULE:FREQ=MONTHLY;BYMONTHDAY=31"),
        (
            {"type": "relativeMonthly", "daysOfWeek": ["tuesday"], "index": "second"},
            "RRULE:FREQ=MONTHLY;BYDAY=2TU",
        ),
        (
            {"type": "relativeMonthly", "interval": 2, "daysOfWeek": ["friday"], "index": "last"},
            "RRULE:FREQ=MONTHLY;INTERVAL=2;BYDAY=-1FR",
        ),
        (
            {"type": "relativeMonthly", "daysOfWeek": ["saturday", "sunday"], "index": "first"},
            "RRULE:FREQ=MONTHLY;BYDAY=SA,SU;BYSETPOS=1",
        ),
        (
            {"type": "absoluteYearly", "month": 2, "dayOfMonth": 29},
            "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
        ),
        (
            {"type": "relativeYearly", "month": 11, "daysOfWeek": ["thursday"], "index": "fourth"},
            "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH",
        ),
    ],
)
def test_graph_to_rrule_patterns(pattern: dict[str, Any], line: str) -> None:
    assert graph_to_rrule(graph_resource(pattern), START, "Europe/Berlin") == [line]


def test_graph_to_rrule_ranges() -> None:
    daily = {"type": "daily"}
    numbered = graph_resource(daily, type="numbered", numberOfOccurrences=12)
    assert graph_to_rrule(numbered, START, "Europe/Berlin") == ["RRULE:FREQ=DAILY;COUNT=12"]
    # Summer time: the end of 1 July in Berlin is 21:59:59 UTC.
    ending = graph_resource(daily, type="endDate", endDate="2027-07-01")
    assert graph_to_rrule(ending, START, "Europe/Berlin") == [
        "RRULE:FREQ=DAILY;UNTIL=20270701T215959Z"
    ]
    # All-day series end on a date.
    assert graph_to_rrule(ending, date(2026, 12, 7), None) == ["RRULE:FREQ=DAILY;UNTIL=20270701"]
    # No zone given: the recurrence's own zone decides where the day ends.
    assert graph_to_rrule(ending, utc(2026, 12, 7, 9), None) == [
        "RRULE:FREQ=DAILY;UNTIL=20270701T215959Z"
    ]


@pytest.mark.parametrize(
    "line",
    [
        "RRULE:FREQ=WEEKLY",
        "RRULE:FREQ=WEEKLY;INTERVAL=2",
        "RRULE:FREQ=MONTHLY;COUNT=14",
        "RRULE:FREQ=YEARLY",
        "RRULE:FREQ=YEARLY;BYMONTH=3",
        "RRULE:FREQ=DAILY;BYDAY=MO,WE,FR;UNTIL=20270601",
        "RRULE:FREQ=WEEKLY;UNTIL=20270304T090000Z",
    ],
)
@pytest.mark.parametrize("start", [START, date(2026, 12, 7)])
def test_implicit_rules_come_back_explicit_with_the_same_occurrences(
    line: str, start: datetime | date
) -> None:
    back = graph_to_rrule(rrule_to_graph([line], start, "Europe/Berlin"), start, "Europe/Berlin")
    bounds = (utc(2026, 12, 1), utc(2028, 12, 1))
    assert occurrences(back, start, "Europe/Berlin", *bounds) == occurrences(
        [line], start, "Europe/Berlin", *bounds
    )


@pytest.mark.parametrize(
    ("recurrence", "fragment"),
    [
        (graph_resource({"type": "hourly"}), "hourly"),
        ({}, "pattern type"),
        (graph_resource({"type": "weekly", "daysOfWeek": ["funday"]}), "funday"),
        (graph_resource({"type": "absoluteMonthly", "dayOfMonth": 0}), "dayOfMonth"),
        (graph_resource({"type": "absoluteYearly", "month": 13, "dayOfMonth": 1}), "month"),
        (graph_resource({"type": "relativeMonthly", "daysOfWeek": []}), "daysOfWeek"),
        (
            graph_resource({"type": "relativeMonthly", "daysOfWeek": ["monday"], "index": "fifth"}),
            "index",
        ),
        (graph_resource({"type": "daily"}, type="numbered"), "numberOfOccurrences"),
        (graph_resource({"type": "daily"}, type="endDate", endDate="soon"), "endDate"),
        (graph_resource({"type": "daily"}, type="forever"), "forever"),
    ],
)
def test_graph_to_rrule_rejects_bad_input(recurrence: dict[str, Any], fragment: str) -> None:
    with pytest.raises(RecurrenceError, match=fragment):
        graph_to_rrule(recurrence, START, "Europe/Berlin")


# --- Round trips ----------------------------------------------------------------------------

ZONES = ["Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata", "Australia/Sydney"]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
POSITIONS = [1, 2, 3, 4, -1]


@st.composite
def series_start(draw: st.DrawFn) -> tuple[datetime | date, str]:
    zone = draw(st.sampled_from(ZONES))
    day = draw(st.dates(date(2025, 1, 1), date(2028, 12, 31)))
    if draw(st.booleans()):
        return day, zone
    clock = time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 45])))
    return datetime.combine(day, clock, ZoneInfo(zone)), zone


@st.composite
def supported_rule(draw: st.DrawFn) -> dict[str, str]:
    """RRULE parts Graph can express, in canonical and non-canonical spellings."""
    kind = draw(
        st.sampled_from(["daily", "weekly", "absMonthly", "relMonthly", "absYearly", "relYearly"])
    )
    parts: dict[str, str] = {}
    interval = draw(st.integers(1, 4))
    if interval > 1 or draw(st.booleans()):
        parts["INTERVAL"] = str(interval)
    days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True))
    if kind == "daily":
        parts["FREQ"] = "DAILY"
    elif kind == "weekly":
        parts |= {"FREQ": "WEEKLY", "BYDAY": ",".join(days)}
        if draw(st.booleans()):
            parts["WKST"] = draw(st.sampled_from(DAYS))
    else:
        parts["FREQ"] = "MONTHLY" if kind.endswith("Monthly") else "YEARLY"
        if kind.endswith("Yearly"):
            parts["BYMONTH"] = str(draw(st.integers(1, 12)))
        if kind.startswith("abs"):
            # Up to 28 so that a yearly rule always has occurrences.
            parts["BYMONTHDAY"] = str(draw(st.integers(1, 28 if kind == "absYearly" else 31)))
        else:
            position = draw(st.sampled_from(POSITIONS))
            if len(days) == 1 and draw(st.booleans()):
                sign = "+" if position > 0 and draw(st.booleans()) else ""
                parts["BYDAY"] = f"{sign}{position}{days[0]}"
            else:
                parts |= {"BYDAY": ",".join(days), "BYSETPOS": str(position)}
    return parts


def line_of(parts: dict[str, str], order: list[str]) -> str:
    return "RRULE:" + ";".join(f"{name}={parts[name]}" for name in order)


def end_of_local_day(day: date, start: datetime | date, zone: str) -> str:
    if not isinstance(start, datetime):
        return f"{day:%Y%m%d}"
    last = datetime.combine(day, time(23, 59, 59), ZoneInfo(zone)).astimezone(UTC)
    return f"{last:%Y%m%dT%H%M%S}Z"


def expand(lines: list[str], start: datetime | date, zone: str) -> list[datetime | date]:
    begin = datetime.combine(start, time()) if not isinstance(start, datetime) else start
    begin = begin if begin.tzinfo else begin.replace(tzinfo=ZoneInfo(zone))
    return occurrences(lines, start, zone, begin - timedelta(days=1), begin + timedelta(days=400))


@settings(max_examples=300, deadline=None, database=None)
@given(data=st.data(), parts=supported_rule(), begin=series_start())
def test_round_trip_of_supported_rules(
    data: st.DataObject, parts: dict[str, str], begin: tuple[datetime | date, str]
) -> None:
    start, zone = begin
    local_day = start.astimezone(ZoneInfo(zone)).date() if isinstance(start, datetime) else start
    end = data.draw(st.sampled_from(["none", "count", "until"]))
    if end == "count":
        parts["COUNT"] = str(data.draw(st.integers(1, 40)))
    elif end == "until":
        last = local_day + timedelta(days=data.draw(st.integers(0, 500)))
        parts["UNTIL"] = end_of_local_day(last, start, zone)
    line = line_of(parts, data.draw(st.permutations(list(parts))))
    if data.draw(st.booleans()):
        line = line.lower()

    canonical = canonical_rrule(line)
    back = graph_to_rrule(rrule_to_graph([line], start, zone), start, zone)
    assert back == [canonical]
    assert canonical_rrule(canonical) == canonical
    # The canonical spelling means the same series.
    assert expand([canonical], start, zone) == expand([line], start, zone)


@settings(max_examples=150, deadline=None, database=None)
@given(
    data=st.data(),
    parts=supported_rule(),
    begin=series_start().filter(lambda b: isinstance(b[0], datetime)),
)
def test_any_utc_until_survives_graph(
    data: st.DataObject, parts: dict[str, str], begin: tuple[datetime | date, str]
) -> None:
    start, zone = begin
    assert isinstance(start, datetime)
    offset = timedelta(seconds=data.draw(st.integers(0, 400 * 86400)))
    parts["UNTIL"] = f"{(start + offset).astimezone(UTC):%Y%m%dT%H%M%S}Z"
    line = line_of(parts, list(parts))
    back = graph_to_rrule(rrule_to_graph([line], start, zone), start, zone)
    # Graph only keeps the last date, yet the series must end with the same occurrence.
    assert expand(back, start, zone) == expand([line], start, zone)
