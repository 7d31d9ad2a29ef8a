"""RFC 5545 recurrence lines (the CRM's and Google's form): parsing, validation, expansion."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import MAXYEAR, UTC, date, datetime, time, tzinfo
from functools import lru_cache
from itertools import islice
from math import gcd
from zoneinfo import ZoneInfo

from dateutil.rrule import rruleset, rrulestr

from . import timezones
from .rrule import (
    DATE_VALUE,
    DATETIME_VALUE,
    RecurrenceError,
    Rule,
    parse_property,
    parse_rule,
    render,
)

# occurrences() returns at most MAX_OCCURRENCES and walks at most MAX_SCANNED occurrences from
# the series start (about 0.3 s in dateutil), so an endless rule cannot hang a sync run.
MAX_OCCURRENCES = 5000
MAX_SCANNED = 100_000


def zone_named(name: str | None) -> ZoneInfo | None:
    """The ZoneInfo of a zone name (IANA or Windows), or None."""
    iana = timezones.to_iana(name)
    return ZoneInfo(iana) if iana else None


def _parse_dates(line: str, default_tz: tzinfo) -> list[datetime | date]:
    name, params, value = parse_property(line)
    kind = params.get("VALUE", "DATE-TIME").upper()
    if kind not in ("DATE", "DATE-TIME"):
        raise RecurrenceError(f"{name} with VALUE={kind} is not supported: {line!r}.")
    tz: tzinfo = default_tz
    if "TZID" in params:
        tz_or_none = zone_named(params["TZID"])
        if tz_or_none is None:
            raise RecurrenceError(f"{name} has an unknown time zone {params['TZID']!r}.")
        tz = tz_or_none
    values: list[datetime | date] = []
    for item in value.upper().split(","):
        item = item.strip()
        if DATE_VALUE.fullmatch(item) and "TZID" not in params:
            values.append(datetime.strptime(item, "%Y%m%d").date())
        elif DATETIME_VALUE.fullmatch(item) and kind == "DATE-TIME":
            if item.endswith("Z") and "TZID" in params:
                raise RecurrenceError(f"{name} value {item} is in UTC but also has a TZID.")
            parsed = datetime.strptime(item.rstrip("Z"), "%Y%m%dT%H%M%S")
            values.append(parsed.replace(tzinfo=UTC if item.endswith("Z") else tz))
        else:
            raise RecurrenceError(f"{name} value {item!r} is not a valid date or date-time.")
    return values


def _values(lines: list[str], name: str, default_tz: tzinfo) -> list[datetime | date]:
    chosen = [line for line in lines if parse_property(line)[0] == name]
    return [value for line in chosen for value in _parse_dates(line, default_tz)]


def split_recurrence(lines: list[str]) -> tuple[list[str], list[str]]:
    """Split recurrence lines into (RRULE/RDATE lines, EXDATE lines), order kept."""
    rules: list[str] = []
    excluded: list[str] = []
    for line in lines:
        name = re.split(r"[;:]", line.strip(), maxsplit=1)[0].upper()
        (excluded if name == "EXDATE" else rules).append(line)
    return rules, excluded


def exdates(lines: list[str], default_zone: str | None) -> list[datetime | date]:
    """All EXDATE values: aware datetimes for timed ones, dates for all-day ones."""
    return _values(split_recurrence(lines)[1], "EXDATE", zone_named(default_zone) or UTC)


def series_start(start: datetime | date, zone: str | None) -> tuple[datetime, ZoneInfo | None]:
    """dtstart for dateutil: aware in the event's zone (timed) or naive midnight (all-day)."""
    tz = zone_named(zone)
    if not isinstance(start, datetime):
        return datetime.combine(start, time()), tz
    if start.tzinfo is None:
        return start.replace(tzinfo=tz or UTC, microsecond=0), tz
    return (start.astimezone(tz) if tz else start).replace(microsecond=0), tz


def rule_until(rule: Rule, dtstart: datetime) -> datetime | date | None:
    """UNTIL as an aware instant (timed series) or a date (all-day), whatever form it came in."""
    text = rule.until
    if text is None:
        return None
    if dtstart.tzinfo is None:
        return datetime.strptime(text[:8], "%Y%m%d").date()
    if DATE_VALUE.fullmatch(text):
        # A bare date on a timed series means "through that local day".
        day = datetime.strptime(text, "%Y%m%d")
        return datetime.combine(day, time(23, 59, 59), dtstart.tzinfo)
    parsed = datetime.strptime(text.rstrip("Z"), "%Y%m%dT%H%M%S")
    return parsed.replace(tzinfo=UTC if text.endswith("Z") else dtstart.tzinfo)


def _dateutil_set(rule: Rule | None, dtstart: datetime) -> rruleset:
    if rule is None:
        return rruleset()
    # dateutil insists that UNTIL matches DTSTART (UTC for aware, floating for naive).
    until = rule_until(rule, dtstart)
    if isinstance(until, datetime):
        rule = replace(rule, until=until.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"))
    elif until is not None:
        rule = replace(rule, until=until.strftime("%Y%m%d"))
    try:
        result = rrulestr(render(rule), forceset=True, dtstart=dtstart)
    except (ValueError, TypeError) as exc:
        raise RecurrenceError(f"RRULE is not valid: {exc}.") from None
    assert isinstance(result, rruleset)  # forceset=True always builds a set
    return result


def the_rrule(lines: list[str]) -> Rule | None:
    """The one RRULE of ``lines``, parsed, or None without one."""
    rules = [parse_rule(line) for line in lines if parse_property(line)[0] == "RRULE"]
    if len(rules) > 1:
        raise RecurrenceError("Only one RRULE line is supported.")
    return rules[0] if rules else None


def validate_recurrence(lines: list[str], start: datetime | date) -> None:
    """Raise RecurrenceError unless the lines are a valid recurrence for an event at `start`."""
    try:
        _validate(lines, start)
    except RecurrenceError:
        raise
    except (ValueError, OverflowError) as exc:
        # dateutil's own complaints (a 30 February, a 13th month) are bad input too.
        raise RecurrenceError(f"Invalid recurrence: {exc}") from exc


# What Google and Outlook can both express as a frequency; finer rules (and dateutil's own
# BYEASTER, no RFC 5545 part) no provider takes, so the API refuses them.
_PROVIDER_FREQS = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY")
# A 400-year Gregorian cycle repeats weekdays, month lengths and leap days exactly: it is
# 400 years, 4,800 months, 20,871 weeks or 146,097 days.
_CYCLE_YEARS = 400
_CYCLE_UNITS = {"YEARLY": 400, "MONTHLY": 4800, "WEEKLY": 20871, "DAILY": 146097}


def _never_occurs(rule: Rule, dtstart: datetime) -> bool:
    """Whether the rule, COUNT and UNTIL aside, has no occurrence at all (BYMONTHDAY=30 in
    February, a BYSETPOS beyond its set, an INTERVAL that never meets its BYDAY).

    dateutil searches such a rule up to the year 9999 (seconds of CPU). The same rule from a
    start moved by whole cycles that also keep its INTERVAL steps in place behaves exactly
    alike, so it is searched from near the end of time: at most two cycles.
    """
    units = _CYCLE_UNITS.get(rule.freq)
    if units is None:
        return False  # finer than daily: the API refuses these; providers' are left as is
    cycle = _CYCLE_YEARS * (rule.interval // gcd(rule.interval, units))
    shift = max(0, (MAXYEAR - cycle - dtstart.year) // cycle * cycle)
    return _never_occurs_from(render(replace(rule, count=None, until=None)), dtstart, shift)


@lru_cache(maxsize=4096)
def _never_occurs_from(rule_line: str, dtstart: datetime, shift: int) -> bool:
    moved = dtstart.replace(year=dtstart.year + shift)
    rule = parse_rule(rule_line)
    return next(iter(_dateutil_set(rule, moved)), None) is None


def check_expressible(lines: list[str], start: datetime | date) -> None:
    """Raise RecurrenceError for a rule that no provider can take, or that never occurs."""
    rule = the_rrule(split_recurrence(lines)[0])
    if rule is None:
        return
    if rule.freq not in _PROVIDER_FREQS:
        raise RecurrenceError(
            f"FREQ={rule.freq} cannot be synced: Google and Outlook repeat events at most "
            "daily (use DAILY, WEEKLY, MONTHLY or YEARLY)."
        )
    if "BYEASTER" in dict(rule.other):
        raise RecurrenceError("BYEASTER is not part of RFC 5545: no provider can take it.")
    dtstart = series_start(start, None)[0]
    if _never_occurs(rule, dtstart):
        raise RecurrenceError("RRULE never occurs (like a 30 February): check its BY parts.")
    if next(iter(_dateutil_set(rule, dtstart)), None) is None:
        raise RecurrenceError("RRULE ends (UNTIL or COUNT) before its first occurrence.")


def _validate(lines: list[str], start: datetime | date) -> None:
    timed = isinstance(start, datetime)
    for line in lines:
        name = parse_property(line)[0]
        if name not in ("RRULE", "EXDATE", "RDATE"):
            raise RecurrenceError(f"Unsupported line {line!r}: use RRULE, EXDATE or RDATE.")
        if name != "RRULE" and any(
            isinstance(v, datetime) != timed for v in _parse_dates(line, UTC)
        ):
            kind, event = ("date", "timed") if timed else ("date-time", "all-day")
            raise RecurrenceError(f"{name} {line!r} has a {kind} value; the event is {event}.")
    _dateutil_set(the_rrule(lines), series_start(start, None)[0])
    check_expressible(lines, start)


def with_exdate(lines: list[str], original_start: datetime | date, zone: str | None) -> list[str]:
    """The lines plus an EXDATE for the occurrence starting at `original_start` (idempotent)."""
    iana = timezones.to_iana(zone)
    existing = exdates(lines, iana)
    if isinstance(original_start, datetime):
        tz = ZoneInfo(iana) if iana else UTC
        moment = original_start if original_start.tzinfo else original_start.replace(tzinfo=tz)
        moment = moment.replace(microsecond=0)
        if iana is None or iana == timezones.UTC_NAME:
            line = f"EXDATE:{moment.astimezone(UTC):%Y%m%dT%H%M%S}Z"
        else:
            line = f"EXDATE;TZID={iana}:{moment.astimezone(tz):%Y%m%dT%H%M%S}"
        present = any(isinstance(v, datetime) and v == moment for v in existing)
    else:
        line = f"EXDATE;VALUE=DATE:{original_start:%Y%m%d}"
        present = any(not isinstance(v, datetime) and v == original_start for v in existing)
    # Appending keeps every existing line in place and the new EXDATE after the RRULE.
    return list(lines) if present else [*lines, line]


def _as_series_value(value: datetime | date, dtstart: datetime, tz: tzinfo | None) -> datetime:
    """An EXDATE/RDATE value in the series' own form, so dateutil compares like with like."""
    if dtstart.tzinfo is None:
        if isinstance(value, datetime):
            value = (value.astimezone(tz) if tz else value).date()
        return datetime.combine(value, time())
    if isinstance(value, datetime):
        return value
    # An all-day EXDATE on a timed series removes that local day's occurrence.
    return datetime.combine(value, dtstart.timetz())


def occurrences(
    lines: list[str],
    start: datetime | date,
    zone: str | None,
    window_start: datetime,
    window_end: datetime,
) -> list[datetime | date]:
    """Occurrence starts (RRULE + RDATE - EXDATE) within [window_start, window_end)."""
    dtstart, tz = series_start(start, zone)
    series_tz: tzinfo = dtstart.tzinfo or tz or UTC
    rule_lines, excluded = split_recurrence(lines)
    rule = the_rrule(rule_lines)
    if rule is not None and _never_occurs(rule, dtstart):
        rule = None  # its RDATEs, if any, are all there is
    rset = _dateutil_set(rule, dtstart)
    for value in _values(rule_lines, "RDATE", series_tz):
        rset.rdate(_as_series_value(value, dtstart, tz))
    for value in _values(excluded, "EXDATE", series_tz):
        rset.exdate(_as_series_value(value, dtstart, tz))
    all_day = dtstart.tzinfo is None
    low: date = window_start
    high: date = window_end
    if all_day:
        # All-day occurrences are compared by date, taken in the event's zone when it has one.
        bounds = (window_start, window_end)
        low, high = ((w.astimezone(tz) if tz and w.tzinfo else w).date() for w in bounds)
    elif window_start.tzinfo is None or window_end.tzinfo is None:
        raise ValueError("occurrences() needs timezone-aware window bounds for a timed series.")
    found: list[datetime | date] = []
    for occurrence in islice(rset, MAX_SCANNED):
        value = occurrence.date() if all_day else occurrence
        if value >= high or len(found) >= MAX_OCCURRENCES:
            break
        if value >= low:
            found.append(value)
    return found
