"""Microsoft Graph change-notification subscriptions on the connected calendar's events.

Graph refuses (400) an ``expirationDateTime`` beyond the resource's maximum, and its
documentation gives two different maximums for events: the lifetime asked is what
``PUSH_CHANNEL_TTL`` says, and when Graph answers with the maximum it allows ("can only be N
minutes in the future"), the request is made once more within it. The expiry used is always
the one Graph answers with.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import requests

from ...models import utcnow
from ..channels import OpenedChannel
from ..errors import ProviderRejected
from ..session import ProviderSession, error_summary, raise_for_status
from .account import LABEL

CHANGE_TYPES = "created,updated,deleted"
_MAXIMUM_MINUTES = re.compile(r"(\d+)\s+minutes")


def _graph_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _granted_expiry(response: requests.Response) -> datetime:
    try:
        return datetime.fromisoformat(str(response.json()["expirationDateTime"])).astimezone(UTC)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderRejected(f"{LABEL} answered a subscription without its expiry.") from exc


class GraphSubscriptions:
    """Subscriptions on the events of one Outlook calendar (or the default one)."""

    renews_in_place = True

    def __init__(self, http: ProviderSession, base_url: str, calendar_id: str | None) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        # A resource path, not a URL: the calendar id goes as Graph gave it.
        self.resource = f"me/calendars/{calendar_id}/events" if calendar_id else "me/events"

    def _send_expiring(
        self, method: str, url: str, body: dict[str, str], ttl_seconds: int
    ) -> requests.Response:
        body = {
            **body,
            "expirationDateTime": _graph_instant(utcnow() + timedelta(seconds=ttl_seconds)),
        }
        response = self._http.request(method, url, json=body)
        if response.status_code == 400:
            maximum = _MAXIMUM_MINUTES.search(error_summary(response))
            if maximum and int(maximum.group(1)) * 60 < ttl_seconds:
                # A minute of margin for the time the request takes to reach Graph.
                allowed = max(int(maximum.group(1)) - 1, 1) * 60
                body["expirationDateTime"] = _graph_instant(utcnow() + timedelta(seconds=allowed))
                response = self._http.request(method, url, json=body)
        return response

    def open(self, *, address: str, secret: str, ttl_seconds: int) -> OpenedChannel:
        """``POST /subscriptions``; Graph validates both URLs before it answers."""
        body = {
            "changeType": CHANGE_TYPES,
            "notificationUrl": address,
            "lifecycleNotificationUrl": address,
            "resource": self.resource,
            "clientState": secret,
        }
        response = self._send_expiring("POST", f"{self._base}/subscriptions", body, ttl_seconds)
        raise_for_status(response, LABEL, "open a change-notification subscription")
        subscription_id = response.json().get("id")
        if not subscription_id:
            raise ProviderRejected(f"{LABEL} answered a subscription without its id.")
        return OpenedChannel(
            provider_channel_id=str(subscription_id),
            resource_id=None,
            expires_at=_granted_expiry(response),
        )

    def renew(self, provider_channel_id: str, *, ttl_seconds: int) -> datetime:
        """``PATCH /subscriptions/{id}`` with a new ``expirationDateTime``; the one granted."""
        url = f"{self._base}/subscriptions/{quote(provider_channel_id, safe='')}"
        response = self._send_expiring("PATCH", url, {}, ttl_seconds)
        raise_for_status(response, LABEL, "renew a change-notification subscription")
        return _granted_expiry(response)

    def stop(self, provider_channel_id: str, resource_id: str | None) -> None:
        """``DELETE /subscriptions/{id}``; one Graph no longer knows (404) is already gone."""
        url = f"{self._base}/subscriptions/{quote(provider_channel_id, safe='')}"
        response = self._http.request("DELETE", url)
        if response.status_code != 404:
            raise_for_status(response, LABEL, "delete a change-notification subscription")

    def close(self) -> None:
        """Release the HTTP connections."""
        self._http.close()
