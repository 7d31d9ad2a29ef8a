"""Time zone names (IANA and Windows) and the providers' timestamp formats."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

_UTC_NAMES = {"utc", "etc/utc", "gmt", "z", "tzone://microsoft/utc", "coordinated universal time"}
_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def resolve_zone(name: str | None) -> tzinfo | None:
    """The zone named ``name`` (IANA or Windows), or None when the name is unknown."""
    if name is None:
        return None
    text = name.strip()
    if not text:
        return None
    if text.lower() in _UTC_NAMES:
        return UTC
    iana = win_tz.get(text, text)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_or_utc(name: str | None) -> tzinfo:
    """The zone named ``name``, UTC when it is missing or unknown."""
    return resolve_zone(name) or UTC


def now() -> datetime:
    """The current time, aware in UTC."""
    return datetime.now(UTC)


def parse_datetime(text: str) -> datetime | None:
    """An ISO 8601 / RFC 3339 date-time (any number of fraction digits), or None."""
    if not isinstance(text, str) or "T" not in text.upper():
        return None
    try:
        return datetime.fromisoformat(_FRACTION.sub(r"\1", text.strip()))
    except ValueError:
        return None


def parse_date(text: object) -> date | None:
    """A ``YYYY-MM-DD`` date, or None."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_instant(text: str | None) -> datetime | None:
    """A date-time as UTC; one without an offset is read as UTC (as Graph does)."""
    if not text:
        return None
    value = parse_datetime(text)
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def localize(naive: datetime, zone: tzinfo) -> datetime:
    """``naive`` wall time in ``zone`` as an aware date-time."""
    return naive.replace(tzinfo=zone)


def to_wall(instant: datetime, zone: tzinfo) -> datetime:
    """The naive wall time in ``zone`` of an aware ``instant``."""
    return instant.astimezone(zone).replace(tzinfo=None)


def rfc3339(value: datetime) -> str:
    """An aware date-time as Google writes event times: seconds and offset, ``Z`` for UTC."""
    text = value.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def rfc3339_millis(value: datetime) -> str:
    """UTC with milliseconds and ``Z``, as Google's ``created``/``updated``."""
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def graph_wall(value: datetime) -> str:
    """A naive wall time as Graph writes ``dateTimeTimeZone.dateTime`` (7 fraction digits)."""
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond:06d}0"


def graph_timestamp(value: datetime) -> str:
    """UTC with 7 fraction digits and ``Z``, as Graph's ``lastModifiedDateTime``."""
    return graph_wall(value.astimezone(UTC).replace(tzinfo=None)) + "Z"


def midnight(day: date) -> datetime:
    """Naive midnight at the start of ``day``."""
    return datetime(day.year, day.month, day.day)


def day_span(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The UTC instants bounding ``day`` in ``zone``."""
    start = localize(midnight(day), zone)
    return start.astimezone(UTC), localize(midnight(day + timedelta(days=1)), zone).astimezone(UTC)
