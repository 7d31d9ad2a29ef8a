"""A user's connection to a provider, its OAuth tokens, and pending authorizations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    column,
    func,
    literal_column,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, SyncStatus, UTCDateTime, utcnow
from .event import EventLink

# What a connection never synced counts as its last sync: before any real one. One key, so
# that one index range is both "stale" and "oldest first" (an OR with IS NULL is not a range,
# and SQLite has no NULLS FIRST in an index). Written as SQL, the same in the index and in the
# queries, for PostgreSQL to match them.
NEVER_SYNCED_AT = "'1970-01-01 00:00:00'"


class CalendarConnection(Base):
    """One CRM user's link to one provider account (at most one per provider)."""

    __tablename__ = "calendar_connection"
    __table_args__ = (
        UniqueConstraint("user_id", "provider"),
        # The scheduler's claim walks this in OLDEST_SYNC_FIRST order and stops after its
        # batch, instead of reading and sorting every connection.
        Index(
            "ix_calendar_connection_sync_order",
            func.coalesce(column("last_sync_at"), literal_column(NEVER_SYNCED_AT)),
            "id",
            postgresql_where=column("connected"),
            sqlite_where=column("connected"),
        ),
        # Connections a trusted push notification made due: few rows, found without a scan.
        Index(
            "ix_calendar_connection_push_due_at",
            "push_due_at",
            postgresql_where=column("push_due_at").is_not(None),
            sqlite_where=column("push_due_at").is_not(None),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    calendar_id: Mapped[str | None] = mapped_column(String(1024))
    account_email: Mapped[str | None] = mapped_column(String(320))
    connected: Mapped[bool] = mapped_column(default=False)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_sync_status: Mapped[str] = mapped_column(String(16), default=SyncStatus.PENDING.value)
    last_sync_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    # Sync state. `sync_cursor` is Google's sync token or Graph's delta link, saved only once
    # every page of its round is applied; `full_round` numbers full listings so that links the
    # provider no longer lists can be found (reconciliation).
    sync_cursor: Mapped[str | None] = mapped_column(Text)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    full_round: Mapped[int] = mapped_column(default=0)
    # The sync lease: one sync per connection across threads, workers and hosts.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Push notifications. `push_expires_at` is the latest expiry of an open channel (NULL: no
    # push), kept here so that the scheduler's claim needs no join; `push_due_at` says a
    # trusted notification arrived and no sync has started since; `push_error` says why push
    # is not active; `push_retry_at`, after a provider refused to open a channel, when opening
    # is tried again (not at every sync: it would refuse again).
    push_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    push_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    push_error: Mapped[str | None] = mapped_column(Text)
    push_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    token: Mapped[OAuthToken | None] = relationship(
        back_populates="connection", cascade="all, delete-orphan", uselist=False
    )
    links: Mapped[list[EventLink]] = relationship(cascade="all, delete-orphan")

    def reset_sync_state(self) -> None:
        """Forget cursors and window: the next sync is a full, reconciling one."""
        self.sync_cursor = None
        self.window_start = None
        self.window_end = None

    def __repr__(self) -> str:
        return f"<CalendarConnection {self.id} user={self.user_id!r} {self.provider}>"


class OAuthToken(Base):
    """A connection's OAuth tokens, encrypted (Fernet) at rest; never logged or returned."""

    __tablename__ = "oauth_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("calendar_connection.id", ondelete="CASCADE"), unique=True
    )
    access_token_encrypted: Mapped[str] = mapped_column(Text)
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    token_type: Mapped[str] = mapped_column(String(32), default="Bearer")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scopes: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    connection: Mapped[CalendarConnection] = relationship(back_populates="token")

    def __repr__(self) -> str:  # never the token itself
        return f"<OAuthToken connection={self.connection_id}>"


class OAuthState(Base):
    """A pending authorization: single-use, bound to a user and a provider, short-lived."""

    __tablename__ = "oauth_state"

    # SHA-256 of the `state` sent to the provider: the value itself is never stored.
    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(16))
    code_verifier_encrypted: Mapped[str] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<OAuthState user={self.user_id!r} {self.provider}>"
