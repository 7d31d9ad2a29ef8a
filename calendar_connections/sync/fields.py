"""The fields a CRM event shares with providers: copying, cleaning, and digests of them."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Any

from ..ical.recurrence import split_recurrence
from ..models import CalendarEvent, EventLink
from ..models.event import (
    DESCRIPTION_MAX_LENGTH,
    LOCATION_MAX_LENGTH,
    TIME_ZONE_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    storable_text,
)
from ..providers.types import EventFields


def fields_of(event: CalendarEvent) -> EventFields:
    """The shared fields of a CRM event."""
    return EventFields(
        title=event.title,
        description=event.description,
        location=event.location,
        all_day=event.all_day,
        start_at=event.start_at,
        end_at=event.end_at,
        start_date=event.start_date,
        end_date=event.end_date,
        time_zone=event.time_zone,
        recurrence=list(event.recurrence) if event.recurrence else None,
        status=event.status,
    )


def field_digests(fields: EventFields) -> dict[str, str]:
    """A short digest of each field group, to tell later which groups changed."""
    return {
        name: hashlib.sha256(repr(value).encode("utf-8", "surrogatepass")).hexdigest()[:16]
        for name, value in fields.groups().items()
    }


def changed_groups(fields: EventFields, synced: dict[str, str] | None) -> frozenset[str] | None:
    """The field groups that differ from what the provider was last known to hold; None when
    that is not known (everything is written)."""
    if synced is None:
        return None
    return frozenset(
        name for name, digest in field_digests(fields).items() if synced.get(name) != digest
    )


def mark_synced(link: EventLink, version: int, fields: EventFields | None) -> None:
    """The provider holds ``version`` of the event, with ``fields`` (None: not known)."""
    link.synced_version = version
    link.synced_fields = field_digests(fields) if fields is not None else None


def storable_fields(fields: EventFields) -> EventFields:
    """A provider's fields cut and cleaned to what the CRM stores (see ``storable_text``)."""

    def text(value: str | None, limit: int) -> str | None:
        return None if value is None else storable_text(value, limit)

    return EventFields(  # not dataclasses.replace: built for every pulled event
        title=storable_text(fields.title, TITLE_MAX_LENGTH),
        description=text(fields.description, DESCRIPTION_MAX_LENGTH),
        location=text(fields.location, LOCATION_MAX_LENGTH),
        all_day=fields.all_day,
        start_at=fields.start_at,
        end_at=fields.end_at,
        start_date=fields.start_date,
        end_date=fields.end_date,
        time_zone=text(fields.time_zone, TIME_ZONE_MAX_LENGTH),
        recurrence=(
            [storable_text(line, 2000) for line in fields.recurrence]
            if fields.recurrence
            else fields.recurrence
        ),
        status=fields.status,
    )


def event_columns(fields: EventFields) -> dict[str, Any]:
    """The CRM event columns that hold ``fields``."""
    return {
        "title": fields.title,
        "description": fields.description,
        "location": fields.location,
        "all_day": fields.all_day,
        "start_at": fields.start_at if not fields.all_day else None,
        "end_at": fields.end_at if not fields.all_day else None,
        "start_date": fields.start_date if fields.all_day else None,
        "end_date": fields.end_date if fields.all_day else None,
        "time_zone": fields.time_zone,
        "recurrence": list(fields.recurrence) if fields.recurrence else None,
        "status": fields.status,
    }


def assign_fields(event: CalendarEvent, fields: EventFields) -> None:
    """Copy ``fields`` onto a CRM event."""
    for column, value in event_columns(fields).items():
        setattr(event, column, value)


def occurrence_key(moment: datetime | date) -> str:
    """How an occurrence's original start is stored on a link: UTC ISO 8601, or a date."""
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat()


def merge_exdates(incoming: list[str] | None, current: list[str] | None) -> list[str] | None:
    """The provider's rule, keeping the cancelled instances the CRM already knows of."""
    if not incoming:
        return None
    rules, exdates = split_recurrence(incoming)
    _, known = split_recurrence(current or [])
    merged = rules + exdates + [line for line in known if line not in exdates]
    return merged


def parse_occurrence_key(key: str) -> datetime | date:
    """An occurrence's original start as ``occurrence_key`` stored it."""
    if "T" in key:
        return datetime.fromisoformat(key)
    return date.fromisoformat(key)
