"""Windows <-> IANA zone names and zone validation."""

from __future__ import annotations

import pytest
from tzlocal.windows_tz import win_tz

from calendar_connections.ical.timezones import is_valid_zone, to_iana, to_windows


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("America/Los_Angeles", "America/Los_Angeles"),
        ("Asia/Calcutta", "Asia/Calcutta"),
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("GMT Standard Time", "Europe/London"),
        ("UTC-11", "Etc/GMT+11"),
        ("  W. Europe Standard Time ", "Europe/Berlin"),
        ("pacific standard time", "America/Los_Angeles"),
        ("europe/berlin", "Europe/Berlin"),
    ],
)
def test_to_iana_maps_iana_and_windows_names(name: str, expected: str) -> None:
    assert to_iana(name) == expected


@pytest.mark.parametrize(
    "name", ["UTC", "Etc/UTC", "tzone://Microsoft/Utc", "TZONE://MICROSOFT/UTC", "utc", "Etc/UCT"]
)
def test_to_iana_normalises_every_utc_spelling(name: str) -> None:
    assert to_iana(name) == "UTC"


@pytest.mark.parametrize(
    "name",
    [None, "", "   ", "Customized Time Zone", "tzone://Microsoft/Custom", "Mars/Olympus", "Europe"],
)
def test_to_iana_returns_none_for_unknown_or_empty(name: str | None) -> None:
    assert to_iana(name) is None


def test_every_windows_zone_maps_to_a_loadable_iana_zone() -> None:
    for windows in win_tz:
        iana = to_iana(windows)
        assert iana is not None and is_valid_zone(iana), windows


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Europe/Berlin", "W. Europe Standard Time"),
        ("America/Los_Angeles", "Pacific Standard Time"),
        ("Asia/Kolkata", "India Standard Time"),
        ("Asia/Calcutta", "India Standard Time"),
        ("Europe/London", "GMT Standard Time"),
        ("UTC", "UTC"),
        ("Etc/UTC", "UTC"),
        ("tzone://Microsoft/Utc", "UTC"),
        # Already a Windows name: passed through, so callers need not check first.
        ("Pacific Standard Time", "Pacific Standard Time"),
    ],
)
def test_to_windows(name: str, expected: str) -> None:
    assert to_windows(name) == expected


@pytest.mark.parametrize("name", [None, "", "Mars/Olympus", "Customized Time Zone"])
def test_to_windows_returns_none_for_unknown(name: str | None) -> None:
    assert to_windows(name) is None


def test_windows_round_trip_for_common_zones() -> None:
    for iana in ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "UTC"]:
        windows = to_windows(iana)
        assert windows is not None
        assert to_iana(windows) == iana


@pytest.mark.parametrize("name", ["Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires", "GMT"])
def test_is_valid_zone_accepts_iana_names(name: str) -> None:
    assert is_valid_zone(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        " ",
        "Europe",
        "Europe/Berlin ",
        "europe/berlin",
        "../etc/passwd",
        "/etc/localtime",
        "/usr/share/zoneinfo/Europe/Berlin",
        "localtime",
        "Pacific Standard Time",
        "Mars/Olympus",
    ],
)
def test_is_valid_zone_rejects_everything_else(name: str) -> None:
    assert not is_valid_zone(name)
