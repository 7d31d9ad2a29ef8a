"""A CRM user's calendar events: create, read, list, change and delete them.

Plain functions over a session: they flush, the caller commits. Every change made here calls
``CalendarEvent.touch()`` so that the sync pushes it to the connected providers.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    DateTime,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    cast,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from ..ical.recurrence import validate_recurrence
from ..ical.rrule import RecurrenceError
from ..models import LINK_EVENT, CalendarConnection, CalendarEvent, EventLink, utcnow
from ..models.event import WRITABLE_COLUMNS
from .reads import reading

DEFAULT_ZONE = "UTC"
DEFAULT_STATUS = "confirmed"

# The writable fields of the API (JSON names) and the CalendarEvent columns they set; EventSchema
# loads them by column name, errors name them as the client does.
COLUMNS = {
    "title": "title",
    "description": "description",
    "location": "location",
    "allDay": "all_day",
    "start": "start_at",
    "end": "end_at",
    "startDate": "start_date",
    "endDate": "end_date",
    "timeZone": "time_zone",
    "recurrence": "recurrence",
    "status": "status",
}
_TIMES = ("start_at", "end_at", "start_date", "end_date")
_BLANK: dict[str, Any] = {
    **dict.fromkeys(WRITABLE_COLUMNS),
    "title": "",
    "all_day": False,
    "status": DEFAULT_STATUS,
}


class EventNotFound(LookupError):
    """No such event for this user: missing, another user's, or a tombstone."""

    def __init__(self, event_id: int) -> None:
        super().__init__(f"No event with id {event_id}.")
        self.event_id = event_id


class InvalidEvent(ValueError):
    """The fields do not make one consistent event; ``field`` is the JSON field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _as_stored(column: Any) -> Any:
    """A UTC instant column read as stored, naive UTC: the list writes its ``+00:00`` itself
    (making each of a page's hundreds of values aware, then writing out its offset, costs more
    than the rest of its dump)."""
    return type_coerce(column, DateTime()).label(column.key)


# What a list shows of each event: EventSchema's attributes, by column (a Core select of these,
# not ORM objects: a page is read and shown, never changed). Instants are naive UTC.
LISTED_COLUMNS = (
    CalendarEvent.id,
    CalendarEvent.title,
    CalendarEvent.description,
    CalendarEvent.location,
    CalendarEvent.all_day,
    _as_stored(CalendarEvent.start_at),
    _as_stored(CalendarEvent.end_at),
    CalendarEvent.start_date,
    CalendarEvent.end_date,
    CalendarEvent.time_zone,
    CalendarEvent.recurrence,
    CalendarEvent.status,
    CalendarEvent.series_id,
    _as_stored(CalendarEvent.original_start_at),
    CalendarEvent.original_start_date,
    _as_stored(CalendarEvent.created_at),
    _as_stored(CalendarEvent.updated_at),
)


@dataclass(frozen=True)
class EventPage:
    """One page of a list (rows of ``LISTED_COLUMNS``, instants naive UTC), the provider event
    ids each of its events is synced with, and how many events the whole list has."""

    rows: Sequence[Any]
    sources: dict[int, dict[str, str]]
    total: int


def resolve_fields(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The columns once ``changes`` (by column) apply to ``current``, checked as one event."""
    fields = dict(current)
    all_day = bool(changes.get("all_day", fields["all_day"]))
    if all_day != bool(fields["all_day"]):
        # Switching kinds: the stored times of the other kind no longer mean anything.
        fields.update(dict.fromkeys(_TIMES))
    fields.update(changes)
    fields["all_day"] = all_day
    for column in ("start_at", "end_at"):
        if fields[column] is not None:
            fields[column] = fields[column].astimezone(UTC)
    _check_times(fields)
    if not all_day and not fields["time_zone"]:
        fields["time_zone"] = DEFAULT_ZONE
    fields["recurrence"] = list(fields["recurrence"] or []) or None
    if fields["recurrence"]:
        start = fields["start_date"] if all_day else fields["start_at"]
        try:
            validate_recurrence(fields["recurrence"], start)
        except RecurrenceError as exc:
            raise InvalidEvent("recurrence", str(exc)) from None
        except ValueError as exc:
            # Some malformed values (EXDATE:20260230T100000Z) surface as plain ValueErrors.
            raise InvalidEvent("recurrence", f"Not a valid recurrence: {exc}.") from None
    return fields


def _check_times(fields: Mapping[str, Any]) -> None:
    if fields["all_day"]:
        kind, needed, other = "An all-day event", ("startDate", "endDate"), ("start", "end")
        hint = "send allDay: false to make it timed"
    else:
        kind, needed, other = "A timed event", ("start", "end"), ("startDate", "endDate")
        hint = "send allDay: true to make it all-day"
    for name in other:
        if fields[COLUMNS[name]] is not None:
            raise InvalidEvent(name, f"{kind} has {needed[0]} and {needed[1]}, not {name}: {hint}.")
    for name in needed:
        if fields[COLUMNS[name]] is None:
            raise InvalidEvent(name, f"{kind} needs {needed[0]} and {needed[1]}.")
    if fields[COLUMNS[needed[1]]] <= fields[COLUMNS[needed[0]]]:
        raise InvalidEvent(needed[1], f"Must be after {needed[0]}.")


def create_event(session: Session, user_id: str, data: Mapping[str, Any]) -> CalendarEvent:
    """A new CRM event of ``user_id`` from the API's fields (by column)."""
    event = CalendarEvent(user_id=user_id, **resolve_fields(_BLANK, data))
    session.add(event)
    session.flush()
    return event


def get_event(session: Session, user_id: str, event_id: int) -> CalendarEvent:
    """The user's live event ``event_id``, or ``EventNotFound``."""
    event = session.execute(
        select(CalendarEvent).where(
            CalendarEvent.id == event_id,
            CalendarEvent.user_id == user_id,
            CalendarEvent.deleted_at.is_(None),
        )
    ).scalar_one_or_none()
    if event is None:
        raise EventNotFound(event_id)
    return event


def update_event(
    session: Session, user_id: str, event_id: int, changes: Mapping[str, Any]
) -> CalendarEvent:
    """Apply a partial change (by column); touch the event only when something changed."""
    event = get_event(session, user_id, event_id)
    fields = resolve_fields(event.writable_fields(), changes)
    if event.series_id is not None and fields["recurrence"]:
        raise InvalidEvent(
            "recurrence", "An instance of a series cannot recur itself: change its series."
        )
    if fields["all_day"] != event.all_day and _instances(session, event):
        # Their original starts would be of the other kind: no provider could match them.
        raise InvalidEvent(
            "allDay", "A series with moved instances cannot switch between timed and all-day."
        )
    if event.set_fields(fields):
        event.touch()
        session.flush()
    return event


def delete_event(session: Session, user_id: str, event_id: int) -> None:
    """Delete an event and its moved instances; linked ones stay as tombstones for the sync.

    Deleting a moved instance cancels its occurrence: the series gets an EXDATE for it.
    """
    event = get_event(session, user_id, event_id)
    now = utcnow()
    if event.series_id is not None:
        _cancel_occurrence(session, event, now)
    # With a calendar connected, a sync may be writing this event to a provider right now:
    # a tombstone (never a removed row) lets it see the delete and carry it out.
    synced = _has_connection(session, user_id)
    kept = False
    for instance in _instances(session, event):
        kept = _remove(session, instance, now, keep=synced) or kept
    # Flushed first: the series row must not go before its instances' rows.
    session.flush()
    # A series row stays while tombstones of its instances do (series_id cascades on delete).
    _remove(session, event, now, keep=kept or synced)
    session.flush()


def _has_connection(session: Session, user_id: str) -> bool:
    return (
        session.scalar(
            select(CalendarConnection.id).where(CalendarConnection.user_id == user_id).limit(1)
        )
        is not None
    )


def _instances(session: Session, series: CalendarEvent) -> Sequence[CalendarEvent]:
    """The moved or changed instances of a series, tombstones included."""
    return session.scalars(select(CalendarEvent).where(CalendarEvent.series_id == series.id)).all()


def _cancel_occurrence(session: Session, instance: CalendarEvent, now: datetime) -> None:
    """A deleted instance is a cancelled occurrence: an EXDATE on its series, as providers do."""
    series = session.get(CalendarEvent, instance.series_id)
    start = instance.original_start
    if series is not None and start and series.cancel_occurrence(start):
        series.touch(now)


def _remove(session: Session, event: CalendarEvent, now: datetime, keep: bool = False) -> bool:
    """Tombstone a linked event, delete an unlinked one; whether a row stays."""
    if event.deleted_at is not None:
        return True
    if keep or event.links:
        event.tombstone(now)
        return True
    session.delete(event)
    return False


def list_events(
    session: Session,
    user_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    offset: int = 0,
    limit: int,
) -> EventPage:
    """The user's live events overlapping [start, end), ordered by start then id.

    Three statements whatever the page size: the list's count, the page, the page's sources.
    (A window count in the page's statement costs SQLite a sort of the whole list.) The
    statements are built once per process; a request binds its values.
    """
    count, page = _listing(start is not None, end is not None)
    window: dict[str, Any] = {"user_id": user_id}
    if end is not None:
        window.update(end=end, end_day=_days_before(end))
    if start is not None:
        window.update(start=start, start_day=start.astimezone(UTC).date())
    with reading(session) as connection:
        total = connection.execute(count, window).scalar_one()
        rows = connection.execute(page, {**window, "offset": offset, "limit": limit}).all()
        sources = _sources(connection, [row.id for row in rows])
    return EventPage(rows, sources, total)


@cache
def _listing(
    bounded_start: bool, bounded_end: bool
) -> tuple[Select[int], Select[*tuple[Any, ...]]]:
    """The count and page statements of a list, with or without each bound of its window."""
    matching = (
        CalendarEvent.user_id == bindparam("user_id"),
        CalendarEvent.deleted_at.is_(None),
        *_overlapping(bounded_start, bounded_end),
    )
    count = select(func.count()).select_from(CalendarEvent).where(*matching)
    # Timed and all-day starts in one order: a date sorts as its midnight (UTC).
    first = func.coalesce(CalendarEvent.start_at, CalendarEvent.start_date)
    page = (
        select(*LISTED_COLUMNS)
        .where(*matching)
        .order_by(first, CalendarEvent.id)
        .offset(bindparam("offset", type_=Integer))
        .limit(bindparam("limit", type_=Integer))
    )
    return count, page


def _overlapping(bounded_start: bool, bounded_end: bool) -> list[ColumnElement[bool]]:
    """Overlapping [start, end): bound as ``start``/``start_day`` and ``end``/``end_day``."""
    timed = CalendarEvent.all_day.is_(False)
    all_day = CalendarEvent.all_day.is_(True)
    conditions: list[ColumnElement[bool]] = []
    if bounded_end:
        conditions.append(
            or_(
                and_(timed, CalendarEvent.start_at < bindparam("end")),
                and_(all_day, CalendarEvent.start_date < bindparam("end_day")),
            )
        )
    if bounded_start:
        # A series is listed from its first start on, whatever its rule: its end is no bound.
        recurring = and_(
            CalendarEvent.recurrence.is_not(None),
            # JSON null and [] are stored as text by every backend.
            cast(CalendarEvent.recurrence, String).not_in(["null", "[]"]),
        )
        conditions.append(
            or_(
                recurring,
                and_(timed, CalendarEvent.end_at > bindparam("start")),
                and_(all_day, CalendarEvent.end_date > bindparam("start_day")),
            )
        )
    return conditions


def _days_before(instant: datetime) -> date:
    """The first day whose midnight (UTC) is not before ``instant``."""
    utc = instant.astimezone(UTC)
    if utc.time() == datetime.min.time():
        return utc.date()
    try:
        return utc.date() + timedelta(days=1)
    except OverflowError:
        return date.max


_SOURCES = (
    select(EventLink.event_id, CalendarConnection.provider, EventLink.external_id)
    .join(CalendarConnection, CalendarConnection.id == EventLink.connection_id)
    .where(EventLink.kind == LINK_EVENT)
    .order_by(EventLink.id)
)
_SOURCES_IN_LIST = _SOURCES.where(EventLink.event_id.in_(bindparam("event_ids", expanding=True)))
# PostgreSQL: the ids as one array, one statement text whatever their number (prepared once,
# instead of a hundred parameters parsed and planned per request).
_SOURCES_IN_ARRAY = _SOURCES.where(
    EventLink.event_id == any_(bindparam("event_ids", type_=ARRAY(Integer)))
)


def sources_of(session: Session, event_ids: Collection[int]) -> dict[int, dict[str, str]]:
    """Per event id, the provider event ids its links point at: ``{"GOOGLE": "abc123"}``; one
    statement for all of them. Reads what the session has flushed."""
    return _sources(session.connection(), event_ids)


def _sources(connection: Connection, event_ids: Collection[int]) -> dict[int, dict[str, str]]:
    sources: dict[int, dict[str, str]] = {event_id: {} for event_id in event_ids}
    if not sources:
        return sources
    statement = _SOURCES_IN_ARRAY if connection.dialect.name == "postgresql" else _SOURCES_IN_LIST
    for event_id, provider, external_id in connection.execute(
        statement, {"event_ids": list(sources)}
    ):
        sources[event_id][provider] = external_id
    return sources


@dataclass(frozen=True)
class EventView:
    """An event as the API shows it (EventSchema dumps it), read whole: once the request
    commits, showing it needs the database no more."""

    id: int
    title: str
    description: str | None
    location: str | None
    all_day: bool
    start_at: datetime | None
    end_at: datetime | None
    start_date: date | None
    end_date: date | None
    time_zone: str | None
    recurrence: list[str]
    status: str
    series_id: int | None
    original_start: datetime | date | None
    created_at: datetime
    updated_at: datetime
    sources: dict[str, str]

    @classmethod
    def of(cls, event: CalendarEvent, sources: Mapping[str, str]) -> EventView:
        """The view of ``event``, synced with the provider events ``sources`` names."""
        return cls(
            id=event.id,
            title=event.title,
            description=event.description,
            location=event.location,
            all_day=event.all_day,
            start_at=event.start_at,
            end_at=event.end_at,
            start_date=event.start_date,
            end_date=event.end_date,
            time_zone=event.time_zone,
            recurrence=list(event.recurrence or []),
            status=event.status,
            series_id=event.series_id,
            original_start=event.original_start,
            created_at=event.created_at,
            updated_at=event.updated_at,
            sources=dict(sources),
        )


def describe(session: Session, events: Sequence[CalendarEvent]) -> list[EventView]:
    """The view of each event, with the sources of all of them read at once."""
    sources = sources_of(session, [event.id for event in events])
    return [EventView.of(event, sources[event.id]) for event in events]
