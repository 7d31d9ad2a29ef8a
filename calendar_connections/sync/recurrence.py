"""RFC 5545 recurrence lines (the CRM's and Google's form): validation, expansion, Graph mapping."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from itertools import islice
from math import gcd
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rruleset, rrulestr

from calendar_connections.sync import timezones

# occurrences() returns at most MAX_OCCURRENCES and walks at most MAX_SCANNED occurrences from
# the series start (about 0.3 s in dateutil), so an endless rule cannot hang a sync run.
MAX_OCCURRENCES = 5000
MAX_SCANNED = 100_000

_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_GRAPH_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_INDEX_NAMES = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
_INDEX_VALUES = {name: value for value, name in _INDEX_NAMES.items()}
_GRAPH_FREQS = {"daily": "DAILY", "weekly": "WEEKLY"}
_GRAPH_FREQS |= {
    how + f.title(): f for how in ("absolute", "relative") for f in ("MONTHLY", "YEARLY")
}
_FREQS = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")
# Canonical part order; the parts Graph has no field for (BYWEEKNO...) are kept for dateutil.
_PART_ORDER = (
    *("FREQ", "INTERVAL", "WKST", "BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY"),
    *("BYHOUR", "BYMINUTE", "BYSECOND", "BYEASTER", "BYSETPOS", "COUNT", "UNTIL"),
)
_OTHER_PARTS = ("BYWEEKNO", "BYYEARDAY", "BYHOUR", "BYMINUTE", "BYSECOND", "BYEASTER")
_BYDAY = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_DATE = re.compile(r"\d{8}")
_DATETIME = re.compile(r"\d{8}T\d{6}Z?")


class RecurrenceError(ValueError):
    """A malformed or unsupported recurrence; the message is user-facing."""


@dataclass(frozen=True)
class _Rule:
    freq: str
    interval: int = 1
    wkst: str | None = None
    bymonth: tuple[int, ...] = ()
    bymonthday: tuple[int, ...] = ()
    byday: tuple[tuple[int | None, str], ...] = ()
    bysetpos: tuple[int, ...] = ()
    count: int | None = None
    until: str | None = None
    other: tuple[tuple[str, str], ...] = ()


def _property(line: str) -> tuple[str, dict[str, str], str]:
    head, sep, value = line.strip().partition(":")
    if not sep or not head:
        raise RecurrenceError(f"Recurrence line {line!r} is not of the form NAME:VALUE.")
    name, *raw_params = head.split(";")
    params: dict[str, str] = {}
    for raw in raw_params:
        key, eq, param = raw.partition("=")
        if not eq:
            raise RecurrenceError(f"Recurrence line {line!r} has a malformed parameter {raw!r}.")
        params[key.strip().upper()] = param.strip().strip('"')
    return name.strip().upper(), params, value.strip()


def _ints(name: str, value: str, high: int, negative: bool) -> tuple[int, ...]:
    try:
        numbers = tuple(sorted({int(item) for item in value.split(",")}))
    except ValueError:
        raise RecurrenceError(f"RRULE {name}={value} is not a list of whole numbers.") from None
    single = name in ("INTERVAL", "COUNT") and "," in value
    if single or any(n == 0 or abs(n) > high or (n < 0 and not negative) for n in numbers):
        raise RecurrenceError(f"RRULE {name}={value} is out of range.")
    return numbers


def _parse_rule(line: str) -> _Rule:
    text = line.strip()
    if ":" in text:
        name, _params, text = _property(text)
        if name != "RRULE":
            raise RecurrenceError(f"Expected an RRULE line, got {line!r}.")
    parts: dict[str, str] = {}
    for pair in filter(None, text.upper().split(";")):  # tolerate a trailing ";"
        key, eq, value = pair.partition("=")
        if not eq or not value:
            raise RecurrenceError(f"RRULE part {pair!r} is not of the form NAME=VALUE.")
        if key in parts:
            raise RecurrenceError(f"RRULE has {key} more than once.")
        parts[key] = value
    unknown = sorted(set(parts) - set(_PART_ORDER))
    if unknown:
        raise RecurrenceError(f"RRULE has unknown part(s): {', '.join(unknown)}.")
    freq = parts.get("FREQ", "")
    if freq not in _FREQS:
        raise RecurrenceError(f"RRULE needs FREQ set to one of {', '.join(_FREQS)}.")
    if "COUNT" in parts and "UNTIL" in parts:
        raise RecurrenceError("RRULE cannot have both COUNT and UNTIL.")
    if parts.get("WKST", "MO") not in _DAYS:
        raise RecurrenceError(f"RRULE WKST={parts['WKST']} is not a weekday (MO..SU).")
    until = parts.get("UNTIL")
    if until is not None and not (_DATE.fullmatch(until) or _DATETIME.fullmatch(until)):
        raise RecurrenceError(f"RRULE UNTIL={until} is not a date or date-time.")
    byday: list[tuple[int | None, str]] = []
    for item in parts["BYDAY"].split(",") if "BYDAY" in parts else ():
        match = _BYDAY.fullmatch(item)
        if not match or (match[1] is not None and not 1 <= abs(int(match[1])) <= 53):
            raise RecurrenceError(f"RRULE BYDAY value {item!r} is not a weekday like MO or 2MO.")
        byday.append((int(match[1]) if match[1] else None, match[2]))
    ints = {
        name: _ints(name, parts[name], high, negative)
        for name, high, negative in (("BYMONTH", 12, False), ("BYMONTHDAY", 31, True))
        + (("BYSETPOS", 366, True), ("INTERVAL", 10**6, False), ("COUNT", 10**9, False))
        if name in parts
    }
    other = tuple((name, parts[name]) for name in _OTHER_PARTS if name in parts)
    count = ints["COUNT"][0] if "COUNT" in ints else None
    interval, wkst = ints.get("INTERVAL", (1,))[0], parts.get("WKST")
    bymonth, bymonthday, bysetpos = (ints.get(k, ()) for k in ("BYMONTH", "BYMONTHDAY", "BYSETPOS"))
    return _Rule(
        freq, interval, wkst, bymonth, bymonthday, tuple(byday), bysetpos, count, until, other
    )


def _wkst_matters(rule: _Rule) -> bool:
    # The week start only changes which weeks an INTERVAL>1 weekly rule lands in (and BYWEEKNO).
    return (rule.freq == "WEEKLY" and rule.interval > 1) or "BYWEEKNO" in dict(rule.other)


def _canonical(rule: _Rule) -> _Rule:
    byday = tuple(sorted(set(rule.byday), key=lambda d: (_DAYS.index(d[1]), d[0] or 0)))
    rule = replace(rule, byday=byday)
    if rule.wkst == "MO" or not _wkst_matters(rule):
        rule = replace(rule, wkst=None)
    # "BYDAY=MO;BYSETPOS=2" and "BYDAY=2MO" pick the same day of a month (or of a year with at
    # most one BYMONTH); keep the ordinal form, which is what Graph's single-day index maps to.
    if (
        rule.freq in ("MONTHLY", "YEARLY")
        and not (rule.bymonthday or rule.other)
        and len(byday) == 1
        and byday[0][0] is None
        and len(rule.bysetpos) == 1
        and abs(rule.bysetpos[0]) <= 53
        and (rule.freq == "MONTHLY" or len(rule.bymonth) <= 1)
    ):
        rule = replace(rule, byday=((rule.bysetpos[0], byday[0][1]),), bysetpos=())
    return rule


def _render(rule: _Rule) -> str:
    def numbers(values: tuple[int, ...]) -> str | None:
        return ",".join(map(str, values)) or None

    parts: dict[str, str | None] = {
        "FREQ": rule.freq,
        "INTERVAL": str(rule.interval) if rule.interval != 1 else None,
        "WKST": rule.wkst,
        "BYMONTH": numbers(rule.bymonth),
        "BYMONTHDAY": numbers(rule.bymonthday),
        "BYDAY": ",".join(f"{n or ''}{day}" for n, day in rule.byday) or None,
        "BYSETPOS": numbers(rule.bysetpos),
        "COUNT": str(rule.count) if rule.count is not None else None,
        "UNTIL": rule.until,
        **dict(rule.other),
    }
    return "RRULE:" + ";".join(f"{k}={parts[k]}" for k in _PART_ORDER if parts.get(k) is not None)


def canonical_rrule(line: str) -> str:
    """The RRULE line in a stable form (fixed part order, defaults dropped, lists sorted)."""
    return _render(_canonical(_parse_rule(line)))


def _zone(name: str | None) -> ZoneInfo | None:
    iana = timezones.to_iana(name)
    return ZoneInfo(iana) if iana else None


def _parse_dates(line: str, default_tz: tzinfo) -> list[datetime | date]:
    name, params, value = _property(line)
    kind = params.get("VALUE", "DATE-TIME").upper()
    if kind not in ("DATE", "DATE-TIME"):
        raise RecurrenceError(f"{name} with VALUE={kind} is not supported: {line!r}.")
    tz: tzinfo = default_tz
    if "TZID" in params:
        tz_or_none = _zone(params["TZID"])
        if tz_or_none is None:
            raise RecurrenceError(f"{name} has an unknown time zone {params['TZID']!r}.")
        tz = tz_or_none
    values: list[datetime | date] = []
    for item in value.upper().split(","):
        item = item.strip()
        if _DATE.fullmatch(item) and "TZID" not in params:
            values.append(datetime.strptime(item, "%Y%m%d").date())
        elif _DATETIME.fullmatch(item) and kind == "DATE-TIME":
            if item.endswith("Z") and "TZID" in params:
                raise RecurrenceError(f"{name} value {item} is in UTC but also has a TZID.")
            parsed = datetime.strptime(item.rstrip("Z"), "%Y%m%dT%H%M%S")
            values.append(parsed.replace(tzinfo=UTC if item.endswith("Z") else tz))
        else:
            raise RecurrenceError(f"{name} value {item!r} is not a valid date or date-time.")
    return values


def _values(lines: list[str], name: str, default_tz: tzinfo) -> list[datetime | date]:
    chosen = [line for line in lines if _property(line)[0] == name]
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
    return _values(split_recurrence(lines)[1], "EXDATE", _zone(default_zone) or UTC)


def _series_start(start: datetime | date, zone: str | None) -> tuple[datetime, ZoneInfo | None]:
    """dtstart for dateutil: aware in the event's zone (timed) or naive midnight (all-day)."""
    tz = _zone(zone)
    if not isinstance(start, datetime):
        return datetime.combine(start, time()), tz
    if start.tzinfo is None:
        return start.replace(tzinfo=tz or UTC, microsecond=0), tz
    return (start.astimezone(tz) if tz else start).replace(microsecond=0), tz


def _until(rule: _Rule, dtstart: datetime) -> datetime | date | None:
    """UNTIL as an aware instant (timed series) or a date (all-day), whatever form it came in."""
    text = rule.until
    if text is None:
        return None
    if dtstart.tzinfo is None:
        return datetime.strptime(text[:8], "%Y%m%d").date()
    if _DATE.fullmatch(text):
        # A bare date on a timed series means "through that local day".
        day = datetime.strptime(text, "%Y%m%d")
        return datetime.combine(day, time(23, 59, 59), dtstart.tzinfo)
    parsed = datetime.strptime(text.rstrip("Z"), "%Y%m%dT%H%M%S")
    return parsed.replace(tzinfo=UTC if text.endswith("Z") else dtstart.tzinfo)


def _dateutil_set(rule: _Rule | None, dtstart: datetime) -> rruleset:
    if rule is None:
        return rruleset()
    # dateutil insists that UNTIL matches DTSTART (UTC for aware, floating for naive).
    until = _until(rule, dtstart)
    if isinstance(until, datetime):
        rule = replace(rule, until=until.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"))
    elif until is not None:
        rule = replace(rule, until=until.strftime("%Y%m%d"))
    try:
        result = rrulestr(_render(rule), forceset=True, dtstart=dtstart)
    except (ValueError, TypeError) as exc:
        raise RecurrenceError(f"RRULE is not valid: {exc}.") from None
    assert isinstance(result, rruleset)  # forceset=True always builds a set
    return result


def _the_rrule(lines: list[str]) -> _Rule | None:
    rules = [_parse_rule(line) for line in lines if _property(line)[0] == "RRULE"]
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


def _never_occurs(rule: _Rule, dtstart: datetime) -> bool:
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
    return _never_occurs_from(_render(replace(rule, count=None, until=None)), dtstart, shift)


@lru_cache(maxsize=4096)
def _never_occurs_from(rule_line: str, dtstart: datetime, shift: int) -> bool:
    moved = dtstart.replace(year=dtstart.year + shift)
    rule = _parse_rule(rule_line)
    return next(iter(_dateutil_set(rule, moved)), None) is None


def check_expressible(lines: list[str], start: datetime | date) -> None:
    """Raise RecurrenceError for a rule that no provider can take, or that never occurs."""
    rule = _the_rrule(split_recurrence(lines)[0])
    if rule is None:
        return
    if rule.freq not in _PROVIDER_FREQS:
        raise RecurrenceError(
            f"FREQ={rule.freq} cannot be synced: Google and Outlook repeat events at most "
            "daily (use DAILY, WEEKLY, MONTHLY or YEARLY)."
        )
    if "BYEASTER" in dict(rule.other):
        raise RecurrenceError("BYEASTER is not part of RFC 5545: no provider can take it.")
    dtstart = _series_start(start, None)[0]
    if _never_occurs(rule, dtstart):
        raise RecurrenceError("RRULE never occurs (like a 30 February): check its BY parts.")
    if next(iter(_dateutil_set(rule, dtstart)), None) is None:
        raise RecurrenceError("RRULE ends (UNTIL or COUNT) before its first occurrence.")


def _validate(lines: list[str], start: datetime | date) -> None:
    timed = isinstance(start, datetime)
    for line in lines:
        name = _property(line)[0]
        if name not in ("RRULE", "EXDATE", "RDATE"):
            raise RecurrenceError(f"Unsupported line {line!r}: use RRULE, EXDATE or RDATE.")
        if name != "RRULE" and any(
            isinstance(v, datetime) != timed for v in _parse_dates(line, UTC)
        ):
            kind, event = ("date", "timed") if timed else ("date-time", "all-day")
            raise RecurrenceError(f"{name} {line!r} has a {kind} value; the event is {event}.")
    _dateutil_set(_the_rrule(lines), _series_start(start, None)[0])
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
    dtstart, tz = _series_start(start, zone)
    series_tz: tzinfo = dtstart.tzinfo or tz or UTC
    rule_lines, excluded = split_recurrence(lines)
    rule = _the_rrule(rule_lines)
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


def _graph_index(rule: _Rule) -> str:
    if any(n is not None for n, _ in rule.byday):
        if len(rule.byday) > 1 or rule.bysetpos:
            raise RecurrenceError("Outlook cannot express BYDAY ordinals on several days.")
        position = rule.byday[0][0]
    elif len(rule.bysetpos) == 1:
        position = rule.bysetpos[0]
    else:
        raise RecurrenceError(f"Outlook needs {rule.freq} BYDAY with 1 position (2MO or BYSETPOS).")
    if position not in _INDEX_NAMES:
        raise RecurrenceError(f"Outlook has no position {position} (only 1-4 and -1 = last).")
    return _INDEX_NAMES[position]


def _graph_pattern(rule: _Rule, day: date) -> dict[str, Any]:
    if rule.other:
        names = ", ".join(name for name, _ in rule.other)
        raise RecurrenceError(f"Outlook cannot express the RRULE part(s) {names}.")
    if rule.freq not in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY"):
        raise RecurrenceError(f"Outlook cannot repeat more often than daily (FREQ={rule.freq}).")
    # Without WKST an RRULE weeks start on Monday; that only matters when the weeks are counted.
    first_day = rule.wkst or ("MO" if _wkst_matters(rule) else "SU")
    days = [_GRAPH_DAYS[_DAYS.index(weekday)] for _, weekday in rule.byday]
    pattern = {"interval": rule.interval, "firstDayOfWeek": _GRAPH_DAYS[_DAYS.index(first_day)]}
    if rule.freq in ("DAILY", "WEEKLY"):
        if rule.bymonth or rule.bymonthday or rule.bysetpos:
            raise RecurrenceError(f"Outlook has no BYMONTH, BYMONTHDAY, BYSETPOS for {rule.freq}.")
        if any(n is not None for n, _ in rule.byday):
            raise RecurrenceError("BYDAY ordinals (like 1MO) need FREQ=MONTHLY or YEARLY.")
        if rule.freq == "DAILY" and not days:
            return {"type": "daily", **pattern}
        if rule.freq == "DAILY" and rule.interval != 1:
            raise RecurrenceError("Outlook cannot express FREQ=DAILY with both INTERVAL and BYDAY.")
        # Every day on some weekdays is the same series as weekly on those weekdays.
        return {"type": "weekly", **pattern, "daysOfWeek": days or [_GRAPH_DAYS[day.weekday()]]}
    yearly = rule.freq == "YEARLY"
    if len(rule.bymonth) > 1 or (rule.bymonth and not yearly):
        raise RecurrenceError(f"Outlook cannot express FREQ={rule.freq} with this BYMONTH.")
    if yearly and (rule.byday or rule.bymonthday) and not rule.bymonth:
        raise RecurrenceError("Outlook needs one BYMONTH for FREQ=YEARLY with BYDAY/BYMONTHDAY.")
    if yearly:
        pattern["month"] = rule.bymonth[0] if rule.bymonth else day.month
    if rule.byday:
        if rule.bymonthday:
            raise RecurrenceError("Outlook cannot express BYMONTHDAY together with BYDAY.")
        kind = "relativeYearly" if yearly else "relativeMonthly"
        return {"type": kind, **pattern, "daysOfWeek": days, "index": _graph_index(rule)}
    if rule.bysetpos:
        raise RecurrenceError("Outlook cannot express BYSETPOS without BYDAY.")
    if len(rule.bymonthday) > 1 or any(n < 0 for n in rule.bymonthday):
        raise RecurrenceError("Outlook needs BYMONTHDAY to be a single day counted from 1.")
    kind = "absoluteYearly" if yearly else "absoluteMonthly"
    return {"type": kind, **pattern, "dayOfMonth": (rule.bymonthday or (day.day,))[0]}


def rrule_to_graph(lines: list[str], start: datetime | date, zone: str | None) -> dict[str, Any]:
    """Microsoft Graph `recurrence` resource for the series' RRULE (EXDATEs are ignored)."""
    rule_lines, _ = split_recurrence(lines)
    if any(_property(line)[0] == "RDATE" for line in rule_lines):
        raise RecurrenceError("Outlook cannot express RDATE (extra single dates) in a series.")
    parsed = _the_rrule(rule_lines)
    if parsed is None:
        raise RecurrenceError("Outlook needs an RRULE line.")
    rule = _canonical(parsed)
    dtstart, _tz = _series_start(start, zone)
    series: dict[str, Any] = {"type": "noEnd", "startDate": dtstart.date().isoformat()}
    until = _until(rule, dtstart)
    if rule.count is not None:
        series.update(type="numbered", numberOfOccurrences=rule.count)
    elif isinstance(until, datetime):
        # Graph ends on a local date; step back a day if UNTIL falls before that day's occurrence.
        last = until.astimezone(dtstart.tzinfo).date()
        if datetime.combine(last, dtstart.timetz()) > until:
            last -= timedelta(days=1)
        series.update(type="endDate", endDate=last.isoformat())
    elif until is not None:
        series.update(type="endDate", endDate=until.isoformat())
    windows = timezones.to_windows(zone)
    if windows:
        series["recurrenceTimeZone"] = windows
    return {"pattern": _graph_pattern(rule, dtstart.date()), "range": series}


def _graph_number(mapping: dict[str, Any], key: str, high: int) -> int:
    value = mapping.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
        raise RecurrenceError(f"Outlook recurrence has an invalid {key}: {value!r}.")
    return value


def _graph_day(name: Any) -> str:
    if str(name).lower() not in _GRAPH_DAYS:
        raise RecurrenceError(f"Outlook recurrence has an unknown weekday {name!r}.")
    return _DAYS[_GRAPH_DAYS.index(str(name).lower())]


def graph_to_rrule(
    recurrence: dict[str, Any], start: datetime | date, zone: str | None
) -> list[str]:
    """RRULE lines for a Microsoft Graph `recurrence` resource."""
    pattern: dict[str, Any] = recurrence.get("pattern") or {}
    series: dict[str, Any] = recurrence.get("range") or {}
    kind = str(pattern.get("type") or "")
    dtstart, tz = _series_start(start, zone)
    freq = _GRAPH_FREQS.get(kind)
    if freq is None:
        raise RecurrenceError(f"Unknown Outlook recurrence pattern type {kind!r}.")
    # Graph fills unused fields with 0 / "first", so read only what this pattern type uses.
    interval = _graph_number(pattern, "interval", 10**6) if pattern.get("interval") else 1
    month = (_graph_number(pattern, "month", 12),) if freq == "YEARLY" else ()
    rule = _Rule(freq, interval, bymonth=month)
    uses_days = kind in ("weekly", "relativeMonthly", "relativeYearly")
    names = (pattern.get("daysOfWeek") or ()) if uses_days else ()
    days = tuple((None, _graph_day(name)) for name in names)
    if kind == "weekly":
        first_day = _graph_day(pattern.get("firstDayOfWeek") or "sunday")
        days = days or ((None, _DAYS[dtstart.weekday()]),)
        rule = replace(rule, wkst=first_day, byday=days)
    elif kind in ("absoluteMonthly", "absoluteYearly"):
        rule = replace(rule, bymonthday=(_graph_number(pattern, "dayOfMonth", 31),))
    elif kind in ("relativeMonthly", "relativeYearly"):
        position = _INDEX_VALUES.get(str(pattern.get("index") or "first").lower())
        if not days or position is None:
            raise RecurrenceError(f"Outlook {kind} recurrence needs daysOfWeek and a valid index.")
        if len(days) == 1:
            rule = replace(rule, byday=((position, days[0][1]),))
        else:
            rule = replace(rule, byday=days, bysetpos=(position,))
    range_type = series.get("type") or "noEnd"
    if range_type == "numbered":
        rule = replace(rule, count=_graph_number(series, "numberOfOccurrences", 10**9))
    elif range_type == "endDate":
        try:
            end = date.fromisoformat(str(series.get("endDate")))
        except ValueError:
            raise RecurrenceError("Outlook recurrence has an invalid endDate.") from None
        if dtstart.tzinfo is None:
            rule = replace(rule, until=f"{end:%Y%m%d}")
        else:
            # RFC 5545 wants UTC here; the series ends after the last local day.
            end_tz = tz or _zone(series.get("recurrenceTimeZone")) or dtstart.tzinfo
            last = datetime.combine(end, time(23, 59, 59), end_tz).astimezone(UTC)
            rule = replace(rule, until=f"{last:%Y%m%dT%H%M%S}Z")
    elif range_type != "noEnd":
        raise RecurrenceError(f"Unknown Outlook recurrence range type {range_type!r}.")
    return [_render(_canonical(rule))]
