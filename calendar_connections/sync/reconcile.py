"""After a full listing: what the provider no longer has, and occurrences it cancelled."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select

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
    listing did not show are read once.
    """

    puller: Puller
    confirmed: set[int]  # links some saved cursor has shown, when the listing began
    unlisted: set[int]
    listed: set[int] = field(default_factory=set)

    @classmethod
    def load(cls, puller: Puller) -> UnconfirmedLinks:
        """The connection's links, before an incremental listing."""
        rows = puller.session.execute(
            select(EventLink.id, EventLink.seen_round).where(
                EventLink.connection_id == puller.connection.id, EventLink.kind == LINK_EVENT
            )
        ).all()
        return cls(
            puller,
            confirmed={link_id for link_id, seen in rows if seen != UNLISTED},
            unlisted={link_id for link_id, seen in rows if seen == UNLISTED},
        )

    def hold(self) -> None:
        """Before a page is committed: the links it showed or created stay unconfirmed."""
        session = self.puller.session
        shown = session.execute(
            select(EventLink.id).where(
                EventLink.connection_id == self.puller.connection.id,
                EventLink.kind == LINK_EVENT,
                EventLink.seen_round != UNLISTED,
            )
        ).scalars()
        for link_id in set(shown) - self.confirmed:
            link = session.get(EventLink, link_id)
            assert link is not None
            self.listed.add(link_id)
            link.seen_round = UNLISTED

    def check(self, client: CalendarClient) -> None:
        """After the last page, with the cursor: confirm the links listed, read the others."""
        for link_id in sorted(self.unlisted | self.listed):
            link = self.puller.session.get(EventLink, link_id)
            if link is None:
                continue  # removed by the listing
            if link_id not in self.listed and link.seen_round == UNLISTED:
                try:
                    remote = client.get(link.external_id)
                except RemoteGone:
                    self.puller.remove(link.external_id, None)
                    continue
                if remote.cancelled:
                    self.puller.remove(link.external_id, remote.updated)
                    continue
            link.seen_round = self.puller.round
