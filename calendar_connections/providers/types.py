"""Provider-neutral event types: what clients read from and write to a provider."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol

KIND_SINGLE = "single"
KIND_MASTER = "master"
KIND_EXCEPTION = "exception"  # a moved or changed instance of a series
KIND_OCCURRENCE = "occurrence"  # an unchanged instance (Graph calendar views list them)


# What a write can change, in groups that providers write together: the times go as one.
FIELD_GROUPS = ("title", "description", "location", "time", "recurrence", "status")


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

    def groups(self) -> dict[str, object]:
        """The values of each of ``FIELD_GROUPS``."""
        return {
            "title": self.title,
            "description": self.description,
            "location": self.location,
            "time": (
                self.all_day,
                self.start_at,
                self.end_at,
                self.start_date,
                self.end_date,
                self.time_zone,
            ),
            "recurrence": self.recurrence,
            "status": self.status,
        }

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
    # Our tag, when the CRM pushed this event: the CRM event's API id (a uid on older pushes).
    crm_tag: str | None = None


def wanted(payload: EventPayload, *groups: str) -> bool:
    """Whether an update of ``payload`` writes any of the field ``groups`` (a create, all)."""
    return payload.only is None or any(group in payload.only for group in groups)


@dataclass
class EventPayload:
    """A CRM event to write at a provider.

    ``uid`` makes writes idempotent (Google's event id, Graph's transactionId); ``tag`` is
    what the provider event is tagged with: the CRM event's id as the API returns it.
    """

    uid: str
    tag: str
    fields: EventFields
    # On an update, the field groups to write (see ``FIELD_GROUPS``); None writes them all.
    only: frozenset[str] | None = None
    series_external_id: str | None = None
    original_start: datetime | date | None = None


@dataclass(frozen=True)
class Unreadable:
    """A listed item that could not be translated (odd provider data): skipped, not fatal."""

    external_id: str
    reason: str


@dataclass
class Page:
    """One page of a listing; ``cursor`` is set on the last page only."""

    items: list[RemoteEvent]
    cursor: str | None = None
    unreadable: list[Unreadable] = field(default_factory=list)


def translate_items(
    raw: list[Any], translate: Callable[[dict[str, Any]], RemoteEvent]
) -> tuple[list[RemoteEvent], list[Unreadable]]:
    """Translate a page's items one by one; those that cannot be read are set aside."""
    items: list[RemoteEvent] = []
    unreadable: list[Unreadable] = []
    for item in raw:
        try:
            items.append(translate(item))
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            item_id = item.get("id") if isinstance(item, dict) else None
            reason = f"unreadable {type(exc).__name__}: {str(exc)[:150]}"
            unreadable.append(Unreadable(str(item_id)[:200], reason))
    return items, unreadable


class SyncCursorExpired(Exception):
    """The provider no longer knows the sync token / delta link: a full sync is needed."""


class WriteConflict(Exception):
    """The provider refused a write because the event changed there (412/409)."""


class RemoteGone(Exception):
    """The event no longer exists at the provider (404/410 on a write or read)."""


@dataclass(frozen=True)
class Write:
    """One provider write of a batch.

    ``insert`` creates ``payload`` (idempotent for its uid); ``update`` patches
    ``external_id`` with ``payload``, guarded by ``etag`` when given; ``delete`` removes
    ``external_id`` (already gone is fine).
    """

    action: Literal["insert", "update", "delete"]
    payload: EventPayload | None = None
    external_id: str | None = None
    etag: str | None = None


@dataclass(frozen=True)
class WriteResult:
    """What became of one write of a batch: the provider's event (none for a delete), or the
    error that write alone met (WriteConflict, RemoteGone, a ProviderError, a RecurrenceError);
    the other writes of its batch are not affected."""

    remote: RemoteEvent | None = None
    error: Exception | None = None


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

    @property
    def batch_size(self) -> int:
        """The most writes the engine hands ``write_batch`` at once (one provider request, or
        a few sent together)."""
        ...

    def write_batch(self, writes: Sequence[Write]) -> list[WriteResult]:
        """Make ``writes`` (at most ``batch_size``), each result in the order of its write.

        A call the provider throttled (429, 5xx) is sent again on its own, in a later request,
        with the configured backoff; one that never got through has a ProviderUnavailable.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...
