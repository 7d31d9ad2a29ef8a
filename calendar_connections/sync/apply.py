"""Applying what a provider listed to the CRM's events (the pull side of a sync)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, inspect, or_, select, text
from sqlalchemy.exc import InterfaceError, InternalError, OperationalError, StatementError
from sqlalchemy.orm import Session, contains_eager, joinedload

from ..models import (
    LINK_EVENT,
    LINK_OCCURRENCE,
    CalendarConnection,
    CalendarEvent,
    EventLink,
    new_uid,
    utcnow,
)
from ..models.event import storable_text
from ..providers.types import KIND_EXCEPTION, KIND_OCCURRENCE, EventFields, RemoteEvent
from .bulk import insert_rows
from .counts import Counts
from .fields import (
    assign_fields,
    event_columns,
    field_digests,
    fields_of,
    mark_synced,
    merge_exdates,
    occurrence_key,
    parse_occurrence_key,
    storable_fields,
)

log = logging.getLogger(__name__)

# The longest provider id and CRM uid the tables hold (event_link.external_id, event.uid).
EXTERNAL_ID_MAX_LENGTH = 1024
UID_LENGTH = 32


@dataclass
class Puller:
    """Applies one connection's remote events to the CRM, counting what changed."""

    session: Session
    connection: CalendarConnection
    round: int
    counts: Counts = field(default_factory=Counts)
    deferred: list[RemoteEvent] = field(default_factory=list)
    # Raises LeaseLost once the sync's lease is no longer surely held: asked before writes.
    guard: Callable[[], None] = lambda: None
    # The ``seen_round`` a listing gives the links it shows (see reconcile.UnconfirmedLinks).
    listed_round: int | None = None
    # When this sync began: the events it creates are newer. A later change to one (an
    # EXDATE from an instance listed after it) is part of its creation, not an update too.
    started: datetime = field(default_factory=utcnow)
    # The page being applied: its links by external id (None: known to have none) and the
    # CRM events its tags name, each read in one query (see ``load_page``).
    page_links: dict[str, EventLink | None] = field(default_factory=dict)
    page_tags: dict[str, CalendarEvent | None] = field(default_factory=dict)
    # Events the page created, as rows (an event's and its link's) written together by
    # ``write_created``: no ORM object each.
    new_rows: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)

    def load_page(self, items: list[RemoteEvent]) -> None:
        """Read the links of a page's items (and of their series), with their events, and the
        CRM events their tags name: one query each, instead of one per item."""
        wanted = {item.external_id for item in items}
        wanted |= {item.series_external_id for item in items if item.series_external_id}
        # An id no database could hold is looked up on its own, failing for its item alone.
        wanted = {name for name in wanted if storable_text(name, EXTERNAL_ID_MAX_LENGTH) == name}
        self.page_links = dict.fromkeys(wanted)
        self.page_tags = {}
        self.new_rows = {}
        if not wanted:
            return
        custom_plans(self.session)
        for link in self.session.execute(
            select(EventLink)
            .join(EventLink.event)
            .options(contains_eager(EventLink.event))
            .where(
                EventLink.connection_id == self.connection.id,
                EventLink.external_id.in_(sorted(wanted)),
            )
        ).scalars():
            self.page_links[link.external_id] = link
        tags = {
            item.crm_tag
            for item in items
            if item.crm_tag and self.page_links.get(item.external_id) is None
        }
        if not tags:
            return
        self.page_tags = dict.fromkeys(tags)
        named = [_tag_key(tag) for tag in tags]
        ids = [key for key in named if isinstance(key, int)]
        uids = [key for key in named if isinstance(key, str)]
        if not ids and not uids:
            return
        for event in self.session.execute(
            select(CalendarEvent).where(
                CalendarEvent.user_id == self.connection.user_id,
                or_(CalendarEvent.id.in_(ids), CalendarEvent.uid.in_(uids)),
            )
        ).scalars():
            for tag in (str(event.id), event.uid):
                if tag in self.page_tags:
                    self.page_tags[tag] = event

    def forget_page(self) -> None:
        """Drop the page's links and events (so that the session holds no more than a page)."""
        self.page_links = {}
        self.page_tags = {}

    def flush(self) -> None:
        """Write what the page changed: the ORM's changes, then the events it created."""
        self.session.flush()
        self.write_created()

    def write_created(self) -> None:
        """Insert the events the page created and their links: a statement or two each."""
        if not self.new_rows:
            return
        rows, self.new_rows = list(self.new_rows.values()), {}
        self.session.flush()  # the ORM's deletes first: a new link may reuse an external id
        inserted = insert_rows(
            self.session, _table(CalendarEvent), [row for row, _ in rows], ("uid", "id")
        )
        ids: dict[str, int] = dict(inserted)
        links = [{**link, "event_id": ids[row["uid"]]} for row, link in rows]
        insert_rows(self.session, _table(EventLink), links)
        for _, link in rows:
            self.page_links.pop(link["external_id"], None)  # read from the database now

    def link_for(self, external_id: str) -> EventLink | None:
        """The link of this connection to ``external_id``."""
        if external_id in self.new_rows:
            self.write_created()
        if external_id in self.page_links:
            link = self.page_links[external_id]
            if link is None or not _removed(self.session, link):
                return link
            self.page_links[external_id] = None
            return None
        return self.session.execute(
            select(EventLink)
            .options(joinedload(EventLink.event))
            .where(
                EventLink.connection_id == self.connection.id,
                EventLink.external_id == external_id,
            )
        ).scalar_one_or_none()

    def _linked(self, link: EventLink) -> None:
        """A link added by this page: later items of the page find it without a query."""
        if link.external_id in self.page_links:
            self.page_links[link.external_id] = link

    def seen(self, link: EventLink) -> None:
        """The listing showed ``link``'s provider event."""
        link.seen_round = self._seen_round(link.kind)

    def _seen_round(self, kind: str) -> int:
        if kind == LINK_EVENT and self.listed_round is not None:
            return self.listed_round
        return self.round

    def created_now(self, event: CalendarEvent) -> bool:
        """Whether this sync created ``event`` (from this connection's provider)."""
        return event.origin == self.connection.provider and event.created_at >= self.started

    def link_for_event(self, event_id: int) -> EventLink | None:
        """The link of this connection to the CRM event itself (not to an occurrence)."""
        return self.session.execute(
            select(EventLink).where(
                EventLink.connection_id == self.connection.id,
                EventLink.event_id == event_id,
                EventLink.kind == LINK_EVENT,
            )
        ).scalar_one_or_none()

    def _tagged_event(self, tag: str | None) -> CalendarEvent | None:
        """The user's CRM event a provider event's tag names: its API id (or, on events
        pushed by earlier versions, its uid)."""
        if not tag:
            return None
        if tag in self.page_tags:
            return self.page_tags[tag]
        key = _tag_key(tag)
        if key is None:
            return None
        mine = CalendarEvent.user_id == self.connection.user_id
        if isinstance(key, int):
            named = CalendarEvent.id == key
        else:
            named = CalendarEvent.uid == key
        return self.session.execute(select(CalendarEvent).where(mine, named)).scalar_one_or_none()

    def apply(self, remote: RemoteEvent) -> None:
        """Apply one listed item: create, update or delete the CRM event it stands for."""
        if remote.kind == KIND_OCCURRENCE and not remote.cancelled:
            self.note_occurrence(remote)
        elif remote.cancelled and remote.series_external_id and remote.original_start:
            self._cancel_instance(remote)
        elif remote.cancelled:
            self.remove(remote.external_id, remote.updated)
        else:
            self._upsert(remote)

    def note_occurrence(self, remote: RemoteEvent) -> bool:
        """Remember an unchanged occurrence of a known series; False if the series is unknown."""
        series = self.link_for(remote.series_external_id or "")
        if series is None or remote.original_start is None:
            self.deferred.append(remote)
            return False
        self.seen(series)
        link = self.link_for(remote.external_id)
        if link is None:
            link = EventLink(
                connection_id=self.connection.id,
                event=series.event,
                external_id=remote.external_id,
                kind=LINK_OCCURRENCE,
            )
            self.session.add(link)
            self._linked(link)
        link.original_start = occurrence_key(remote.original_start)
        link.etag = remote.etag
        self.seen(link)
        return True

    def _cancel_instance(self, remote: RemoteEvent) -> None:
        series_link = self.link_for(remote.series_external_id or "")
        if series_link is None:
            self.deferred.append(remote)
            return
        assert remote.original_start is not None
        self.add_exdate(series_link.event, remote.original_start)
        moved = self.link_for(remote.external_id)
        if moved is not None and moved.event is not series_link.event:
            self.remove(remote.external_id, remote.updated)

    def add_exdate(self, series: CalendarEvent, original_start: datetime | date) -> None:
        """Record a cancelled instance on its series, once."""
        if series.cancel_occurrence(original_start):
            if series.id is None:
                self.session.flush()  # created by this page: its link is found by its id
            self._pulled_change(series, self.link_for_event(series.id), None)
            self.counts.updated += not self.created_now(series)

    def _pulled_change(
        self, event: CalendarEvent, link: EventLink | None, when: datetime | None
    ) -> None:
        """A change the provider made: other connections of the event must get it (a new
        version), this one has it already (its link is in sync with that version)."""
        event.touch(when)
        if link is not None:
            mark_synced(link, event.version, fields_of(event))

    def remove(self, external_id: str, remote_updated: datetime | None) -> None:
        """The provider deleted ``external_id``: delete the CRM event, unless the CRM wins."""
        link = self.link_for(external_id)
        if link is None:
            return
        event = link.event
        if link.kind == LINK_OCCURRENCE:
            if link.original_start:
                self.add_exdate(event, parse_occurrence_key(link.original_start))
            self.session.delete(link)
            return
        unsynced = event.version > link.synced_version and event.deleted_at is None
        if unsynced and (remote_updated is None or event.updated_at > remote_updated):
            # Changed in the CRM after the provider deleted it: the later change wins, so the
            # event stays and the push creates it again.
            self.session.delete(link)
            return
        self.session.delete(link)
        if event.series_id is not None and event.original_start is not None:
            # A moved instance deleted: its slot is cancelled too, or the series shows it again.
            series = self.session.get(CalendarEvent, event.series_id)
            if series is not None:
                self.add_exdate(series, event.original_start)
        self.delete_event(event, except_link=link)

    def delete_event(self, event: CalendarEvent, except_link: EventLink | None = None) -> None:
        """Delete a CRM event; keep a tombstone while other providers still have it."""
        others = [
            other
            for other in event.links
            if other is not except_link and other.connection_id != self.connection.id
        ]
        if event.deleted_at is None:
            self.counts.deleted += 1
        # A series takes its moved instances with it: delete (and count) them here rather
        # than leave them to the database's cascade, unseen by other providers' links.
        instances = select(CalendarEvent).where(
            CalendarEvent.series_id == event.id, CalendarEvent.deleted_at.is_(None)
        )
        for instance in list(self.session.execute(instances).scalars()):
            for own in [x for x in instance.links if x.connection_id == self.connection.id]:
                instance.links.remove(own)  # delete-orphan: this connection's link goes too
            self.delete_event(instance)
            self.session.flush()  # before the series' own delete would cascade to it
        if others:
            event.tombstone()
        else:
            self.session.delete(event)

    def _upsert(self, remote: RemoteEvent) -> None:
        link = self.link_for(remote.external_id)
        if link is None:
            tagged = self._tagged_event(remote.crm_tag)
            if tagged is not None:
                # Our own event, pushed by a sync that died before recording it. Unless it
                # matches the CRM's, which version it holds is unknown: the later modification
                # decides, so a CRM edit made since is not overwritten by the older copy. A
                # tombstone is linked too, so that the push deletes this copy.
                same = storable_fields(remote.fields) == fields_of(tagged)
                same = same and tagged.deleted_at is None
                link = EventLink(
                    connection_id=self.connection.id,
                    event_id=tagged.id,
                    external_id=remote.external_id,
                    kind=LINK_EVENT,
                )
                mark_synced(
                    link, tagged.version if same else 0, fields_of(tagged) if same else None
                )
                self.session.add(link)
                link.event = tagged
                self._linked(link)
        if link is None:
            self._create(remote)
            return
        self.seen(link)
        event = link.event
        if link.kind == LINK_OCCURRENCE:
            # An occurrence we knew became an exception: it is now an event of its own.
            self.session.delete(link)
            self.session.flush()
            self._create(remote)
            return
        if remote.etag and link.etag == remote.etag:
            return  # our own write coming back, or nothing new
        if event.deleted_at is not None:
            if not self._edited_after_delete(event, link, remote):
                return  # deleted in the CRM: the push deletes it at the provider
            # Changed at the provider after the CRM deleted it: the later change wins.
            event.deleted_at = None
            assign_fields(event, _incoming(remote, event))
            self._pulled_change(event, link, remote.updated)
            self.counts.updated += 1
            link.etag, link.remote_updated_at = remote.etag, remote.updated
            return
        unsynced = event.version > link.synced_version
        if unsynced and not (remote.updated and remote.updated > event.updated_at):
            # The CRM's later change wins: the push overwrites the provider's whole version.
            link.etag, link.synced_fields = remote.etag, None
            return
        incoming = _incoming(remote, event)
        if incoming != fields_of(event):
            assign_fields(event, incoming)
            self._pulled_change(event, link, remote.updated)
            self.counts.updated += not self.created_now(event)
        link.etag = remote.etag
        link.remote_updated_at = remote.updated
        mark_synced(link, event.version, fields_of(event))

    @staticmethod
    def _edited_after_delete(event: CalendarEvent, link: EventLink, remote: RemoteEvent) -> bool:
        """Whether the provider changed an event we know (not a copy found by its tag) after
        the CRM deleted it."""
        assert event.deleted_at is not None
        known = link.synced_version > 0 and link.etag is not None
        return known and remote.updated is not None and remote.updated > event.deleted_at

    def _create(self, remote: RemoteEvent) -> None:
        if remote.kind == KIND_EXCEPTION and remote.series_external_id:
            self._create_instance(remote)
            return
        columns = event_columns(storable_fields(remote.fields))
        now = utcnow()
        event = {
            **columns,
            "uid": new_uid(),
            "user_id": self.connection.user_id,
            "origin": self.connection.provider,
            "version": 1,
            "created_at": now,
            "updated_at": remote.updated or now,
            "deleted_at": None,
            "series_id": None,
            "original_start_at": None,
            "original_start_date": None,
        }
        link = {
            "connection_id": self.connection.id,
            "external_id": remote.external_id,
            "kind": LINK_EVENT,
            "original_start": None,
            "etag": remote.etag,
            "remote_updated_at": remote.updated,
            "synced_version": 1,
            "synced_fields": field_digests(EventFields(**columns)),
            "seen_round": self._seen_round(LINK_EVENT),
        }
        self.new_rows[remote.external_id] = (event, link)
        self.counts.created += 1

    def _create_instance(self, remote: RemoteEvent) -> None:
        """A moved or changed instance of a series: an event of its own, after its series."""
        assert remote.series_external_id is not None
        series_link = self.link_for(remote.series_external_id)
        if series_link is None:
            self.deferred.append(remote)
            return
        series = series_link.event
        self.seen(series_link)
        event = CalendarEvent(
            user_id=self.connection.user_id, origin=self.connection.provider, version=1
        )
        assign_fields(event, storable_fields(remote.fields))
        if remote.original_start is not None:
            if series.id is None:
                self.session.flush()  # created by this page
            event.series_id = series.id
            if isinstance(remote.original_start, datetime):
                event.original_start_at = remote.original_start
            else:
                event.original_start_date = remote.original_start
            event.recurrence = None
        now = utcnow()
        event.created_at = now
        event.updated_at = remote.updated or now
        self.session.add(event)
        link = EventLink(
            connection_id=self.connection.id,
            event=event,
            external_id=remote.external_id,
            kind=LINK_EVENT,
            etag=remote.etag,
            remote_updated_at=remote.updated,
        )
        self.seen(link)
        mark_synced(link, 1, fields_of(event))
        self.session.add(link)
        self._linked(link)
        self.counts.created += 1

    def apply_deferred(self) -> None:
        """Instances listed before their series: apply them now the listing is complete."""
        pending, self.deferred = self.deferred, []
        for remote in pending:
            self.apply(remote)
        for remote in self.deferred:
            log.warning(
                "connection %s: instance %s of an unknown series %s was skipped",
                self.connection.id,
                remote.external_id,
                remote.series_external_id,
            )
        self.deferred = []
        self.flush()


def _incoming(remote: RemoteEvent, event: CalendarEvent) -> EventFields:
    """The provider's version as the CRM stores it, keeping the cancelled instances the CRM
    already knows of."""
    incoming = storable_fields(remote.fields)
    incoming.recurrence = merge_exdates(incoming.recurrence, event.recurrence)
    return incoming


# Errors that concern one listed item's data, not the database or the sync as a whole.
_UNSTORABLE = (StatementError, ValueError, TypeError)
_NOT_THE_ITEM = (OperationalError, InterfaceError, InternalError)


def apply_page(
    puller: Puller,
    items: list[RemoteEvent],
    before: Callable[[RemoteEvent], None] | None = None,
    on_rollback: Callable[[], None] | None = None,
) -> None:
    """Apply one listed page, leaving out (and recording) any item the CRM cannot store.

    The page's links are read in one query and its writes flushed together. When that fails
    on an item's data, the page is rolled back and applied again flushing each item on its
    own, so the one that fails is known; it is then rolled back and applied once more without
    it, so nothing of it is half-written. A skipped item's link, if it has one, still counts
    as listed, so that reconciliation does not take it for deleted.
    """
    skipped: set[str] = set()
    one_by_one = False
    try:
        while True:
            saved = puller.counts.snapshot()
            deferred = list(puller.deferred)
            current: RemoteEvent | None = None
            try:
                puller.load_page(items)
                for current in items:
                    if current.external_id in skipped:
                        link = puller.link_for(current.external_id)
                        if link is not None:
                            puller.seen(link)
                        continue
                    if before is not None:
                        before(current)
                    puller.apply(current)
                    if one_by_one:
                        puller.flush()
                current = None
                puller.flush()
                return
            except _UNSTORABLE as exc:
                if isinstance(exc, _NOT_THE_ITEM):
                    raise
                puller.session.rollback()
                puller.counts.restore(saved)
                puller.deferred = deferred
                if on_rollback is not None:
                    on_rollback()
                if not one_by_one or current is None:
                    if one_by_one:
                        raise
                    one_by_one = True  # which item failed is not known: find it
                    continue
                skipped.add(current.external_id)
                reason = _short_reason(exc)
                puller.counts.skip(f"provider event {current.external_id}", reason)
                log.warning(
                    "connection %s: provider event %s skipped: %s",
                    puller.connection.id,
                    current.external_id,
                    reason,
                )
    finally:
        puller.forget_page()


def custom_plans(session: Session) -> None:
    """Plan the page's statements for their own values, until the page's commit (PostgreSQL).

    psycopg prepares a statement run five times; PostgreSQL then may plan it once for any
    values, with the statistics of a table this very sync is filling. Such a generic plan of
    the page's lookup (hundreds of ids in an IN list) cost about 70 ms a page at 10,000
    links against 1-5 ms planned for the page's values."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _table(model: type[CalendarEvent] | type[EventLink]) -> Table:
    """A model's table, for bulk statements."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _tag_key(tag: str) -> int | str | None:
    """What a CRM tag names: an event's API id (at most 32 bits, as the API's), a uid (32
    hex digits, from earlier versions), or nothing the CRM could hold."""
    if tag.isdigit() and len(tag) < 19:
        number = int(tag)
        return number if number < 2**31 else None
    if tag.isascii() and tag.isprintable() and len(tag) <= UID_LENGTH:
        return tag
    return None


def _removed(session: Session, link: EventLink) -> bool:
    """Whether ``link`` was deleted in this session (flushed or not)."""
    state = inspect(link)
    return state.deleted or state.was_deleted or link in session.deleted


def _short_reason(exc: Exception) -> str:
    if isinstance(exc, StatementError) and exc.orig is not None:
        text = str(exc.orig)
    else:
        text = str(exc)
    return (text.splitlines() or [type(exc).__name__])[0][:200]
