"""After a full listing: what the provider no longer has, and Outlook's cancelled occurrences."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select

from ..models import LINK_OCCURRENCE, CalendarEvent, EventLink
from .apply import Puller, occurrence_key, parse_occurrence_key
from .recurrence import RecurrenceError, occurrences

log = logging.getLogger(__name__)


def in_window(event: CalendarEvent, start: datetime, end: datetime) -> bool:
    """Whether a full listing of [start, end) must have listed ``event``."""
    if event.recurrence:
        first = event.start_date if event.all_day else event.start_at
        if first is None:
            return False
        try:
            return bool(occurrences(event.recurrence, first, event.time_zone, start, end))
        except (RecurrenceError, ValueError):
            return False
    if event.all_day:
        if event.start_date is None or event.end_date is None:
            return False
        return event.end_date > start.astimezone(UTC).date() and event.start_date < end.date()
    if event.start_at is None or event.end_at is None:
        return False
    return event.end_at > start and event.start_at < end


def remove_unlisted(puller: Puller, start: datetime, end: datetime) -> None:
    """Links a full listing did not see, within its window, were deleted at the provider."""
    stale = puller.session.execute(
        select(EventLink).where(
            EventLink.connection_id == puller.connection.id,
            EventLink.seen_round < puller.round,
        )
    ).scalars()
    for link in list(stale):
        if link.kind == LINK_OCCURRENCE:
            moment = parse_occurrence_key(link.original_start) if link.original_start else None
            if isinstance(moment, datetime) and not start <= moment < end:
                continue
            puller.remove(link.external_id, None)
        elif link.event.deleted_at is None and in_window(link.event, start, end):
            puller.remove(link.external_id, None)


def exclude_missing_occurrences(
    puller: Puller, series: CalendarEvent, start: datetime, end: datetime
) -> None:
    """An Outlook series occurrence that its pattern has but Graph no longer lists was deleted."""
    first = series.start_date if series.all_day else series.start_at
    if not series.recurrence or first is None:
        return
    try:
        expected = occurrences(series.recurrence, first, series.time_zone, start, end)
    except (RecurrenceError, ValueError):
        return
    present = set(
        puller.session.execute(
            select(EventLink.original_start).where(
                EventLink.connection_id == puller.connection.id,
                EventLink.event_id == series.id,
                EventLink.kind == LINK_OCCURRENCE,
            )
        ).scalars()
    )
    moved = puller.session.execute(
        select(CalendarEvent).where(CalendarEvent.series_id == series.id)
    ).scalars()
    present |= {occurrence_key(e.original_start) for e in moved if e.original_start}
    keys = {occurrence_key(value): value for value in expected}
    if present and not (present & set(keys)):
        # Nothing lines up: the rule and the view disagree on times (a zone we read wrong?).
        # Excluding everything would empty the series, so exclude nothing.
        log.warning("series %s: occurrences do not match its rule; left as is", series.id)
        return
    for key, value in keys.items():
        if key not in present:
            puller.add_exdate(series, value)
