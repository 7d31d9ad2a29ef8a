"""Time zone names across providers: IANA (CRM, Google) and Windows (Microsoft Graph)."""

from __future__ import annotations

import functools
import zoneinfo

from tzlocal.windows_tz import tz_win, win_tz

UTC_NAME = "UTC"

# Every spelling of UTC we meet: IANA aliases plus Graph's own marker for UTC.
_UTC_ALIASES = frozenset(
    name.casefold()
    for name in (
        "UTC",
        "Etc/UTC",
        "Etc/UCT",
        "UCT",
        "Etc/Universal",
        "Universal",
        "Etc/Zulu",
        "Zulu",
        "tzone://Microsoft/Utc",
        "Coordinated Universal Time",
    )
)

# Keys that zoneinfo can load but that mean "whatever this host uses": never valid for an event.
_HOST_DEPENDENT = frozenset({"localtime", "posixrules"})


@functools.cache
def _available() -> frozenset[str]:
    # Scanning the tz database is slow; it does not change while the process runs.
    return frozenset(zoneinfo.available_timezones() - _HOST_DEPENDENT)


@functools.cache
def _available_folded() -> dict[str, str]:
    return {name.casefold(): name for name in _available()}


@functools.cache
def _windows_folded() -> dict[str, str]:
    return {name.casefold(): name for name in win_tz}


def is_valid_zone(name: str) -> bool:
    """True when `name` is an IANA zone key that zoneinfo can load."""
    # Membership first: it rejects empty strings, paths and directories without touching disk.
    if not isinstance(name, str) or name not in _available():
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _is_utc(name: str) -> bool:
    return name.casefold() in _UTC_ALIASES


def to_iana(name: str | None) -> str | None:
    """IANA name for an IANA or Windows zone name, or None when unknown or empty."""
    if name is None:
        return None
    name = name.strip()
    if not name:
        return None
    if _is_utc(name):
        return UTC_NAME
    if is_valid_zone(name):
        return name
    windows = _windows_folded().get(name.casefold())
    if windows is not None:
        iana = win_tz[windows]
        if _is_utc(iana):
            return UTC_NAME
        return iana if is_valid_zone(iana) else None
    # Case slips ("europe/berlin") are common in hand-typed input; the database is case-exact.
    return _available_folded().get(name.casefold())


def to_windows(iana: str | None) -> str | None:
    """Windows zone name (as Microsoft Graph expects it) for an IANA name, or None."""
    name = to_iana(iana)
    if name is None:
        return None
    if name == UTC_NAME:
        return UTC_NAME
    return tz_win.get(name)
