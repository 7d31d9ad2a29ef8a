"""Microsoft Graph's recurrence dialect: `patternedRecurrence` to and from RRULE lines."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ...ical import timezones
from ...ical.recurrence import rule_until, series_start, split_recurrence, the_rrule, zone_named
from ...ical.rrule import (
    WEEKDAYS,
    RecurrenceError,
    Rule,
    canonical,
    parse_property,
    render,
    wkst_matters,
)

_GRAPH_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_INDEX_NAMES = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
_INDEX_VALUES = {name: value for value, name in _INDEX_NAMES.items()}
_GRAPH_FREQS = {"daily": "DAILY", "weekly": "WEEKLY"}
_GRAPH_FREQS |= {
    how + f.title(): f for how in ("absolute", "relative") for f in ("MONTHLY", "YEARLY")
}


def _graph_index(rule: Rule) -> str:
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


def _graph_pattern(rule: Rule, day: date) -> dict[str, Any]:
    if rule.other:
        names = ", ".join(name for name, _ in rule.other)
        raise RecurrenceError(f"Outlook cannot express the RRULE part(s) {names}.")
    if rule.freq not in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY"):
        raise RecurrenceError(f"Outlook cannot repeat more often than daily (FREQ={rule.freq}).")
    # Without WKST an RRULE weeks start on Monday; that only matters when the weeks are counted.
    first_day = rule.wkst or ("MO" if wkst_matters(rule) else "SU")
    days = [_GRAPH_DAYS[WEEKDAYS.index(weekday)] for _, weekday in rule.byday]
    pattern = {"interval": rule.interval, "firstDayOfWeek": _GRAPH_DAYS[WEEKDAYS.index(first_day)]}
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
    if any(parse_property(line)[0] == "RDATE" for line in rule_lines):
        raise RecurrenceError("Outlook cannot express RDATE (extra single dates) in a series.")
    parsed = the_rrule(rule_lines)
    if parsed is None:
        raise RecurrenceError("Outlook needs an RRULE line.")
    rule = canonical(parsed)
    dtstart, _tz = series_start(start, zone)
    series: dict[str, Any] = {"type": "noEnd", "startDate": dtstart.date().isoformat()}
    until = rule_until(rule, dtstart)
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
    return WEEKDAYS[_GRAPH_DAYS.index(str(name).lower())]


def graph_to_rrule(
    recurrence: dict[str, Any], start: datetime | date, zone: str | None
) -> list[str]:
    """RRULE lines for a Microsoft Graph `recurrence` resource."""
    pattern: dict[str, Any] = recurrence.get("pattern") or {}
    series: dict[str, Any] = recurrence.get("range") or {}
    kind = str(pattern.get("type") or "")
    dtstart, tz = series_start(start, zone)
    freq = _GRAPH_FREQS.get(kind)
    if freq is None:
        raise RecurrenceError(f"Unknown Outlook recurrence pattern type {kind!r}.")
    # Graph fills unused fields with 0 / "first", so read only what this pattern type uses.
    interval = _graph_number(pattern, "interval", 10**6) if pattern.get("interval") else 1
    month = (_graph_number(pattern, "month", 12),) if freq == "YEARLY" else ()
    rule = Rule(freq, interval, bymonth=month)
    uses_days = kind in ("weekly", "relativeMonthly", "relativeYearly")
    names = (pattern.get("daysOfWeek") or ()) if uses_days else ()
    days = tuple((None, _graph_day(name)) for name in names)
    if kind == "weekly":
        first_day = _graph_day(pattern.get("firstDayOfWeek") or "sunday")
        days = days or ((None, WEEKDAYS[dtstart.weekday()]),)
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
            end_tz = tz or zone_named(series.get("recurrenceTimeZone")) or dtstart.tzinfo
            last = datetime.combine(end, time(23, 59, 59), end_tz).astimezone(UTC)
            rule = replace(rule, until=f"{last:%Y%m%dT%H%M%S}Z")
    elif range_type != "noEnd":
        raise RecurrenceError(f"Unknown Outlook recurrence range type {range_type!r}.")
    return [render(canonical(rule))]
