"""A provider's change-notification channel: a Google channel or a Graph subscription."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow


class PushChannel(Base):
    """One open channel of a connection; during a Google renewal a connection has two."""

    __tablename__ = "push_channel"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("calendar_connection.id", ondelete="CASCADE"), index=True
    )
    # Google: the channel id (a UUID of ours); Graph: the subscription id (Graph's GUID).
    provider_channel_id: Mapped[str] = mapped_column(String(255), unique=True)
    # Google's X-Goog-Resource-ID, needed to stop the channel; Graph has none.
    resource_id: Mapped[str | None] = mapped_column(String(255))
    # SHA-256 hex of the channel token / clientState: the secret itself is sent once, never
    # stored in clear and never logged.
    secret_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When the scheduler renews it: at most half the granted lifetime after it was opened or
    # renewed. A renewer claims a channel by moving this forward (see sync/channels.py).
    renew_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:  # never the secret's hash either
        return f"<PushChannel {self.id} connection={self.connection_id}>"
