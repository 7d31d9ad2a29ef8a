"""What the provider answered to a batch of writes: each answer recorded, resolved alone or
skipped, for its own event."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from ..ical.recurrence import exdates
from ..ical.rrule import RecurrenceError
from ..models import LINK_EVENT, LINK_OCCURRENCE, CalendarEvent, EventLink
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
from .fields import assign_fields, field_digests, fields_of, mark_synced, occurrence_key
from .reconcile import UNLISTED

log = logging.getLogger(__name__)

# Statuses of a refused write that concern that one event (skipped), not the whole sync.
EVENT_REFUSALS = (400, 403, 413, 422)


class EventVanished(Exception):
    """The CRM event was deleted while the provider wrote it; its copy must be removed."""

    def __init__(self, external_id: str) -> None:
        super().__init__(external_id)
        self.external_id = external_id


@dataclass
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


def refused(error: Exception) -> bool:
    """Whether the provider refused a write for that event alone (skipped, left pending)."""
    if isinstance(error, ProviderRejected):
        return error.status in EVENT_REFUSALS
    return isinstance(error, RecurrenceError)


class Answers:
    """Settles a batch's answers for one connection; what goes wrong stays with its event."""

    def __init__(self, puller: Puller, client: CalendarClient, capabilities: Capabilities) -> None:
        self.puller = puller
        self.session = puller.session
        self.connection = puller.connection
        self.client = client
        self.counts = puller.counts
        self.capabilities = capabilities
        # Occurrences a written series excludes, to delete where there is no EXDATE: with
        # the event's id, the series' link and the version that write carried.
        self.excluded: list[tuple[int, EventLink, int, EventLink]] = []

    def settle(
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
            self.excluded.clear()
            return self._settle_local(answered)

    def _settle_local(
        self, answered: list[tuple[PushItem, WriteResult]]
    ) -> tuple[list[tuple[PushItem, WriteResult]], Exception | None]:
        ids = [item.event_id for item, _ in answered]
        present = set(
            self.session.scalars(select(CalendarEvent.id).where(CalendarEvent.id.in_(ids)))
        )
        known = self._links_of(answered)
        new_links: list[dict[str, Any]] = []
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
                self._record_answer(item, result, known, new_links)
            elif isinstance(error, WriteConflict | RemoteGone) and item.kind == "update":
                alone.append((item, result))
            elif isinstance(error, RemoteGone):
                self.skip(item.event_id, Exception(f"the provider event {error} is gone"))
            elif refused(error):
                self.skip(item.event_id, error)
            else:
                failure = failure or error
        try:
            self.session.flush()
            if new_links:  # the batch's new links, in one statement
                self.session.execute(insert(EventLink), new_links)
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

    def _record_answer(
        self,
        item: PushItem,
        result: WriteResult,
        known: dict[str, EventLink],
        new_links: list[dict[str, Any]],
    ) -> None:
        if item.kind == "delete":
            self.deleted(item.event, item.link)
            return
        payload, remote = item.write.payload, result.remote
        assert payload is not None and remote is not None
        link = item.link or known.get(remote.external_id)
        if link is None and item.kind == "insert" and not item.event.recurrence:
            # A new link, bulk-inserted with the batch's others (a series' goes through the
            # ORM: its excluded occurrences are looked up with it).
            new_links.append(
                {
                    "connection_id": self.connection.id,
                    "event_id": item.event_id,
                    "external_id": remote.external_id,
                    "kind": LINK_EVENT,
                    "etag": remote.etag,
                    "remote_updated_at": remote.updated,
                    "synced_version": item.version,
                    "synced_fields": field_digests(payload.fields),
                    # It waits for a listing to show it (see reconcile.UnconfirmedLinks).
                    "seen_round": UNLISTED,
                }
            )
            self.counts.pushed += 1
            return
        fields = payload.fields
        self.record(item.event, link, remote, item.version, fields, item.kind, batched=True)

    def settle_alone(self, item: PushItem, result: WriteResult) -> Exception | None:
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
            if not refused(exc):
                return exc
            self.skip(item.event_id, exc)
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
                self.record(event, link, remote, item.version, payload.fields, item.kind)
            return
        # Deleted at the provider while changed in the CRM: the CRM's change is the later
        # one, so the event is created again (written first: a refusal leaves the link).
        target, remote = self._insert_remote(event, payload)
        if remote is None:
            return
        self.session.delete(link)
        self.session.flush()
        kind = "insert" if target is None else "move"
        self.record(event, target, remote, item.version, payload.fields, kind)

    def skip(self, event_id: int, exc: Exception) -> None:
        reason = exc.message if isinstance(exc, ProviderRejected) else str(exc)
        self.counts.skip(f"CRM event {event_id}", reason)
        log.warning("connection %s: CRM event %s skipped: %s", self.connection.id, event_id, reason)

    def record(
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
            self.queue_exclusions(event, link, version)

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
            occurrence = self.occurrence_link(event.series_id, payload.original_start)
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

    def deleted(self, event: CalendarEvent, link: EventLink | None) -> None:
        """The provider deleted the event's copy: forget the link, and the event if no other
        provider holds it."""
        self.counts.pushed += 1
        if link is not None:
            self.session.delete(link)
            self.session.flush()
        self.forget(event)

    def forget(self, event: CalendarEvent) -> None:
        self.session.refresh(event)
        if not event.links:
            self.session.delete(event)

    def occurrence_link(self, series_id: int | None, original_start: object) -> EventLink | None:
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

    def queue_exclusions(self, event: CalendarEvent, link: EventLink, version: int) -> None:
        """Without EXDATE at the provider: the occurrences the CRM series excludes are
        deleted after its batch."""
        if not event.recurrence or self.capabilities.supports_exdate:
            return
        zone = event.time_zone if not event.all_day else None
        for value in exdates(list(event.recurrence or []), zone):
            occurrence = self.occurrence_link(event.id, value)
            if occurrence is not None:
                self.excluded.append((event.id, link, version, occurrence))
