"""CRM calendar events and their links to provider events."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..ical.recurrence import with_exdate
from .base import Base, UTCDateTime, utcnow

ORIGIN_CRM = "CRM"
LINK_EVENT = "event"
LINK_OCCURRENCE = "occurrence"

# The longest text the CRM stores, the same on SQLite and PostgreSQL: the API refuses more
# (422) and the sync cuts provider text to it. Documented in README ("Limits").
TITLE_MAX_LENGTH = 1024
LOCATION_MAX_LENGTH = 1024
DESCRIPTION_MAX_LENGTH = 65536
TIME_ZONE_MAX_LENGTH = 64
# The columns a CRM user (through the API) or a provider (through the sync) writes.
WRITABLE_COLUMNS = (
    "title",
    "description",
    "location",
    "all_day",
    "start_at",
    "end_at",
    "start_date",
    "end_date",
    "time_zone",
    "recurrence",
    "status",
)


def storable_text(text: str, limit: int) -> str:
    """Provider text as the CRM can store it everywhere: no NUL (PostgreSQL refuses it), lone
    surrogates (no encoding has them) replaced, at most ``limit`` characters."""
    if text.isascii():  # no surrogate: the common case, without the regular expression
        return text.replace("\x00", "")[:limit]
    return _SURROGATE.sub("\ufffd", text.replace("\x00", ""))[:limit]


_SURROGATE = re.compile("[\ud800-\udfff]")


def new_uid() -> str:
    """A stable, provider-safe identifier (hex is valid base32hex for Google ids)."""
    return uuid.uuid4().hex


class CalendarEvent(Base):
    """A CRM calendar event, owned by one CRM user.

    Timed events have ``start_at``/``end_at`` (UTC instants) and ``time_zone``; all-day events
    have ``start_date``/``end_date`` (end exclusive). A series carries RFC 5545 ``recurrence``
    lines; a moved or changed instance is an event of its own with ``series_id`` and its
    original start. ``version`` grows with every change made in the CRM, so the sync knows
    what to push; ``deleted_at`` marks a tombstone kept until the providers have deleted it.
    """

    __tablename__ = "calendar_event"
    __table_args__ = (
        Index("ix_calendar_event_user_id_start_at", "user_id", "start_at"),
        # The events list's order (operations.events): a user's live events by start, then id.
        Index(
            "ix_calendar_event_listing",
            "user_id",
            text("coalesce(start_at, start_date)"),
            "id",
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    user_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(TITLE_MAX_LENGTH), default="")
    description: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(LOCATION_MAX_LENGTH))
    all_day: Mapped[bool] = mapped_column(default=False)
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    time_zone: Mapped[str | None] = mapped_column(String(TIME_ZONE_MAX_LENGTH))
    recurrence: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    status: Mapped[str] = mapped_column(String(16), default="confirmed")
    series_id: Mapped[int | None] = mapped_column(
        ForeignKey("calendar_event.id", ondelete="CASCADE"), index=True
    )
    original_start_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    original_start_date: Mapped[date | None] = mapped_column(Date)
    origin: Mapped[str] = mapped_column(String(16), default=ORIGIN_CRM)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    links: Mapped[list[EventLink]] = relationship(
        back_populates="event", cascade="all, delete-orphan"
    )

    @property
    def original_start(self) -> datetime | date | None:
        """The instance's start in its series before it was moved (instances only)."""
        return self.original_start_at or self.original_start_date

    def touch(self, now: datetime | None = None) -> None:
        """Record a change: every linked provider not holding this version yet gets it."""
        self.version = (self.version or 0) + 1
        self.updated_at = now or utcnow()

    def writable_fields(self) -> dict[str, Any]:
        """The writable columns' values, by column name."""
        return {column: getattr(self, column) for column in WRITABLE_COLUMNS}

    def set_fields(self, fields: Mapping[str, Any]) -> bool:
        """Set the columns whose value differs; whether any did."""
        changed = False
        for column, value in fields.items():
            if getattr(self, column) != value:
                setattr(self, column, value)
                changed = True
        return changed

    def cancel_occurrence(self, original_start: datetime | date) -> bool:
        """Cancel one occurrence of this series with an EXDATE line (once); whether the rule
        changed. A single event, or a deleted series, has nothing to cancel."""
        if self.deleted_at is not None or not self.recurrence:
            return False
        zone = None if self.all_day else self.time_zone
        lines = with_exdate(list(self.recurrence), original_start, zone)
        if lines == self.recurrence:
            return False
        self.recurrence = lines
        return True

    def tombstone(self, now: datetime | None = None) -> None:
        """Mark the event deleted but keep its row (a tombstone), so that the sync sees the
        delete and carries it out at the providers still linked to it."""
        self.deleted_at = self.deleted_at or now or utcnow()
        self.touch(now)

    def __repr__(self) -> str:
        return f"<CalendarEvent {self.id} {self.title!r}>"


class EventLink(Base):
    """The provider event (or, for Outlook, series occurrence) a CRM event is synced with."""

    __tablename__ = "event_link"
    __table_args__ = (
        UniqueConstraint("connection_id", "external_id"),
        # An event's link with one connection in one probe: the push reads it per event.
        Index("ix_event_link_event_id_connection_id_kind", "event_id", "connection_id", "kind"),
        # A connection's links that a listing has still to confirm (sync.reconcile: pushed and
        # not listed yet, or shown by an incremental listing under way). Partial, so that no
        # other query of a connection's links can take it for a cheaper path.
        Index(
            "ix_event_link_unconfirmed",
            "connection_id",
            "seen_round",
            postgresql_where=text("seen_round <= 0"),
            sqlite_where=text("seen_round <= 0"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("calendar_connection.id", ondelete="CASCADE")
    )
    event_id: Mapped[int] = mapped_column(ForeignKey("calendar_event.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(1024))
    kind: Mapped[str] = mapped_column(String(16), default=LINK_EVENT)
    # For an occurrence: its start in the series, ISO 8601 (a date for all-day series).
    original_start: Mapped[str | None] = mapped_column(String(64))
    # Google etag / Graph changeKey of the provider version we last wrote or read.
    etag: Mapped[str | None] = mapped_column(String(255))
    remote_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    synced_version: Mapped[int] = mapped_column(Integer, default=0)
    # A digest per field group of what the provider holds since the last sync (None: not
    # known), so that an update writes only what the CRM changed since.
    synced_fields: Mapped[dict[str, str] | None] = mapped_column(JSON(none_as_null=True))
    seen_round: Mapped[int] = mapped_column(Integer, default=0)

    event: Mapped[CalendarEvent] = relationship(back_populates="links")

    def __repr__(self) -> str:
        return f"<EventLink {self.kind} event={self.event_id} conn={self.connection_id}>"
