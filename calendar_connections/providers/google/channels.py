"""Google Calendar push channels: ``events.watch`` on the connected calendar, ``channels.stop``.

A channel cannot be renewed: the engine opens a new one before the old one ends, then stops
the old one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import quote

from ..channels import OpenedChannel
from ..errors import ProviderRejected
from ..session import ProviderSession, raise_for_status
from .account import LABEL


class GoogleChannels:
    """Channels on the events of one Google calendar."""

    renews_in_place = False

    def __init__(self, http: ProviderSession, base_url: str, calendar_id: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._calendar_id = calendar_id

    def open(self, *, address: str, secret: str, ttl_seconds: int) -> OpenedChannel:
        """``POST /calendars/{id}/events/watch`` with a new UUID as the channel id."""
        body = {
            "id": str(uuid.uuid4()),
            "type": "web_hook",
            "address": address,
            "token": secret,
            "params": {"ttl": str(ttl_seconds)},
        }
        url = f"{self._base}/calendars/{quote(self._calendar_id, safe='')}/events/watch"
        response = self._http.request("POST", url, json=body)
        raise_for_status(response, LABEL, "open a push channel")
        granted = response.json()
        try:
            # `expiration` is milliseconds since the epoch, as a string.
            expires_at = datetime.fromtimestamp(int(granted["expiration"]) / 1000, UTC)
            return OpenedChannel(
                provider_channel_id=str(granted.get("id") or body["id"]),
                resource_id=str(granted["resourceId"]),
                expires_at=expires_at,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderRejected(
                f"{LABEL} answered a watch request without a channel expiry or resource id."
            ) from exc

    def renew(self, provider_channel_id: str, *, ttl_seconds: int) -> datetime:
        """Google channels cannot be renewed in place."""
        raise ProviderRejected(f"{LABEL} channels cannot be renewed: open a new one.")

    def stop(self, provider_channel_id: str, resource_id: str | None) -> None:
        """``POST /channels/stop``; a channel Google no longer knows (404) is already stopped."""
        response = self._http.request(
            "POST",
            f"{self._base}/channels/stop",
            json={"id": provider_channel_id, "resourceId": resource_id},
        )
        if response.status_code != 404:
            raise_for_status(response, LABEL, "stop a push channel")

    def close(self) -> None:
        """Release the HTTP connections."""
        self._http.close()
