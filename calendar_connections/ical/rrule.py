"""One RRULE line: parsed into a ``Rule``, checked, and written back in a canonical form."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_FREQS = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")
# Canonical part order; parts Graph has no field for (BYWEEKNO...) are kept for dateutil.
_PART_ORDER = (
    *("FREQ", "INTERVAL", "WKST", "BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY"),
    *("BYHOUR", "BYMINUTE", "BYSECOND", "BYEASTER", "BYSETPOS", "COUNT", "UNTIL"),
)
_OTHER_PARTS = ("BYWEEKNO", "BYYEARDAY", "BYHOUR", "BYMINUTE", "BYSECOND", "BYEASTER")
DATE_VALUE = re.compile(r"\d{8}")
DATETIME_VALUE = re.compile(r"\d{8}T\d{6}Z?")
_BYDAY = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")


class RecurrenceError(ValueError):
    """A malformed or unsupported recurrence; the message is user-facing."""


@dataclass(frozen=True)
class Rule:
    """The parts of one RRULE, parsed; ``other`` keeps those dateutil alone understands."""

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


def parse_property(line: str) -> tuple[str, dict[str, str], str]:
    """Name, parameters and value of one content line (``NAME;PARAM=X:VALUE``)."""
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


def parse_rule(line: str) -> Rule:
    """The parts of one RRULE line, checked (raises ``RecurrenceError``)."""
    text = line.strip()
    if ":" in text:
        name, _params, text = parse_property(text)
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
    if parts.get("WKST", "MO") not in WEEKDAYS:
        raise RecurrenceError(f"RRULE WKST={parts['WKST']} is not a weekday (MO..SU).")
    until = parts.get("UNTIL")
    if until is not None and not (DATE_VALUE.fullmatch(until) or DATETIME_VALUE.fullmatch(until)):
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
    return Rule(
        freq, interval, wkst, bymonth, bymonthday, tuple(byday), bysetpos, count, until, other
    )


def wkst_matters(rule: Rule) -> bool:
    """Whether the week start changes which days the rule yields."""
    # The week start only changes which weeks an INTERVAL>1 weekly rule lands in (and BYWEEKNO).
    return (rule.freq == "WEEKLY" and rule.interval > 1) or "BYWEEKNO" in dict(rule.other)


def canonical(rule: Rule) -> Rule:
    """The same rule in one spelling: redundant parts dropped, parts ordered."""
    byday = tuple(sorted(set(rule.byday), key=lambda d: (WEEKDAYS.index(d[1]), d[0] or 0)))
    rule = replace(rule, byday=byday)
    if rule.wkst == "MO" or not wkst_matters(rule):
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


def render(rule: Rule) -> str:
    """The RRULE value of ``rule``, parts in canonical order."""

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
    return render(canonical(parse_rule(line)))
