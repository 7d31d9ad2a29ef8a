"""Graph ``patternedRecurrence``: validation, defaults, and expansion with ``dateutil``."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any, Literal

from dateutil.rrule import (
    DAILY,
    FR,
    MO,
    MONTHLY,
    SA,
    SU,
    TH,
    TU,
    WE,
    WEEKLY,
    YEARLY,
    rrule,
    weekday,
)

from .timezones import parse_date

DAYS: dict[str, weekday] = {
    "sunday": SU,
    "monday": MO,
    "tuesday": TU,
    "wednesday": WE,
    "thursday": TH,
    "friday": FR,
    "saturday": SA,
}
INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
Frequency = Literal[0, 1, 2, 3, 4, 5, 6]
PATTERNS: dict[str, Frequency] = {
    "daily": DAILY,
    "weekly": WEEKLY,
    "absoluteMonthly": MONTHLY,
    "relativeMonthly": MONTHLY,
    "absoluteYearly": YEARLY,
    "relativeYearly": YEARLY,
}
RANGES = ("endDate", "noEnd", "numbered")


def validate(recurrence: Any) -> str | None:
    """Why ``recurrence`` is not a pattern Graph accepts, or None."""
    if not isinstance(recurrence, dict):
        return "recurrence must be an object with pattern and range."
    pattern = recurrence.get("pattern")
    span = recurrence.get("range")
    if not isinstance(pattern, dict) or not isinstance(span, dict):
        return "recurrence must have a pattern and a range."
    kind = pattern.get("type")
    if kind not in PATTERNS:
        return f"Unknown recurrence pattern type '{kind}'."
    interval = pattern.get("interval", 1)
    if not isinstance(interval, int) or interval < 1:
        return "The recurrence pattern interval must be a positive integer."
    days = pattern.get("daysOfWeek") or []
    if kind in ("weekly", "relativeMonthly", "relativeYearly") and not days:
        return f"A {kind} pattern needs daysOfWeek."
    if any(str(day).lower() not in DAYS for day in days):
        return "daysOfWeek holds an unknown day."
    if (
        kind in ("absoluteMonthly", "absoluteYearly")
        and not 1 <= int(pattern.get("dayOfMonth") or 0) <= 31
    ):
        return f"A {kind} pattern needs dayOfMonth."
    if (
        kind in ("absoluteYearly", "relativeYearly")
        and not 1 <= int(pattern.get("month") or 0) <= 12
    ):
        return f"A {kind} pattern needs month."
    if span.get("type") not in RANGES:
        return f"Unknown recurrence range type '{span.get('type')}'."
    if parse_date(span.get("startDate")) is None:
        return "The recurrence range needs a startDate."
    if span["type"] == "endDate" and parse_date(span.get("endDate")) is None:
        return "An endDate range needs an endDate."
    if span["type"] == "numbered" and int(span.get("numberOfOccurrences") or 0) < 1:
        return "A numbered range needs numberOfOccurrences."
    return None


def normalized(recurrence: dict[str, Any], zone_name: str) -> dict[str, Any]:
    """``recurrence`` with every property Graph returns, defaults filled in."""
    pattern = recurrence["pattern"]
    span = recurrence["range"]
    return {
        "pattern": {
            "type": pattern["type"],
            "interval": int(pattern.get("interval", 1)),
            "month": int(pattern.get("month") or 0),
            "dayOfMonth": int(pattern.get("dayOfMonth") or 0),
            "daysOfWeek": [str(day).lower() for day in pattern.get("daysOfWeek") or []],
            "firstDayOfWeek": str(pattern.get("firstDayOfWeek") or "sunday").lower(),
            "index": str(pattern.get("index") or "first"),
        },
        "range": {
            "type": span["type"],
            "startDate": span["startDate"],
            "endDate": span.get("endDate") if span["type"] == "endDate" else "0001-01-01",
            "recurrenceTimeZone": span.get("recurrenceTimeZone") or zone_name,
            "numberOfOccurrences": (
                int(span.get("numberOfOccurrences") or 0) if span["type"] == "numbered" else 0
            ),
        },
    }


def _rule(recurrence: dict[str, Any], first: datetime) -> rrule:
    pattern = recurrence["pattern"]
    span = recurrence["range"]
    kind = pattern["type"]
    start_day = parse_date(span.get("startDate")) or first.date()
    options: dict[str, Any] = {
        "dtstart": datetime.combine(start_day, first.time()),
        "interval": int(pattern.get("interval", 1)),
        "wkst": DAYS[str(pattern.get("firstDayOfWeek") or "sunday").lower()],
    }
    days = [DAYS[str(day).lower()] for day in pattern.get("daysOfWeek") or []]
    if kind == "weekly":
        options["byweekday"] = days
    if kind in ("relativeMonthly", "relativeYearly"):
        options["byweekday"] = days
        options["bysetpos"] = INDEX.get(str(pattern.get("index") or "first"), 1)
    if kind in ("absoluteMonthly", "absoluteYearly"):
        options["bymonthday"] = int(pattern["dayOfMonth"])
    if kind in ("absoluteYearly", "relativeYearly"):
        options["bymonth"] = int(pattern["month"])
    if span["type"] == "endDate":
        end_day: date = parse_date(span.get("endDate")) or start_day
        options["until"] = datetime.combine(end_day, time.max)
    elif span["type"] == "numbered":
        options["count"] = int(span["numberOfOccurrences"])
    return rrule(PATTERNS[kind], **options)


def starts_between(
    recurrence: dict[str, Any], first: datetime, low: datetime, high: datetime
) -> list[datetime]:
    """Wall-clock starts of the series' occurrences in ``[low, high]`` (naive, series zone)."""
    return list(_rule(recurrence, first).between(low, high, inc=True))
