"""Pushing the CRM's changes to a provider (the push side of a sync)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
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
from ..providers.errors import ProviderError, ProviderRejected
from ..providers.spec import Capabilities
from ..providers.types import (
    CalendarClient,
    EventFields,
    EventPayload,
    RemoteEvent,
    RemoteGone,
    Write,
    WriteConflict,
    WriteResult,
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
    """The CRM event was deleted while the provider wrote it; its copy must be removed."""

    def __init__(self, external_id: str) -> None:
        super().__init__(external_id)
        self.external_id = external_id


@dataclass
class PushItem:
    """One pending event's write in a batch, with what recording it needs.

    ``kind``: ``insert`` (a new provider event), ``move`` (a moved instance written onto the
    listed occurrence it replaces), ``update`` or ``delete``; ``version`` is the CRM version
    the write carries, the one recorded.
    """

    event_id: int
    event: CalendarEvent
    link: EventLink | None
    kind: str
    write: Write
    version: int


class Pusher:
    """Writes pending CRM changes to one provider in batches, committing after each batch.

    A write records the CRM version it carried, not the version the event has when the
    provider answers: a change made through the API meanwhile stays pending for the next push.
    Each write's answer is handled on its own: a conflict, a vanished provider event or a
    refusal concerns that event alone, and the rest of its batch lands.
    """

    def __init__(self, puller: Puller, client: CalendarClient, capabilities: Capabilities) -> None:
        self.puller = puller
        self.session = puller.session
        self.connection = puller.connection
        self.client = client
        self.counts = puller.counts
        self.capabilities = capabilities
        # Occurrences a written series excludes, to delete where there is no EXDATE: with
        # the series' link and the version that write carried.
        self._excluded: list[tuple[int, EventLink, int, EventLink]] = []

    def push_all(self, window_start: datetime) -> None:
        """Push every pending event, ``client.batch_size`` writes per provider request. An
        event the provider refuses (or cannot express) is skipped and left pending; the
        others go on."""
        pending = pending_events(self.session, self.connection, window_start)
        size = max(1, self.client.batch_size)
        for start in range(0, len(pending), size):
            for wave in self._waves(pending[start : start + size]):
                self._push_batch(wave)
        self._purge_tombstones()

    def _waves(
        self, rows: list[tuple[int, int | None]]
    ) -> list[list[tuple[CalendarEvent, EventLink | None]]]:
        """The rows' events and links, loaded at once; a series goes in a batch before its
        moved instances (they need its provider id), so a batch holds one kind or the other."""
        event_ids = [event_id for event_id, _ in rows]
        link_ids = [link_id for _, link_id in rows if link_id is not None]
        events = {
            event.id: event
            for event in self.session.scalars(
                select(CalendarEvent).where(CalendarEvent.id.in_(event_ids))
            )
        }
        links = {
            link.id: link
            for link in self.session.scalars(select(EventLink).where(EventLink.id.in_(link_ids)))
        }
        series: list[tuple[CalendarEvent, EventLink | None]] = []
        instances: list[tuple[CalendarEvent, EventLink | None]] = []
        for event_id, link_id in rows:
            event = events.get(event_id)
            link = links.get(link_id) if link_id is not None else None
            if event is None or (link_id is not None and link is None):
                continue  # removed since the list was read (by the API or a pull)
            (series if event.series_id is None else instances).append((event, link))
        return [wave for wave in (series, instances) if wave]

    def _push_batch(self, rows: list[tuple[CalendarEvent, EventLink | None]]) -> None:
        """Plan each event's write, send them in one batch, settle each answer on its own,
        commit; a failure that concerns the whole sync is raised once the batch is saved."""
        items = [item for event, link in rows if (item := self._plan(event, link)) is not None]
        if self.session.new or self.session.dirty or self.session.deleted:
            # What planning changed locally is saved first: no write lock is held while the
            # provider works. (Otherwise no commit: it would expire what the batch records.)
            self.puller.guard()
            self.session.commit()
        if not items:
            return
        self.puller.guard()
        results = self.client.write_batch([item.write for item in items])
        # First every answer that needs no further provider call, saved together; then, one
        # at a time and each saved alone, those resolved with calls of their own.
        alone, failure = self._settle_batch(list(zip(items, results, strict=True)))
        self.puller.guard()
        self.session.commit()
        for item, result in alone if failure is None else []:
            failure = self._settle_alone(item, result)
            if failure is not None:
                break
            self.puller.guard()
            self.session.commit()
        if self._excluded and failure is None:
            failure = self._delete_excluded()
            self.puller.guard()
            self.session.commit()
        if failure is not None:
            raise failure

    def _plan(self, event: CalendarEvent, link: EventLink | None) -> PushItem | None:
        """The write an event needs, or None when it needs none now (done locally, nothing
        the provider lacks, or waiting for its series)."""
        if event.deleted_at is not None:
            if link is None:
                self._forget(event)
                return None
            write = Write("delete", external_id=link.external_id)
            return PushItem(event.id, event, link, "delete", write, event.version)
        payload = self._payload(event)
        if payload is None:
            return None
        version = event.version
        if link is None:
            if payload.series_external_id and self.capabilities.moves_instances_by_occurrence:
                occurrence = self._occurrence_link(event.series_id, payload.original_start)
                if occurrence is None:
                    log.info("event %s: no listed occurrence to move; skipped", event.id)
                    return None
                write = Write("update", payload, occurrence.external_id)
                return PushItem(event.id, event, occurrence, "move", write, version)
            return PushItem(event.id, event, None, "insert", Write("insert", payload), version)
        payload.only = changed_groups(payload.fields, link.synced_fields)
        if payload.only is not None and not payload.only:
            mark_synced(link, version, payload.fields)  # nothing the provider lacks
            self._queue_exclusions(event, link, version)
            return None
        write = Write("update", payload, link.external_id, link.etag)
        return PushItem(event.id, event, link, "update", write, version)

    def _settle_batch(
        self, answered: list[tuple[PushItem, WriteResult]]
    ) -> tuple[list[tuple[PushItem, WriteResult]], Exception | None]:
        """Record the batch's writes and skip its refused events, in one transaction; returns
        the answers to settle alone (conflicts, vanished events) and a failure that concerns
        the whole sync, if any."""
        saved, skipped = self.counts.snapshot(), len(self.counts.skipped)
        try:
            return self._settle_local(answered)
        except EventVanished:
            # An event deleted between the check and the write of its link: start again (the
            # check now sees it gone), so the others are recorded.
            self.session.rollback()
            self.counts.restore(saved)
            del self.counts.skipped[skipped:]
            self._excluded.clear()
            return self._settle_local(answered)

    def _settle_local(
        self, answered: list[tuple[PushItem, WriteResult]]
    ) -> tuple[list[tuple[PushItem, WriteResult]], Exception | None]:
        ids = [item.event_id for item, _ in answered]
        present = set(
            self.session.scalars(select(CalendarEvent.id).where(CalendarEvent.id.in_(ids)))
        )
        known = self._links_of(answered)
        alone: list[tuple[PushItem, WriteResult]] = []
        failure: Exception | None = None
        for item, result in answered:
            error = result.error
            if error is None and item.event_id not in present:
                if item.kind == "delete":
                    self.counts.pushed += 1  # the event and its links are gone already
                else:
                    alone.append((item, result))  # vanished: its copy is taken back
            elif error is None:
                self._record_answer(item, result, known)
            elif isinstance(error, WriteConflict | RemoteGone) and item.kind == "update":
                alone.append((item, result))
            elif isinstance(error, RemoteGone):
                self._skip(item.event_id, Exception(f"the provider event {error} is gone"))
            elif self._refused(error):
                self._skip(item.event_id, error)
            else:
                failure = failure or error
        try:
            self.session.flush()  # the batch's links, written together
        except IntegrityError:
            raise EventVanished("") from None
        return alone, failure

    def _links_of(self, answered: list[tuple[PushItem, WriteResult]]) -> dict[str, EventLink]:
        """This connection's links to the provider events the batch inserted (a pull may
        have linked one already), in one query."""
        inserted = [
            result.remote.external_id
            for item, result in answered
            if item.link is None and result.remote is not None
        ]
        if not inserted:
            return {}
        found = self.session.scalars(
            select(EventLink).where(
                EventLink.connection_id == self.connection.id,
                EventLink.external_id.in_(inserted),
            )
        )
        return {link.external_id: link for link in found}

    @staticmethod
    def _refused(error: Exception) -> bool:
        """Whether the provider refused the write for that event alone (skipped, pending)."""
        if isinstance(error, ProviderRejected):
            return error.status in EVENT_REFUSALS
        return isinstance(error, RecurrenceError)

    def _record_answer(
        self, item: PushItem, result: WriteResult, known: dict[str, EventLink]
    ) -> None:
        if item.kind == "delete":
            self._deleted(item.event, item.link)
            return
        payload, remote = item.write.payload, result.remote
        assert payload is not None and remote is not None
        link = item.link or known.get(remote.external_id)
        fields = payload.fields
        self._record(item.event, link, remote, item.version, fields, item.kind, batched=True)

    def _settle_alone(self, item: PushItem, result: WriteResult) -> Exception | None:
        """Settle one answer that needs provider calls of its own; what goes wrong stays with
        that event. Returns a failure that concerns the whole sync."""
        try:
            self._resolve(item, result)
        except EventVanished as vanished:
            # The CRM event was removed while the provider wrote it (a pull of another
            # provider deleted it): take the provider's copy back rather than orphan it.
            self.session.rollback()
            log.info("event %s vanished during its push; removing its copy", item.event_id)
            self.puller.guard()
            self.client.delete(vanished.external_id)
        except (ProviderRejected, RecurrenceError) as exc:
            self.session.rollback()
            if not self._refused(exc):
                return exc
            self._skip(item.event_id, exc)
        except ProviderError as exc:
            self.session.rollback()
            return exc
        return None

    def _resolve(self, item: PushItem, result: WriteResult) -> None:
        """A vanished event's copy, a conflict, or a provider event deleted meanwhile."""
        event, link, payload, error = item.event, item.link, item.write.payload, result.error
        if error is None:
            assert result.remote is not None
            raise EventVanished(result.remote.external_id)
        assert link is not None and payload is not None
        payload.only = None  # the CRM's whole version wins, or the provider's does
        if isinstance(error, WriteConflict):
            remote = self._resolve_conflict(event, link, payload)
            if remote is not None:
                self._record(event, link, remote, item.version, payload.fields, item.kind)
            return
        # Deleted at the provider while changed in the CRM: the CRM's change is the later
        # one, so the event is created again (written first: a refusal leaves the link).
        target, remote = self._insert_remote(event, payload)
        if remote is None:
            return
        self.session.delete(link)
        self.session.flush()
        kind = "insert" if target is None else "move"
        self._record(event, target, remote, item.version, payload.fields, kind)

    def _skip(self, event_id: int, exc: Exception) -> None:
        reason = exc.message if isinstance(exc, ProviderRejected) else str(exc)
        self.counts.skip(f"CRM event {event_id}", reason)
        log.warning("connection %s: CRM event %s skipped: %s", self.connection.id, event_id, reason)

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
        kind: str,
        *,
        batched: bool = False,
    ) -> None:
        """Record a write on the event's link; ``batched``: the link was looked up already,
        and the batch's links are flushed together."""
        if link is None and not batched:
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
        link.seen_round = UNLISTED if kind == "insert" else self.puller.round
        self.counts.pushed += 1
        if not batched:
            try:
                self.session.flush()
            except IntegrityError:
                raise EventVanished(remote.external_id) from None
        if event.recurrence and not self.capabilities.supports_exdate:
            self._queue_exclusions(event, link, version)

    def _write(self) -> None:
        """Before each provider write: still ours to write?"""
        self.puller.guard()

    def _insert_remote(
        self, event: CalendarEvent, payload: EventPayload
    ) -> tuple[EventLink | None, RemoteEvent | None]:
        """One insert on its own (an event whose provider copy was deleted), and the link to
        record it on (a moved instance is written onto its occurrence)."""
        self._write()
        if payload.series_external_id and self.capabilities.moves_instances_by_occurrence:
            occurrence = self._occurrence_link(event.series_id, payload.original_start)
            if occurrence is None:
                log.info("event %s: no listed occurrence to move; skipped", event.id)
                return None, None
            return occurrence, self.client.update(occurrence.external_id, payload, None)
        return None, self.client.insert(payload)

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

    def _deleted(self, event: CalendarEvent, link: EventLink | None) -> None:
        """The provider deleted the event's copy: forget the link, and the event if no other
        provider holds it."""
        self.counts.pushed += 1
        if link is not None:
            self.session.delete(link)
            self.session.flush()
        self._forget(event)

    def _forget(self, event: CalendarEvent) -> None:
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

    def _queue_exclusions(self, event: CalendarEvent, link: EventLink, version: int) -> None:
        """Without EXDATE at the provider: the occurrences the CRM series excludes are
        deleted after its batch."""
        if not event.recurrence or self.capabilities.supports_exdate:
            return
        zone = event.time_zone if not event.all_day else None
        for value in exdates(list(event.recurrence or []), zone):
            occurrence = self._occurrence_link(event.id, value)
            if occurrence is not None:
                self._excluded.append((event.id, link, version, occurrence))

    def _delete_excluded(self) -> Exception | None:
        """Delete the queued excluded occurrences in batches. One the provider refuses
        leaves its series pending, so the next push tries again."""
        queued, self._excluded = self._excluded, []
        size = max(1, self.client.batch_size)
        for start in range(0, len(queued), size):
            chunk = queued[start : start + size]
            self.puller.guard()
            writes = [Write("delete", external_id=occ.external_id) for *_, occ in chunk]
            results = self.client.write_batch(writes)
            for (event_id, link, version, occurrence), result in zip(chunk, results, strict=True):
                if result.error is None:
                    self.counts.pushed += 1
                    self.session.delete(occurrence)
                    continue
                error = result.error
                if not isinstance(error, ProviderRejected) or error.status not in EVENT_REFUSALS:
                    return error
                self._skip(event_id, error)
                link.synced_version = min(link.synced_version, version - 1)
        return None

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
