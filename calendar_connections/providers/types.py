"""Provider-neutral event types: what clients read from and write to a provider."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

KIND_SINGLE = "single"
KIND_MASTER = "master"
KIND_EXCEPTION = "exception"  # a moved or changed instance of a series
KIND_OCCURRENCE = "occurrence"  # an unchanged instance (Graph calendar views list them)


@dataclass
class EventFields:
    """The event data both sides share."""

    title: str = ""
    description: str | None = None
    location: str | None = None
    all_day: bool = False
    start_at: datetime | None = None
    end_at: datetime | None = None
    start_date: date | None = None
    end_date: date | None = None
    time_zone: str | None = None
    recurrence: list[str] | None = None
    status: str = "confirmed"

    @property
    def start(self) -> datetime | date | None:
        """The start, a UTC instant or a date."""
        return self.start_date if self.all_day else self.start_at

    @property
    def end(self) -> datetime | date | None:
        """The end (exclusive for all-day events)."""
        return self.end_date if self.all_day else self.end_at


@dataclass
class RemoteEvent:
    """An event as a provider listed it, translated to our terms."""

    external_id: str
    fields: EventFields = field(default_factory=EventFields)
    kind: str = KIND_SINGLE
    cancelled: bool = False
    etag: str | None = None
    updated: datetime | None = None
    series_external_id: str | None = None
    original_start: datetime | date | None = None
    crm_uid: str | None = None  # our tag, when the CRM pushed this event


@dataclass
class EventPayload:
    """A CRM event to write at a provider."""

    uid: str
    fields: EventFields
    series_external_id: str | None = None
    original_start: datetime | date | None = None


@dataclass
class Page:
    """One page of a listing; ``cursor`` is set on the last page only."""

    items: list[RemoteEvent]
    cursor: str | None = None


class SyncCursorExpired(Exception):
    """The provider no longer knows the sync token / delta link: a full sync is needed."""


class WriteConflict(Exception):
    """The provider refused a write because the event changed there (412/409)."""


class RemoteGone(Exception):
    """The event no longer exists at the provider (404/410 on a write or read)."""


class CalendarClient(Protocol):
    """What the sync engine needs from a provider."""

    def list_changes(
        self, cursor: str | None, window_start: datetime, window_end: datetime
    ) -> Iterator[Page]:
        """Pages of changes since ``cursor``, or of everything in the window when it is None."""
        ...

    def get(self, external_id: str) -> RemoteEvent:
        """One event (raises RemoteGone)."""
        ...

    def insert(self, payload: EventPayload) -> RemoteEvent:
        """Create the event (idempotent for one payload uid)."""
        ...

    def update(self, external_id: str, payload: EventPayload, etag: str | None) -> RemoteEvent:
        """Change the event (raises WriteConflict, RemoteGone)."""
        ...

    def delete(self, external_id: str) -> None:
        """Delete the event; an already deleted one is fine."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
