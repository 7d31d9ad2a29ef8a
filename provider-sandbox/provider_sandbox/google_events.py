"""Google Calendar events: validation, insert/patch/update/delete, recurring instances."""

from __future__ import annotations

import copy
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from dateutil.rrule import rrulestr

from .errors import google_error
from .push_state import google_changed
from .store import Account, SandboxStore
from .timezones import (
    midnight,
    now,
    parse_date,
    parse_datetime,
    resolve_zone,
    rfc3339,
    rfc3339_millis,
    zone_or_utc,
)

BASE32HEX = "0123456789abcdefghijklmnopqrstuv"
_ID = re.compile(r"[0-9a-v]{5,1024}")
_INSTANCE = re.compile(r"(?P<master>[0-9a-v]{5,1024})_(?P<stamp>\d{8}(?:T\d{6}Z)?)")
_READ_ONLY = {"kind", "etag", "id", "created", "updated", "htmlLink", "creator", "sequence"}
_REPLACED_WHOLE = {"start", "end", "originalStartTime", "recurrence", "attendees"}
_TIMING = ("start", "end", "recurrence")


@dataclass
class GoogleEvent:
    """A stored event: its resource as Google returns it, and bookkeeping for sync."""

    resource: dict[str, Any]
    seq: int
    ordinal: int

    @property
    def id(self) -> str:
        """The event id."""
        return str(self.resource["id"])

    @property
    def cancelled(self) -> bool:
        """Whether the event is deleted (or a cancelled instance)."""
        return self.resource.get("status") == "cancelled"


def new_event_id() -> str:
    """A fresh id in Google's alphabet (base32hex, lower case)."""
    return "".join(secrets.choice(BASE32HEX) for _ in range(26))


def _etag(seq: int) -> str:
    return f'"{3_500_000_000_000_000 + seq * 1000}"'


def bad_request(message: str, reason: str = "invalid") -> Exception:
    """Google's 400 with ``reason`` and ``message``."""
    return google_error(400, reason, message)


def parse_when(
    value: Any, which: str, *, recurring: bool
) -> tuple[datetime | date, dict[str, str]]:
    """An event time (aware date-time, or a date) and its normalised JSON."""
    if not isinstance(value, dict) or not (value.get("date") or value.get("dateTime")):
        raise bad_request(f"Missing {which} time.", "required")
    if value.get("date") and value.get("dateTime"):
        raise bad_request(f"Invalid {which} time.")
    if value.get("date"):
        day = parse_date(value["date"])
        if day is None:
            raise bad_request(f"Invalid {which} time.")
        normalized = {"date": day.isoformat()}
        if value.get("timeZone"):
            normalized["timeZone"] = str(value["timeZone"])
        return day, normalized
    moment = parse_datetime(str(value["dateTime"]))
    if moment is None:
        raise bad_request(f"Invalid {which} time.")
    zone_name = value.get("timeZone")
    zone: tzinfo | None = None
    if zone_name:
        zone = resolve_zone(str(zone_name))
        if zone is None:
            raise bad_request(f"Invalid time zone definition for {which} time.")
    elif moment.tzinfo is None or recurring:
        raise bad_request(f"Missing time zone definition for {which} time.", "required")
    if moment.tzinfo is None:
        assert zone is not None
        moment = moment.replace(tzinfo=zone)
    shown = moment.astimezone(zone) if zone is not None else moment
    normalized = {"dateTime": rfc3339(shown)}
    if zone_name:
        normalized["timeZone"] = str(zone_name)
    return moment, normalized


def _check_times(resource: dict[str, Any]) -> None:
    recurring = bool(resource.get("recurrence"))
    start, start_json = parse_when(resource.get("start"), "start", recurring=recurring)
    end, end_json = parse_when(resource.get("end"), "end", recurring=recurring)
    if isinstance(start, datetime) != isinstance(end, datetime):
        raise bad_request("Start and end times must either both be date or both be dateTime.")
    if end < start or (not isinstance(start, datetime) and end == start):
        raise google_error(
            400, "timeRangeEmpty", "The specified time range is empty.", domain="calendar"
        )
    resource["start"], resource["end"] = start_json, end_json
    if recurring:
        lines = resource["recurrence"]
        if not isinstance(lines, list) or not all(
            isinstance(line, str)
            and line.split(":", 1)[0].split(";", 1)[0] in ("RRULE", "EXRULE", "RDATE", "EXDATE")
            for line in lines
        ):
            raise bad_request("Invalid recurrence rule.")


def _ordered(resource: dict[str, Any]) -> dict[str, Any]:
    head = ("kind", "etag", "id", "status", "htmlLink", "created", "updated")
    result = {key: resource[key] for key in head if key in resource}
    result.update({key: value for key, value in resource.items() if key not in result})
    return result


def _stamp(store: SandboxStore, event: GoogleEvent, resource: dict[str, Any], bump: bool) -> None:
    event.seq = store.next_seq()
    resource["etag"] = _etag(event.seq)
    resource["updated"] = rfc3339_millis(now())
    if bump:
        resource["sequence"] = int(resource.get("sequence", 0)) + 1
    event.resource = _ordered(resource)


def insert_event(store: SandboxStore, account: Account, body: Any) -> GoogleEvent:
    """Insert ``body`` into the account's calendar (honouring a client-chosen id)."""
    if not isinstance(body, dict):
        raise bad_request("Parse Error", "parseError")
    events = store.google_events.setdefault(account.email, {})
    event_id = body.get("id")
    if event_id is not None:
        if not isinstance(event_id, str) or not (
            _ID.fullmatch(event_id) or _INSTANCE.fullmatch(event_id)
        ):
            raise bad_request("Invalid resource id value.")
        if event_id in events:
            raise google_error(409, "duplicate", "The requested identifier already exists.")
    else:
        event_id = new_event_id()
    resource = {key: copy.deepcopy(value) for key, value in body.items() if key not in _READ_ONLY}
    _check_times(resource)
    created = rfc3339_millis(now())
    resource.update(
        {
            "kind": "calendar#event",
            "id": event_id,
            "status": resource.get("status") or "confirmed",
            "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
            "created": created,
            "creator": {"email": account.email, "self": True},
            "sequence": 0,
        }
    )
    resource.setdefault("organizer", {"email": account.email, "self": True})
    resource.setdefault("iCalUID", f"{event_id}@google.com")
    resource.setdefault("reminders", {"useDefault": True})
    resource.setdefault("eventType", "default")
    event = GoogleEvent(resource={}, seq=0, ordinal=store.next_ordinal())
    _stamp(store, event, resource, bump=False)
    events[event_id] = event
    google_changed(store, account)
    return event


def _merge(target: dict[str, Any], patch: dict[str, Any], top: bool) -> None:
    for key, value in patch.items():
        if top and key in _READ_ONLY:
            continue
        if value is None:
            target.pop(key, None)
        elif (
            isinstance(value, dict)
            and isinstance(target.get(key), dict)
            and not (top and key in _REPLACED_WHOLE)
        ):
            _merge(target[key], value, top=False)
        else:
            target[key] = copy.deepcopy(value)


def patch_event(
    store: SandboxStore, account: Account, event: GoogleEvent, body: Any
) -> GoogleEvent:
    """Patch semantics: given fields replace, objects merge key-wise, ``null`` clears."""
    if not isinstance(body, dict):
        raise bad_request("Parse Error", "parseError")
    resource = copy.deepcopy(event.resource)
    _merge(resource, body, top=True)
    _check_times(resource)
    bump = any(resource.get(k) != event.resource.get(k) for k in (*_TIMING, "status"))
    _stamp(store, event, resource, bump)
    google_changed(store, account)
    return event


def update_event(
    store: SandboxStore, account: Account, event: GoogleEvent, body: Any
) -> GoogleEvent:
    """Update (PUT) semantics: the body replaces the event's writable fields."""
    if not isinstance(body, dict):
        raise bad_request("Parse Error", "parseError")
    kept = ("kind", "id", "created", "creator", "htmlLink", "iCalUID", "sequence", "organizer")
    kept_instance = ("recurringEventId", "originalStartTime")
    resource = {
        key: event.resource[key] for key in (*kept, *kept_instance) if key in event.resource
    }
    resource.update(
        {
            key: copy.deepcopy(value)
            for key, value in body.items()
            if key not in _READ_ONLY and key not in kept_instance and value is not None
        }
    )
    resource.setdefault("status", "confirmed")
    _check_times(resource)
    bump = any(resource.get(k) != event.resource.get(k) for k in (*_TIMING, "status"))
    _stamp(store, event, resource, bump)
    google_changed(store, account)
    return event


def delete_event(store: SandboxStore, account: Account, event: GoogleEvent) -> None:
    """Mark the event cancelled (kept for incremental sync); a series takes its exceptions."""
    if event.cancelled:
        raise google_error(410, "deleted", "Resource has been deleted")
    resource = copy.deepcopy(event.resource)
    resource["status"] = "cancelled"
    _stamp(store, event, resource, bump=True)
    if event.resource.get("recurrence"):
        for other in store.google_events.get(account.email, {}).values():
            if other.resource.get("recurringEventId") == event.id and not other.cancelled:
                changed = copy.deepcopy(other.resource)
                changed["status"] = "cancelled"
                _stamp(store, other, changed, bump=True)
    google_changed(store, account)


def check_if_match(event: GoogleEvent, header: str | None) -> None:
    """412 ``conditionNotMet`` when ``If-Match`` names another etag."""
    if not header or header.strip() == "*":
        return
    wanted = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    if event.resource.get("etag") not in wanted:
        raise google_error(
            412,
            "conditionNotMet",
            "Precondition Failed",
            location="If-Match",
            location_type="header",
        )


def _master_start(master: dict[str, Any], zone: tzinfo) -> datetime | date | None:
    start = master.get("start") or {}
    if start.get("date"):
        return parse_date(start["date"])
    moment = parse_datetime(str(start.get("dateTime", "")))
    if moment is None:
        return None
    return moment.astimezone(zone) if moment.tzinfo else moment.replace(tzinfo=zone)


def _is_occurrence(lines: list[str], first: datetime | date, when: datetime | date) -> bool:
    dtstart = first if isinstance(first, datetime) else midnight(first)
    probe = when if isinstance(when, datetime) else midnight(when)
    try:
        rules = rrulestr("\n".join(lines), dtstart=dtstart, forceset=True, unfold=True)
        return probe in rules
    except (ValueError, TypeError):  # a rule dateutil cannot read: trust the caller
        return True


def find_event(
    store: SandboxStore, account: Account, event_id: str, *, materialize: bool = False
) -> GoogleEvent | None:
    """The event ``event_id``; an instance id (``{master}_{stamp}``) yields that instance."""
    events = store.google_events.get(account.email, {})
    if event_id in events:
        return events[event_id]
    match = _INSTANCE.fullmatch(event_id)
    master = events.get(match["master"]) if match else None
    if match is None or master is None or master.cancelled or not master.resource.get("recurrence"):
        return None
    zone = zone_or_utc(master.resource.get("start", {}).get("timeZone") or account.time_zone)
    first = _master_start(master.resource, zone)
    stamp = match["stamp"]
    when: datetime | date
    if "T" in stamp:
        when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).astimezone(zone)
    else:
        when = datetime.strptime(stamp, "%Y%m%d").date()
    if first is None or isinstance(first, datetime) != isinstance(when, datetime):
        return None
    if not _is_occurrence(master.resource["recurrence"], first, when):
        return None
    resource = _instance_resource(master.resource, event_id, first, when)
    if not materialize:
        return GoogleEvent(resource=resource, seq=master.seq, ordinal=master.ordinal)
    event = GoogleEvent(resource={}, seq=0, ordinal=store.next_ordinal())
    _stamp(store, event, resource, bump=False)
    events[event_id] = event
    return event


def _instance_resource(
    master: dict[str, Any], event_id: str, first: datetime | date, when: datetime | date
) -> dict[str, Any]:
    skip = {"id", "recurrence", "etag", "htmlLink"}
    resource = {key: copy.deepcopy(value) for key, value in master.items() if key not in skip}
    resource["id"] = event_id
    resource["htmlLink"] = f"https://www.google.com/calendar/event?eid={event_id}"
    resource["recurringEventId"] = master["id"]
    if isinstance(when, datetime) and isinstance(first, datetime):
        end = parse_datetime(str(master["end"]["dateTime"]))
        duration = (end - first) if end is not None else timedelta(0)
        zone_name = master["start"].get("timeZone")
        original = {"dateTime": rfc3339(when), **({"timeZone": zone_name} if zone_name else {})}
        resource["start"] = dict(original)
        resource["end"] = {**original, "dateTime": rfc3339(when + duration)}
    else:
        assert isinstance(when, date) and isinstance(first, date)
        last = parse_date(master["end"]["date"]) or first
        original = {"date": when.isoformat()}
        resource["start"] = dict(original)
        resource["end"] = {"date": (when + (last - first)).isoformat()}
    resource["originalStartTime"] = original
    return resource


def minimal_view(event: GoogleEvent) -> dict[str, Any]:
    """What Google lists for a deleted event: id, status and little else."""
    keep = ("kind", "etag", "id", "status", "updated", "recurringEventId", "originalStartTime")
    return {key: copy.deepcopy(event.resource[key]) for key in keep if key in event.resource}


def full_view(event: GoogleEvent) -> dict[str, Any]:
    """The event resource as Google returns it."""
    return copy.deepcopy(event.resource)
