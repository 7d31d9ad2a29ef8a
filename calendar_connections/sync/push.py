"""Pushing the CRM's changes to a provider in batches (the push side of a sync)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from ..models import CalendarEvent, EventLink
from ..providers.spec import Capabilities
from ..providers.types import CalendarClient, EventPayload, Write
from .apply import Puller
from .fields import changed_groups, fields_of, mark_synced
from .pending import pending_events, purge_tombstones
from .push_answers import Answers, PushItem, refused

__all__ = ["Pusher", "pending_events"]

log = logging.getLogger(__name__)


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
        self.answers = Answers(puller, client, capabilities)

    def push_all(self, window_start: datetime) -> None:
        """Push every pending event, ``client.batch_size`` writes per provider request. An
        event the provider refuses (or cannot express) is skipped and left pending; the
        others go on."""
        pending = pending_events(self.session, self.connection, window_start)
        size = max(1, self.client.batch_size)
        for start in range(0, len(pending), size):
            for wave in self._waves(pending[start : start + size]):
                self._push_batch(wave)
        purge_tombstones(self.session, self.connection)

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
        failure: Exception | None = None
        if items:
            failure = self._write_batch(items)
        if self.answers.excluded and failure is None:
            failure = self._delete_excluded()
            self.puller.guard()
            self.session.commit()
        if failure is not None:
            raise failure

    def _write_batch(self, items: list[PushItem]) -> Exception | None:
        """Send the items' writes as one batch and settle the answers: first every answer
        that needs no further provider call, saved together; then, one at a time and each
        saved alone, those resolved with calls of their own."""
        self.puller.guard()
        results = self.client.write_batch([item.write for item in items])
        alone, failure = self.answers.settle(list(zip(items, results, strict=True)))
        self.puller.guard()
        self.session.commit()
        for item, result in alone if failure is None else []:
            failure = self.answers.settle_alone(item, result)
            if failure is not None:
                break
            self.puller.guard()
            self.session.commit()
        return failure

    def _plan(self, event: CalendarEvent, link: EventLink | None) -> PushItem | None:
        """The write an event needs, or None when it needs none now (done locally, nothing
        the provider lacks, or waiting for its series)."""
        if event.deleted_at is not None:
            if link is None:
                self.answers.forget(event)
                return None
            write = Write("delete", external_id=link.external_id)
            return PushItem(event.id, event, link, "delete", write, event.version)
        payload = self._payload(event)
        if payload is None:
            return None
        version = event.version
        if link is None:
            if payload.series_external_id and self.capabilities.moves_instances_by_occurrence:
                occurrence = self.answers.occurrence_link(event.series_id, payload.original_start)
                if occurrence is None:
                    log.info("event %s: no listed occurrence to move; skipped", event.id)
                    return None
                write = Write("update", payload, occurrence.external_id)
                return PushItem(event.id, event, occurrence, "move", write, version)
            return PushItem(event.id, event, None, "insert", Write("insert", payload), version)
        payload.only = changed_groups(payload.fields, link.synced_fields)
        if payload.only is not None and not payload.only:
            mark_synced(link, version, payload.fields)  # nothing the provider lacks
            self.answers.queue_exclusions(event, link, version)
            return None
        write = Write("update", payload, link.external_id, link.etag)
        return PushItem(event.id, event, link, "update", write, version)

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

    def _delete_excluded(self) -> Exception | None:
        """Delete the queued excluded occurrences in batches. One the provider refuses
        leaves its series pending, so the next push tries again."""
        queued, self.answers.excluded = self.answers.excluded, []
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
                if not refused(error):
                    return error
                self.answers.skip(event_id, error)
                link.synced_version = min(link.synced_version, version - 1)
        return None
