"""Provider-neutral change-notification channels: what the engine opens, renews and stops."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class OpenedChannel:
    """A channel the provider granted: its id, Google's resource id, and its real expiry."""

    provider_channel_id: str
    resource_id: str | None
    expires_at: datetime


class ChannelClient(Protocol):
    """A provider's push channels for the connected calendar, as the connected account."""

    # Graph extends a subscription in place; a Google channel cannot be renewed, only
    # replaced by a new one (opened first, then the old one stopped).
    renews_in_place: bool

    def open(self, *, address: str, secret: str, ttl_seconds: int) -> OpenedChannel:
        """Open a channel delivering to ``address`` with ``secret``; the provider's grant."""

    def renew(self, provider_channel_id: str, *, ttl_seconds: int) -> datetime:
        """Extend a channel in place (when ``renews_in_place``); the expiry granted."""

    def stop(self, provider_channel_id: str, resource_id: str | None) -> None:
        """Stop a channel; one the provider no longer knows is already stopped."""

    def close(self) -> None:
        """Release the HTTP connections."""
