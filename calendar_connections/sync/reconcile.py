"""After a full listing: what the provider no longer has, and occurrences it cancelled."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update

from ..ical.recurrence import occurrences
from ..ical.rrule import RecurrenceError
from ..models import LINK_EVENT, LINK_OCCURRENCE, CalendarEvent, EventLink
from ..providers.types import CalendarClient, RemoteGone
from .apply import Puller
from .fields import occurrence_key, parse_occurrence_key

log = logging.getLogger(__name__)

# The ``seen_round`` of a link to an event the push created: no listing has shown it yet.
UNLISTED = 0
# The ``seen_round`` of a link an incremental listing showed, until that listing's cursor is
# saved (see UnconfirmedLinks).
HELD = -1


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
    # Series (and single events) first, then moved instances, then occurrences: a series gone
    # whole is deleted with its instances, not emptied first by an EXDATE per instance.
    ordered = sorted(
        stale,
        key=lambda link: (link.kind == LINK_OCCURRENCE, link.event.series_id is not None, link.id),
    )
    for link in ordered:
        if puller.link_for(link.external_id) is None:
            continue  # removed with its series above
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
    links stay ``UNLISTED`` until a listing shows them and its cursor is saved; those the
    listing did not show are read once. The links a listing shows are ``HELD`` until then (a
    listing killed before saving its cursor leaves them unconfirmed), all in the database:
    nothing here grows with the calendar.
    """

    puller: Puller

    @classmethod
    def load(cls, puller: Puller) -> UnconfirmedLinks:
        """Before an incremental listing: links held by a listing that never saved its cursor
        are unconfirmed still; the links this listing shows are held."""
        puller.session.execute(
            update(EventLink)
            .where(EventLink.connection_id == puller.connection.id, EventLink.seen_round == HELD)
            .values(seen_round=UNLISTED)
            .execution_options(synchronize_session=False)
        )
        puller.listed_round = HELD
        return cls(puller)

    def check(self, client: CalendarClient) -> None:
        """After the last page, with the cursor: read the links the listing did not show,
        confirm the others."""
        puller = self.puller
        mine = EventLink.connection_id == puller.connection.id
        unlisted = puller.session.execute(
            select(EventLink.external_id)
            .where(mine, EventLink.kind == LINK_EVENT, EventLink.seen_round == UNLISTED)
            .order_by(EventLink.id)
        ).scalars()
        for external_id in list(unlisted):
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
        puller.session.execute(
            update(EventLink)
            .where(mine, EventLink.seen_round == HELD)
            .values(seen_round=puller.round)
            .execution_options(synchronize_session=False)
        )
        puller.listed_round = None
