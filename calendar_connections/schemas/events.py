"""Schemas of the CRM events API: an event, a change to one, and the list's time window."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any

import marshmallow as ma

from ..ical.timezones import is_valid_zone
from ..models.event import DESCRIPTION_MAX_LENGTH, LOCATION_MAX_LENGTH, TITLE_MAX_LENGTH
from ..text import unstorable_reason

STATUS_VALUES = ["confirmed", "tentative"]

_NAIVE = "Not a date-time with an offset: add Z or +hh:mm, as in 2026-01-05T09:00:00Z."
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _utc(value: datetime) -> datetime:
    """``value`` in UTC; far-off instants that UTC cannot hold are a ValueError."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range") from None


class OffsetDateTime(ma.fields.AwareDateTime):
    """An ISO 8601 date-time with its offset (``Z`` or ``+hh:mm``), loaded as UTC."""

    default_error_messages = {
        "invalid": "Not a valid ISO 8601 date-time.",
        "invalid_awareness": _NAIVE,
    }

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> datetime:
        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            return _utc(parsed)
        except ValueError:
            raise self.make_error("invalid") from None


class DateOrDateTime(ma.fields.Field[datetime | date]):
    """A date-time with offset, or a plain date (loaded as midnight UTC)."""

    default_error_messages = {
        "invalid": "Not a valid ISO 8601 date-time with offset, or date (YYYY-MM-DD). "
        "In a query string, write + as %2B.",
        "naive": _NAIVE,
    }

    def _serialize(
        self, value: datetime | date | None, attr: str | None, obj: Any, **kwargs: Any
    ) -> str | None:
        return None if value is None else value.isoformat()

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> datetime:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            if _DATE_ONLY.fullmatch(value):
                return datetime.combine(date.fromisoformat(value), time(), UTC)
            parsed = datetime.fromisoformat(value)
            if parsed.utcoffset() is None:
                raise self.make_error("naive")
            return _utc(parsed)
        except ValueError:
            raise self.make_error("invalid") from None


def _known_zone(name: str) -> None:
    if not is_valid_zone(name):
        raise ma.ValidationError(
            f"Unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC."
        )


_TITLE = ma.validate.Length(min=1, max=TITLE_MAX_LENGTH)
# The longest IANA zone name is 32 characters; the column holds 64.
TIME_ZONE_MAX_LENGTH = 64


def _unstorable_texts(value: Any) -> list[str]:
    """Why each string in ``value`` (a JSON value, nested lists and objects too) cannot be
    stored."""
    reasons: list[str] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            reason = unstorable_reason(node)
            if reason:
                reasons.append(reason)
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return reasons


class TextSafeSchema(ma.Schema):
    """A body schema that refuses NUL characters and lone surrogates in any of its texts."""

    @ma.pre_load
    def refuse_unstorable_text(self, data: Any, **kwargs: Any) -> Any:
        """A 422 naming each field whose text no database could store alike."""
        if not isinstance(data, dict):
            return data
        errors = {}
        for name, value in data.items():
            reasons = _unstorable_texts([name, value])
            if reasons:
                field = name if unstorable_reason(name) is None else repr(name)
                errors[field] = sorted(set(reasons))
        if errors:
            raise ma.ValidationError(errors)
        return data


EVENT_EXAMPLE = {
    "title": "Quarterly review",
    "description": "Numbers for Q3, then the plan for Q4.",
    "location": "Room 4.12",
    "start": "2026-01-05T09:00:00+01:00",
    "end": "2026-01-05T10:00:00+01:00",
    "timeZone": "Europe/Berlin",
    "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4"],
    "status": "confirmed",
}
ALL_DAY_EXAMPLE = {
    "title": "Team offsite",
    "allDay": True,
    "startDate": "2026-02-02",
    "endDate": "2026-02-04",
}
EVENT_PATCH_EXAMPLE = {"title": "Quarterly review (moved)", "location": None}


class EventSchema(TextSafeSchema):
    """A CRM calendar event: timed (``start``/``end``) or all-day (``startDate``/``endDate``)."""

    class Meta:
        # A misspelt field must not be dropped silently; read-only fields count as unknown.
        unknown = ma.RAISE

    id = ma.fields.Integer(dump_only=True)
    title = ma.fields.String(required=True, validate=_TITLE)
    description = ma.fields.String(
        allow_none=True, validate=ma.validate.Length(max=DESCRIPTION_MAX_LENGTH)
    )
    location = ma.fields.String(
        allow_none=True, validate=ma.validate.Length(max=LOCATION_MAX_LENGTH)
    )
    all_day = ma.fields.Boolean(
        data_key="allDay",
        metadata={"description": "true: the event has startDate/endDate instead of start/end"},
    )
    start_at = OffsetDateTime(
        data_key="start",
        allow_none=True,
        metadata={"description": "Timed events: ISO 8601 with offset; returned in UTC"},
    )
    end_at = OffsetDateTime(
        data_key="end",
        allow_none=True,
        metadata={"description": "Timed events: after start; ISO 8601 with offset"},
    )
    start_date = ma.fields.Date(
        data_key="startDate", allow_none=True, metadata={"description": "All-day events"}
    )
    end_date = ma.fields.Date(
        data_key="endDate",
        allow_none=True,
        metadata={"description": "All-day events: the day after the last day (exclusive)"},
    )
    time_zone = ma.fields.String(
        data_key="timeZone",
        allow_none=True,
        validate=[ma.validate.Length(max=TIME_ZONE_MAX_LENGTH), _known_zone],
        metadata={"description": "IANA zone the event is kept in; UTC when not given (timed)"},
    )
    recurrence = ma.fields.List(
        ma.fields.String(),
        allow_none=True,
        metadata={
            "description": "RFC 5545 RRULE, EXDATE and RDATE lines; empty for a single event",
            "example": ["RRULE:FREQ=WEEKLY;BYDAY=MO", "EXDATE:20260112T090000Z"],
        },
    )
    status = ma.fields.String(
        validate=ma.validate.OneOf(STATUS_VALUES),
        metadata={"enum": STATUS_VALUES, "description": "confirmed unless given"},
    )
    series_id = ma.fields.Integer(
        data_key="seriesId",
        dump_only=True,
        allow_none=True,
        metadata={"description": "For a moved or changed instance: the id of its series"},
    )
    original_start = DateOrDateTime(
        data_key="originalStart",
        dump_only=True,
        allow_none=True,
        metadata={
            "type": "string",
            "description": "For an instance: its start in the series before it was moved "
            "(date-time with offset, or a date for all-day series)",
        },
    )
    created_at = OffsetDateTime(data_key="createdAt", dump_only=True)
    updated_at = OffsetDateTime(data_key="updatedAt", dump_only=True)
    sources = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        dump_only=True,
        metadata={
            "description": "Provider name to the id of the provider event it is synced with",
            "example": {"GOOGLE": "abc123"},
        },
    )


class EventPatchSchema(EventSchema):
    """Changes to an event: any of its writable fields; null clears an optional one."""

    title = ma.fields.String(validate=_TITLE)


class EventWindowSchema(ma.Schema):
    """The time window of an event list: events overlapping [from, to)."""

    start = DateOrDateTime(
        data_key="from",
        metadata={"type": "string", "description": "Date-time with offset, or date (midnight UTC)"},
    )
    end = DateOrDateTime(
        data_key="to",
        metadata={"type": "string", "description": "Date-time with offset, or date (midnight UTC)"},
    )

    @ma.validates_schema
    def ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        """``to`` comes after ``from``."""
        if "start" in data and "end" in data and data["end"] <= data["start"]:
            raise ma.ValidationError("Must be after `from`.", field_name="to")


class IdempotencyHeaderSchema(ma.Schema):
    """The optional ``Idempotency-Key`` header of a create."""

    class Meta:
        unknown = ma.EXCLUDE

    idempotency_key = ma.fields.String(
        data_key="Idempotency-Key",
        validate=ma.validate.Regexp(
            r"^[!-~]{1,255}$", error="Use 1 to 255 visible ASCII characters, such as a UUID."
        ),
        metadata={
            "description": "Retrying with the same key within 24 hours returns the first "
            "answer and creates nothing more; the same key with another body is a 422.",
            "example": "5f0c2a8e-8d7b-4a7e-9a51-0d6c2f1e9b3a",
        },
    )


# What ``isoformat`` of an aware UTC instant ends with.
_UTC_OFFSET = "+00:00"


def _original_start(at: datetime | None, on: date | None) -> str | None:
    """A moved instance's original start: an instant (naive UTC), else a day, else none."""
    if at is not None:
        return at.isoformat() + _UTC_OFFSET
    return None if on is None else on.isoformat()


def listed_event_json(row: Any, sources: Mapping[str, str]) -> dict[str, Any]:
    """``EventSchema().dump`` of a listed event (a row of ``LISTED_COLUMNS``, in their order,
    instants naive UTC), written out: a list page dumps up to a hundred per request, and
    marshmallow spends tens of microseconds on each. A test pins both to the same output; a
    field added to EventSchema is added here too."""
    (
        id_,
        title,
        description,
        location,
        all_day,
        start_at,
        end_at,
        start_date,
        end_date,
        time_zone,
        recurrence,
        status,
        series_id,
        original_start_at,
        original_start_date,
        created_at,
        updated_at,
    ) = row
    return {
        "id": id_,
        "title": title,
        "description": description,
        "location": location,
        "allDay": all_day,
        "start": None if start_at is None else start_at.isoformat() + _UTC_OFFSET,
        "end": None if end_at is None else end_at.isoformat() + _UTC_OFFSET,
        "startDate": None if start_date is None else start_date.isoformat(),
        "endDate": None if end_date is None else end_date.isoformat(),
        "timeZone": time_zone,
        "recurrence": list(recurrence or ()),
        "status": status,
        "seriesId": series_id,
        "originalStart": _original_start(original_start_at, original_start_date),
        "createdAt": created_at.isoformat() + _UTC_OFFSET,
        "updatedAt": updated_at.isoformat() + _UTC_OFFSET,
        "sources": dict(sources),
    }
