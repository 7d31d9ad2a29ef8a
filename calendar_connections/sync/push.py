"""Pushing the CRM's changes to a provider (the push side of a sync)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import ScalarSelect, and_, case, delete, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from ..ical.recurrence import exdates
from ..ical.rrule import RecurrenceError
from ..models import (
    LINK_EVENT,
    LINK_OCCURRENCE,
    ORIGIN_CRM,
    CalendarConnection,
    CalendarEvent,
    EventLink,
    utcnow,
)
from ..providers.errors import ProviderRejected
from ..providers.spec import Capabilities
from ..providers.types import (
    CalendarClient,
    EventFields,
    EventPayload,
    RemoteEvent,
    RemoteGone,
    WriteConflict,
)
from .apply import Puller
from .fields import assign_fields, changed_groups, fields_of, mark_synced, occurrence_key
from .reconcile import UNLISTED

log = logging.getLogger(__name__)

# Statuses of a refused write that concern that one event (skipped), not the whole sync.
EVENT_REFUSALS = (400, 403, 413, 422)
# How long a deleted CRM event that no provider holds is kept: long enough that a provider
# copy pushed by a sync that died before recording it is still recognised by its tag (and
# deleted), instead of coming back as a new event.
TOMBSTONE_RETENTION = timedelta(days=30)


def pending_events(
    session: Session, connection: CalendarConnection, window_start: datetime
) -> list[tuple[int, int | None]]:
    """CRM events this connection must write: new, changed, or deleted since the last sync;
    the ids of each event and of its link.

    Events pulled from another provider are never pushed here (no sync loops).
    """

    # Each event's link with this connection, read by a correlated subquery rather than a
    # join: PostgreSQL never turns a scalar subquery into a join, so every event costs one
    # probe of ix_event_link_event_id_connection_id_kind whatever the statistics say (with
    # stale ones, the outer join it replaces became a nested loop over every link, per event).
    def link_column(column: InstrumentedAttribute[int]) -> ScalarSelect[int]:
        return (
            select(column)
            .where(
                EventLink.event_id == CalendarEvent.id,
                EventLink.connection_id == connection.id,
                EventLink.kind == LINK_EVENT,
            )
            # There is at most one (``Puller.link_for_event`` relies on it too). No ORDER BY:
            # ordered by id, the primary key's index (scanned whole, filtered) looks as cheap
            # as the probe to a planner that believes event_link empty.
            .limit(1)
            .scalar_subquery()
        )

    window_date = window_start.astimezone(UTC).date()
    new_here = and_(
        CalendarEvent.deleted_at.is_(None),
        # New to this calendar: only what has not ended before the sync window.
        or_(
            CalendarEvent.recurrence.is_not(None),
            CalendarEvent.end_at >= window_start,
            CalendarEvent.end_date > window_date,
        ),
    )
    # Without a link, an event is pending when it is new here (-1 is below every version);
    # with one, when the link holds an older version than the event's.
    pushed_version = func.coalesce(
        link_column(EventLink.synced_version),
        case((new_here, -1), else_=CalendarEvent.version),
    )
    rows = session.execute(
        select(CalendarEvent.id, link_column(EventLink.id))
        .where(
            CalendarEvent.user_id == connection.user_id,
            CalendarEvent.origin.in_([ORIGIN_CRM, connection.provider]),
            pushed_version < CalendarEvent.version,
        )
        # A series before its moved instances: they need its provider id.
        .order_by(CalendarEvent.series_id.is_not(None), CalendarEvent.id)
    ).all()
    return [(event_id, link_id) for event_id, link_id in rows]


class EventVanished(Exception):
    """The CRM event was deleted while the provider wrote it; its copy was removed."""


class Pusher:
    """Writes pending CRM changes to one provider, committing after each event.

    A write records the CRM version it carried, not the version the event has when the
    provider answers: a change made through the API meanwhile stays pending for the next push.
    """

    def __init__(self, puller: Puller, client: CalendarClient, capabilities: Capabilities) -> None:
        self.puller = puller
        self.session = puller.session
        self.connection = puller.connection
        self.client = client
        self.counts = puller.counts
        self.capabilities = capabilities

    def push_all(self, window_start: datetime) -> None:
        """Push every pending event; one provider write per change. An event the provider
        refuses (or cannot express) is skipped and left pending; the others go on."""
        for event_id, link_id in pending_events(self.session, self.connection, window_start):
            event = self.session.get(CalendarEvent, event_id)
            link = self.session.get(EventLink, link_id) if link_id is not None else None
            if event is None or (link_id is not None and link is None):
                continue  # removed since the list was read (by the API or a pull)
            try:
                self.push(event, link)
                self.puller.guard()
                self.session.commit()
            except EventVanished:
                continue
            except (ProviderRejected, RecurrenceError) as exc:
                if isinstance(exc, ProviderRejected) and exc.status not in EVENT_REFUSALS:
                    raise
                self.session.rollback()
                reason = exc.message if isinstance(exc, ProviderRejected) else str(exc)
                self.counts.skip(f"CRM event {event_id}", reason)
                log.warning(
                    "connection %s: CRM event %s skipped: %s", self.connection.id, event_id, reason
                )
        self._purge_tombstones()

    def push(self, event: CalendarEvent, link: EventLink | None) -> None:
        """Insert, update or delete one event at the provider."""
        if event.deleted_at is not None:
            self._delete(event, link)
            return
        payload = self._payload(event)
        if payload is None:
            return
        version = event.version
        if link is None:
            self._insert(event, payload, version)
        else:
            self._update(event, link, payload, version)
        if event.recurrence and not self.capabilities.supports_exdate:
            self._delete_excluded_occurrences(event)

    def _payload(self, event: CalendarEvent) -> EventPayload | None:
        payload = EventPayload(uid=event.uid, tag=str(event.id), fields=fields_of(event))
        if event.series_id is not None:
            series_link = self.puller.link_for_event(event.series_id)
            if series_link is None or event.original_start is None:
                log.info("event %s waits for its series to reach the provider", event.id)
                return None
            payload.series_external_id = series_link.external_id
            payload.original_start = event.original_start
        return payload

    def _record(
        self,
        event: CalendarEvent,
        link: EventLink | None,
        remote: RemoteEvent,
        version: int,
        fields: EventFields,
        *,
        inserted: bool = False,
    ) -> None:
        if link is None:
            link = self.puller.link_for(remote.external_id)
        if link is None:
            link = EventLink(
                connection_id=self.connection.id,
                event_id=event.id,
                external_id=remote.external_id,
            )
            self.session.add(link)
        link.kind = LINK_EVENT
        link.event_id = event.id
        link.external_id = remote.external_id
        link.etag = remote.etag
        link.remote_updated_at = remote.updated
        mark_synced(link, version, fields)
        # An inserted event waits for a listing to show it (see reconcile.UnconfirmedLinks).
        link.seen_round = UNLISTED if inserted else self.puller.round
        self.counts.pushed += 1
        try:
            self.session.flush()
        except IntegrityError:
            # The CRM event was removed while the provider wrote it (a pull of another
            # provider deleted it): take the provider's copy back rather than orphan it.
            self.session.rollback()
            log.info("event %s vanished during its push; removing its copy", event.id)
            self.puller.guard()
            self.client.delete(remote.external_id)
            raise EventVanished(event.id) from None

    def _write(self) -> None:
        """Before each provider write: still ours to write?"""
        self.puller.guard()

    def _insert(self, event: CalendarEvent, payload: EventPayload, version: int) -> None:
        self._write()
        if payload.series_external_id and self.capabilities.moves_instances_by_occurrence:
            occurrence = self._occurrence_link(event.series_id, payload.original_start)
            if occurrence is None:
                log.info("event %s: no listed occurrence to move; skipped", event.id)
                return
            remote = self.client.update(occurrence.external_id, payload, None)
            self._record(event, occurrence, remote, version, payload.fields)
            return
        remote = self.client.insert(payload)
        self._record(event, None, remote, version, payload.fields, inserted=True)

    def _update(
        self, event: CalendarEvent, link: EventLink, payload: EventPayload, version: int
    ) -> None:
        remote: RemoteEvent | None
        payload.only = changed_groups(payload.fields, link.synced_fields)
        if payload.only is not None and not payload.only:
            mark_synced(link, version, payload.fields)  # nothing the provider lacks
            return
        self._write()
        try:
            remote = self.client.update(link.external_id, payload, link.etag)
        except WriteConflict:
            payload.only = None  # the CRM's whole version wins, or the provider's does
            remote = self._resolve_conflict(event, link, payload)
            if remote is None:
                return
        except RemoteGone:
            # Deleted at the provider while changed in the CRM: the CRM's change is the
            # later one, so the event is created again.
            self.session.delete(link)
            self.session.flush()
            payload.only = None
            self._insert(event, payload, version)
            return
        self._record(event, link, remote, version, payload.fields)

    def _resolve_conflict(
        self, event: CalendarEvent, link: EventLink, payload: EventPayload
    ) -> RemoteEvent | None:
        """Changed on both sides: the later modification wins."""
        current = self.client.get(link.external_id)
        if current.updated and current.updated > event.updated_at:
            assign_fields(event, current.fields)
            link.etag = current.etag
            link.remote_updated_at = current.updated
            mark_synced(link, event.version, fields_of(event))
            self.counts.updated += 1
            return None
        self._write()
        try:
            return self.client.update(link.external_id, payload, current.etag)
        except WriteConflict:
            self._write()
            return self.client.update(link.external_id, payload, None)

    def _delete(self, event: CalendarEvent, link: EventLink | None) -> None:
        if link is not None:
            self._write()
            self.client.delete(link.external_id)
            self.counts.pushed += 1
            self.session.delete(link)
            self.session.flush()
        self.session.refresh(event)
        if not event.links:
            self.session.delete(event)

    def _occurrence_link(self, series_id: int | None, original_start: object) -> EventLink | None:
        if series_id is None or original_start is None:
            return None
        key = occurrence_key(original_start)  # type: ignore[arg-type]
        return self.session.execute(
            select(EventLink).where(
                EventLink.connection_id == self.connection.id,
                EventLink.event_id == series_id,
                EventLink.kind == LINK_OCCURRENCE,
                EventLink.original_start == key,
            )
        ).scalar_one_or_none()

    def _delete_excluded_occurrences(self, event: CalendarEvent) -> None:
        """Without EXDATE at the provider: delete the occurrences the CRM series excludes."""
        zone = event.time_zone if not event.all_day else None
        for value in exdates(list(event.recurrence or []), zone):
            occurrence = self._occurrence_link(event.id, value)
            if occurrence is not None:
                self._write()
                self.client.delete(occurrence.external_id)
                self.counts.pushed += 1
                self.session.delete(occurrence)

    def _purge_tombstones(self) -> None:
        """Forget the user's deleted events that no provider holds any more, once old."""
        linked = exists().where(EventLink.event_id == CalendarEvent.id)
        self.session.execute(
            delete(CalendarEvent)
            .where(
                CalendarEvent.user_id == self.connection.user_id,
                CalendarEvent.deleted_at < utcnow() - TOMBSTONE_RETENTION,
                ~linked,
            )
            .execution_options(synchronize_session=False)
        )
        self.session.commit()
