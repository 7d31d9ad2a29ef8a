"""Graph events: the stored model, ids, writes (create/patch) and JSON rendering."""

from __future__ import annotations

import base64
import binascii
import copy
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import graph_recurrence
from .errors import graph_error
from .timezones import (
    graph_timestamp,
    graph_wall,
    localize,
    now,
    parse_datetime,
    resolve_zone,
    to_wall,
    zone_or_utc,
)

ID_PREFIX = "AAMkAD"
SINGLE, MASTER, OCCURRENCE, EXCEPTION = "singleInstance", "seriesMaster", "occurrence", "exception"
SIMPLE_FIELDS = (
    "subject",
    "categories",
    "showAs",
    "importance",
    "sensitivity",
    "attendees",
    "isReminderOn",
    "reminderMinutesBeforeStart",
    "isOnlineMeeting",
    "onlineMeetingProvider",
    "allowNewTimeProposals",
    "responseRequested",
    "hideAttendees",
    "locations",
)
_TAG = re.compile(r"<[^>]+>")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def new_id() -> str:
    """A fresh Graph-looking event id."""
    return ID_PREFIX + _b64(secrets.token_bytes(48))


def calendar_id_for(email: str) -> str:
    """The default calendar id of the mailbox ``email``."""
    return ID_PREFIX + _b64(b"cal:" + email.encode())


def occurrence_id(master_id: str, stamp: str) -> str:
    """The id of a series' occurrence: the master id and its original local day (YYYYMMDD).

    Keyed on the day (a Graph series has at most one occurrence a day), so moving the series'
    time of day keeps the ids, as Outlook does.
    """
    return ID_PREFIX + _b64(f"occ:{master_id}|{stamp}".encode())


def parse_occurrence_id(event_id: str) -> tuple[str, str] | None:
    """The master id and stamp an occurrence id stands for, or None."""
    if not event_id.startswith(ID_PREFIX):
        return None
    try:
        text = base64.urlsafe_b64decode(event_id[len(ID_PREFIX) :].encode()).decode()
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return None
    if not text.startswith("occ:") or "|" not in text:
        return None
    master_id, _, stamp = text[4:].partition("|")
    return master_id, stamp


def _change_key() -> str:
    return _b64(secrets.token_bytes(21))


@dataclass
class GraphEvent:
    """A stored Graph event (single, series master, exception) or a computed occurrence."""

    id: str
    email: str
    kind: str
    start: datetime
    end: datetime
    start_zone: str
    end_zone: str
    is_all_day: bool
    fields: dict[str, Any]
    extended: dict[str, dict[str, str]]
    ical_uid: str
    created: datetime
    modified: datetime
    change_key: str
    recurrence: dict[str, Any] | None = None
    series_master_id: str | None = None
    original_start: datetime | None = None
    exceptions: dict[str, GraphEvent] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    transaction_id: str | None = None

    def start_instant(self) -> datetime:
        """The start as an aware UTC instant."""
        return localize(self.start, zone_or_utc(self.start_zone)).astimezone(UTC)

    def end_instant(self) -> datetime:
        """The end as an aware UTC instant."""
        return localize(self.end, zone_or_utc(self.end_zone)).astimezone(UTC)

    def touch(self) -> None:
        """Record a write: new change key and modification time."""
        self.modified = now()
        self.change_key = _change_key()


def invalid(message: str, code: str = "ErrorPropertyValidationFailure") -> Exception:
    """Graph's 400 for a write it refuses."""
    return graph_error(400, code, message)


def _read_time(value: Any, which: str) -> tuple[datetime, str]:
    if not isinstance(value, dict) or not value.get("dateTime"):
        raise invalid(f"The {which} property is required and needs a dateTime.")
    zone_name = str(value.get("timeZone") or "UTC")
    zone = resolve_zone(zone_name)
    if zone is None:
        raise graph_error(
            400,
            "TimeZoneNotSupportedException",
            "A valid TimeZone value must be specified. The following TimeZone value is not "
            f"supported: '{zone_name}'.",
        )
    moment = parse_datetime(str(value["dateTime"]))
    if moment is None:
        raise graph_error(
            400, "UnableToDeserializePostBody", f"Cannot convert the literal '{value['dateTime']}'."
        )
    if moment.tzinfo is not None:
        moment = to_wall(moment, zone)
    return moment, zone_name


def _apply_timing(event: GraphEvent, body: dict[str, Any]) -> bool:
    """Apply start/end/isAllDay from ``body``; True when the timing changed."""
    before = (event.start, event.end, event.start_zone, event.end_zone, event.is_all_day)
    if "start" in body:
        event.start, event.start_zone = _read_time(body["start"], "start")
    if "end" in body:
        event.end, event.end_zone = _read_time(body["end"], "end")
    if "isAllDay" in body:
        event.is_all_day = bool(body["isAllDay"])
    if event.is_all_day:
        midnight = (event.start.time(), event.end.time()) == (datetime.min.time(),) * 2
        if not midnight or event.end <= event.start:
            raise invalid(
                "An all-day event needs a start and end at midnight, the end after the start."
            )
    elif event.end_instant() < event.start_instant():
        raise invalid(
            "The end date occurs before the start date.",
            "ErrorCalendarEndDateIsEarlierThanStartDate",
        )
    return before != (event.start, event.end, event.start_zone, event.end_zone, event.is_all_day)


def _set_online_meeting(event: GraphEvent, online: bool) -> None:
    """Graph sets up the meeting (read-only ``onlineMeeting``) when an event goes online."""
    if not online:
        event.fields.pop("onlineMeeting", None)
    elif "onlineMeeting" not in event.fields:
        join = f"https://teams.microsoft.com/l/meetup-join/{secrets.token_hex(16)}"
        event.fields["onlineMeeting"] = {"joinUrl": join}


def _apply_fields(event: GraphEvent, body: dict[str, Any]) -> None:
    for name in SIMPLE_FIELDS:
        if name in body:
            event.fields[name] = copy.deepcopy(body[name])
    if "isOnlineMeeting" in body:
        _set_online_meeting(event, bool(body["isOnlineMeeting"]))
    if "body" in body:
        given = body["body"] or {}
        event.fields["body"] = {
            "contentType": str(given.get("contentType") or "text").lower(),
            "content": str(given.get("content") or ""),
        }
    if "location" in body:
        given = body["location"] or {}
        event.fields["location"] = {
            "displayName": "",
            "locationType": "default",
            "uniqueIdType": "unknown",
            "address": {},
            "coordinates": {},
            **copy.deepcopy(given),
        }
    for prop in body.get("singleValueExtendedProperties") or []:
        if not isinstance(prop, dict) or not prop.get("id"):
            raise invalid("An extended property needs an id.", "ErrorInvalidProperty")
        event.extended[str(prop["id"]).lower()] = {
            "id": str(prop["id"]),
            "value": str(prop.get("value", "")),
        }


def _apply_recurrence(event: GraphEvent, body: dict[str, Any]) -> bool:
    if "recurrence" not in body or event.kind in (OCCURRENCE, EXCEPTION):
        return False
    recurrence = body["recurrence"]
    if recurrence is None:
        changed = event.recurrence is not None
        event.recurrence, event.kind = None, SINGLE
        return changed
    problem = graph_recurrence.validate(recurrence)
    if problem:
        raise invalid(problem)
    new = graph_recurrence.normalized(recurrence, event.start_zone)
    changed = new != event.recurrence
    event.recurrence, event.kind = new, MASTER
    return changed


def build_event(email: str, body: dict[str, Any]) -> GraphEvent:
    """A new single event or series master from a create request's body."""
    if "start" not in body or "end" not in body:
        raise invalid("An event needs a start and an end.")
    stamp = now()
    event = GraphEvent(
        id=new_id(),
        email=email,
        kind=SINGLE,
        start=datetime.min,
        end=datetime.min,
        start_zone="UTC",
        end_zone="UTC",
        is_all_day=False,
        fields={"subject": "", "body": {"contentType": "html", "content": ""}},
        extended={},
        ical_uid="040000008200E00074C5B7101A82E00800000000" + secrets.token_hex(28).upper(),
        created=stamp,
        modified=stamp,
        change_key=_change_key(),
        transaction_id=str(body["transactionId"]) if body.get("transactionId") else None,
    )
    _apply_timing(event, body)
    _apply_fields(event, body)
    _apply_recurrence(event, body)
    return event


def patch_fields(event: GraphEvent, body: dict[str, Any]) -> bool:
    """Apply a PATCH body; True when the timing or the recurrence changed."""
    timing = _apply_timing(event, body)
    _apply_fields(event, body)
    if timing and event.recurrence and "recurrence" not in body:
        event.recurrence["range"]["startDate"] = event.start.date().isoformat()
    recurrence = _apply_recurrence(event, body)
    event.touch()
    return timing or recurrence


def _preview(content: str) -> str:
    return " ".join(_TAG.sub(" ", content).split())[:255]


def _when(event: GraphEvent, wall: datetime, zone_name: str, shown: str) -> dict[str, str]:
    if not event.is_all_day:
        wall = to_wall(localize(wall, zone_or_utc(zone_name)), zone_or_utc(shown))
    return {"dateTime": graph_wall(wall), "timeZone": shown}


def render(
    event: GraphEvent, *, time_zone: str | None = None, expand: list[str] | None = None
) -> dict[str, Any]:
    """The event as Graph returns it; times in ``time_zone`` (default UTC)."""
    shown = time_zone if time_zone and resolve_zone(time_zone) else "UTC"
    fields = event.fields
    body = fields.get("body") or {"contentType": "html", "content": ""}
    result: dict[str, Any] = {
        "@odata.etag": f'W/"{event.change_key}"',
        "id": event.id,
        "createdDateTime": graph_timestamp(event.created),
        "lastModifiedDateTime": graph_timestamp(event.modified),
        "changeKey": event.change_key,
        "categories": copy.deepcopy(fields.get("categories") or []),
        "transactionId": event.transaction_id,
        "originalStartTimeZone": event.start_zone,
        "originalEndTimeZone": event.end_zone,
        "iCalUId": event.ical_uid,
        "reminderMinutesBeforeStart": fields.get("reminderMinutesBeforeStart", 15),
        "isReminderOn": fields.get("isReminderOn", True),
        "hasAttachments": False,
        "subject": fields.get("subject", ""),
        "bodyPreview": _preview(str(body.get("content", ""))),
        "importance": fields.get("importance", "normal"),
        "sensitivity": fields.get("sensitivity", "normal"),
        "isAllDay": event.is_all_day,
        "isCancelled": False,
        "isOrganizer": True,
        "responseRequested": fields.get("responseRequested", True),
        "seriesMasterId": event.series_master_id,
        "showAs": fields.get("showAs", "busy"),
        "type": event.kind,
        "webLink": f"https://outlook.office365.com/owa/?itemid={event.id}&exvsurl=1&path=/calendar/item",
        "isOnlineMeeting": fields.get("isOnlineMeeting", False),
        "onlineMeetingProvider": fields.get("onlineMeetingProvider", "unknown"),
        "onlineMeeting": copy.deepcopy(fields.get("onlineMeeting")),
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "body": copy.deepcopy(body),
        "start": _when(event, event.start, event.start_zone, shown),
        "end": _when(event, event.end, event.end_zone, shown),
        "location": copy.deepcopy(fields.get("location") or {"displayName": ""}),
        "locations": copy.deepcopy(fields.get("locations") or []),
        "recurrence": copy.deepcopy(event.recurrence) if event.kind == MASTER else None,
        "attendees": copy.deepcopy(fields.get("attendees") or []),
        "organizer": {"emailAddress": {"name": event.email, "address": event.email}},
    }
    if event.original_start is not None:
        result["originalStart"] = graph_timestamp(event.original_start)[:-9] + "Z"
    if expand is not None:
        wanted = [key.lower() for key in expand]
        props = [
            dict(prop)
            for key, prop in sorted(event.extended.items())
            if not wanted or key in wanted
        ]
        if props:
            result["singleValueExtendedProperties"] = props
    return result


def occurrence_of(master: GraphEvent, wall: datetime) -> GraphEvent:
    """The computed occurrence of ``master`` starting at the wall time ``wall``."""
    zone = zone_or_utc(master.start_zone)
    stamp = wall.strftime("%Y%m%d")
    return GraphEvent(
        id=occurrence_id(master.id, stamp),
        email=master.email,
        kind=OCCURRENCE,
        start=wall,
        end=wall + (master.end - master.start),
        start_zone=master.start_zone,
        end_zone=master.end_zone,
        is_all_day=master.is_all_day,
        fields=master.fields,
        extended=master.extended,
        ical_uid=master.ical_uid[:-8] + stamp[:8],
        created=master.created,
        modified=master.modified,
        change_key=master.change_key,
        series_master_id=master.id,
        original_start=localize(wall, zone).astimezone(UTC),
    )


def as_exception(occurrence: GraphEvent) -> GraphEvent:
    """A stored exception made from a computed occurrence (its own copy of the fields)."""
    exception = copy.deepcopy(occurrence)
    exception.kind = EXCEPTION
    exception.touch()
    return exception


def window_margin(event: GraphEvent) -> timedelta:
    """How far before a window an occurrence may start and still overlap it."""
    return (event.end - event.start) + timedelta(days=1)
