"""After a full listing: what the provider no longer has, and occurrences it cancelled."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import contains_eager

from ..ical.recurrence import occurrences
from ..ical.rrule import RecurrenceError
from ..models import LINK_EVENT, LINK_OCCURRENCE, CalendarEvent, EventLink
from ..providers.types import CalendarClient, RemoteGone
from .apply import Puller
from .fields import occurrence_key, parse_occurrence_key

log = logging.getLogger(__name__)

# The ``seen_round`` of a link to an event the push created: no listing has shown it yet.
UNLISTED = 0


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
    # Series (and single events) first, then moved instances, then occurrences: a series gone
    # whole is deleted with its instances, not emptied first by an EXDATE per instance.
    stale = puller.session.execute(
        select(EventLink)
        .join(EventLink.event)
        .options(contains_eager(EventLink.event))
        .where(
            EventLink.connection_id == puller.connection.id,
            EventLink.seen_round < puller.round,
            or_(EventLink.kind == LINK_OCCURRENCE, ~_surely_outside(start, end)),
        )
        .order_by(
            EventLink.kind == LINK_OCCURRENCE, CalendarEvent.series_id.is_not(None), EventLink.id
        )
    ).scalars()
    for link in stale.all():
        if puller.link_for(link.external_id) is None:
            continue  # removed with its series above
        if link.kind == LINK_OCCURRENCE:
            moment = parse_occurrence_key(link.original_start) if link.original_start else None
            if isinstance(moment, datetime) and not start <= moment < end:
                continue
            puller.remove(link.external_id, None)
        elif link.event.deleted_at is None and in_window(link.event, start, end):
            puller.remove(link.external_id, None)


def _surely_outside(start: datetime, end: datetime) -> ColumnElement[bool]:
    """Events ``in_window`` would say a listing of [start, end) need not list, told by SQL:
    deleted ones, and single ones ended before it or starting after it (most of a calendar's
    history), so that a full listing does not read them back."""
    event = CalendarEvent
    timed = and_(
        event.all_day.is_(False),
        event.start_at.is_not(None),
        event.end_at.is_not(None),
        or_(event.end_at <= start, event.start_at >= end),
    )
    all_day = and_(
        event.all_day.is_(True),
        event.start_date.is_not(None),
        event.end_date.is_not(None),
        or_(event.end_date <= start.astimezone(UTC).date(), event.start_date >= end.date()),
    )
    single = and_(event.recurrence.is_(None), or_(timed, all_day))
    return or_(event.deleted_at.is_not(None), single)


def exclude_missing_occurrences(
    puller: Puller, series: CalendarEvent, start: datetime, end: datetime
) -> None:
    """A series occurrence its pattern has but the provider no longer lists was deleted."""
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


@dataclass
class UnconfirmedLinks:
    """Events no saved cursor has shown yet, checked after an incremental listing.

    Some deltas report no removal of an item they never listed: an event the push created
    after the cursor was issued, or one a listing killed before saving its cursor created in
    the CRM, and deleted by its owner before the next listing, would stay in the CRM. Such
    links stay unconfirmed (``UNLISTED``, or below) until a listing shows them and its cursor
    is saved; those the listing did not show are read once. The links a listing shows carry
    its ``held`` mark until then (a listing killed before saving its cursor leaves them
    unconfirmed, its mark never used again), all in the database: nothing here grows with
    the calendar, and a listing that changed nothing costs one query.
    """

    puller: Puller
    held: int

    @classmethod
    def load(cls, puller: Puller) -> UnconfirmedLinks:
        """Before an incremental listing: the links it shows get a mark of its own."""
        # Negative, never UNLISTED; one listing's in 2**31 (the mark of a listing that was
        # killed, reused, would confirm its links unread: the next full listing checks them).
        held = -1 - secrets.randbelow(2**31 - 2)
        puller.listed_round = held
        return cls(puller, held)

    def check(self, client: CalendarClient) -> None:
        """After the last page, with the cursor: read the links the listing did not show,
        confirm the others."""
        puller = self.puller
        mine = EventLink.connection_id == puller.connection.id
        unconfirmed = puller.session.execute(
            select(EventLink.external_id, EventLink.seen_round)
            .where(mine, EventLink.kind == LINK_EVENT, EventLink.seen_round <= UNLISTED)
            .order_by(EventLink.id)
        ).all()
        shown = False
        for external_id, seen in unconfirmed:
            if seen == self.held:
                shown = True
                continue
            try:
                remote = client.get(external_id)
            except RemoteGone:
                puller.remove(external_id, None)
                continue
            if remote.cancelled:
                puller.remove(external_id, remote.updated)
                continue
            link = puller.link_for(external_id)
            if link is not None:
                link.seen_round = puller.round
        if shown:
            puller.session.execute(
                update(EventLink)
                .where(mine, EventLink.seen_round == self.held)
                .values(seen_round=puller.round)
                .execution_options(synchronize_session=False)
            )
        puller.listed_round = None
