"""Push notification state: Google channels, Graph subscriptions, lifetimes, delivery outcomes.

Writes to a calendar call ``google_changed`` / ``graph_changed`` (under the store's lock); they
queue one notification per live channel or subscription of that calendar on the store's
deliverer, which POSTs them from its own thread (``push_delivery``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from .timezones import graph_timestamp, now, rfc3339_millis

if TYPE_CHECKING:
    from .store import Account, SandboxStore

GOOGLE_SYNC = "google.sync"
GOOGLE_EXISTS = "google.exists"
GRAPH_VALIDATION = "graph.validation"
GRAPH_CHANGE = "graph.change"
GRAPH_LIFECYCLE = "graph.lifecycle"
MAX_DELIVERIES = 1000
DEFAULT_GOOGLE_CHANNEL_SECONDS = 604800  # Google's default channel lifetime: 7 days
DEFAULT_GRAPH_SUBSCRIPTION_SECONDS = 4230 * 60  # Graph's documented maximum for events
# The tenant a sandbox mailbox belongs to, as change notifications name it.
SANDBOX_TENANT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "sandbox:microsoft:tenant"))


@dataclass
class GoogleChannel:
    """A notification channel opened by ``events.watch`` on one account's calendar."""

    id: str
    resource_id: str
    resource_uri: str
    account: str
    calendar_id: str
    address: str
    token: str | None
    expiration: datetime
    opened_at: datetime
    stopped_at: datetime | None = None
    messages: int = 0  # the last X-Goog-Message-Number sent

    def live(self, moment: datetime) -> bool:
        """Whether the channel still sends notifications."""
        return self.stopped_at is None and moment < self.expiration

    def next_message(self, state: str) -> dict[str, str]:
        """The headers of this channel's next message (its number counted up)."""
        self.messages += 1
        headers = {
            "X-Goog-Channel-ID": self.id,
            "X-Goog-Channel-Expiration": format_datetime(self.expiration, usegmt=True),
            "X-Goog-Resource-ID": self.resource_id,
            "X-Goog-Resource-URI": self.resource_uri,
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(self.messages),
        }
        if self.token is not None:
            headers["X-Goog-Channel-Token"] = self.token
        return headers

    def as_json(self, moment: datetime) -> dict[str, Any]:
        """This channel as ``GET /sandbox/push`` lists it."""
        return {
            "id": self.id,
            "resourceId": self.resource_id,
            "account": self.account,
            "calendarId": self.calendar_id,
            "address": self.address,
            "expiration": rfc3339_millis(self.expiration),
            "expired": moment >= self.expiration,
            "stopped": self.stopped_at is not None,
            "openedAt": rfc3339_millis(self.opened_at),
            "stoppedAt": rfc3339_millis(self.stopped_at) if self.stopped_at else None,
            "messages": self.messages,
        }


@dataclass
class GraphSubscription:
    """A Graph subscription to one mailbox's events."""

    id: str
    account: str
    user_id: str
    resource: str
    change_type: str
    client_state: str | None
    notification_url: str
    lifecycle_url: str | None
    expiration: datetime
    created_at: datetime
    renewed_at: datetime | None = None
    deleted_at: datetime | None = None

    def live(self, moment: datetime) -> bool:
        """Whether the subscription still sends change notifications."""
        return self.deleted_at is None and moment < self.expiration

    def wants(self, change_type: str) -> bool:
        """Whether its ``changeType`` asks for ``change_type``."""
        return change_type in {part.strip() for part in self.change_type.split(",")}

    def resource_json(self) -> dict[str, Any]:
        """The subscription resource as Graph returns it."""
        return {
            "id": self.id,
            "resource": self.resource,
            "applicationId": None,
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": graph_timestamp(self.expiration),
            "creatorId": self.user_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }

    def as_json(self, moment: datetime) -> dict[str, Any]:
        """This subscription as ``GET /sandbox/push`` lists it."""
        return {
            "id": self.id,
            "account": self.account,
            "resource": self.resource,
            "changeType": self.change_type,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": graph_timestamp(self.expiration),
            "expired": moment >= self.expiration,
            "deleted": self.deleted_at is not None,
            "createdAt": rfc3339_millis(self.created_at),
            "renewedAt": rfc3339_millis(self.renewed_at) if self.renewed_at else None,
        }

    def envelope(self) -> dict[str, Any]:
        """The fields every notification of this subscription carries."""
        return {
            "subscriptionId": self.id,
            "subscriptionExpirationDateTime": graph_timestamp(self.expiration),
            "tenantId": SANDBOX_TENANT_ID,
            "clientState": self.client_state,
        }


@dataclass(frozen=True)
class Notification:
    """One queued POST: Google's header-only message, or one Graph notification item."""

    kind: str
    url: str
    target: str  # the channel or subscription id
    epoch: int  # the store's epoch when queued (a reset drops it)
    headers: dict[str, str] = field(default_factory=dict)
    item: dict[str, Any] | None = None
    attempt: int = 1  # 2 and more: sent again after a 5xx answer


@dataclass(frozen=True)
class Delivery:
    """The outcome of one POST to a notification URL."""

    kind: str
    url: str
    target: str
    status: int | None
    error: str | None
    at: datetime
    items: int = 1
    attempt: int = 1

    def as_json(self) -> dict[str, Any]:
        """This delivery as ``GET /sandbox/push`` lists it."""
        return {
            "kind": self.kind,
            "url": self.url,
            "target": self.target,
            "status": self.status,
            "error": self.error,
            "at": rfc3339_millis(self.at),
            "items": self.items,
            "attempt": self.attempt,
        }


class PushState:
    """Channels, subscriptions, lifetime caps and recent deliveries (guarded by the store)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.google_channel_seconds = int(
            config.get("SANDBOX_GOOGLE_CHANNEL_SECONDS") or DEFAULT_GOOGLE_CHANNEL_SECONDS
        )
        self.graph_subscription_seconds = int(
            config.get("SANDBOX_GRAPH_SUBSCRIPTION_SECONDS") or DEFAULT_GRAPH_SUBSCRIPTION_SECONDS
        )
        self.channels: dict[str, GoogleChannel] = {}
        self.subscriptions: dict[str, GraphSubscription] = {}
        self.deliveries: deque[Delivery] = deque(maxlen=MAX_DELIVERIES)

    def lifetimes(self) -> dict[str, int]:
        """The caps as the control API shows them."""
        return {
            "googleChannelSeconds": self.google_channel_seconds,
            "graphSubscriptionSeconds": self.graph_subscription_seconds,
        }

    def still_live(self, notification: Notification) -> bool:
        """Whether a queued notification should still go out (lifecycle ones always do)."""
        moment = now()
        if notification.kind in (GOOGLE_SYNC, GOOGLE_EXISTS):
            channel = self.channels.get(notification.target)
            return channel is not None and channel.live(moment)
        if notification.kind == GRAPH_CHANGE:
            subscription = self.subscriptions.get(notification.target)
            return subscription is not None and subscription.live(moment)
        return True


def google_resource_id(email: str) -> str:
    """Google's opaque id of an account's events collection (the same for every channel)."""
    return hashlib.sha256(f"sandbox:events:{email}".encode()).hexdigest()[:27]


def google_changed(store: SandboxStore, account: Account) -> None:
    """Queue an ``exists`` message on every live channel of the account's calendar."""
    moment = now()
    for channel in store.push.channels.values():
        if channel.account == account.email and channel.live(moment):
            store.deliverer.submit(
                Notification(
                    GOOGLE_EXISTS,
                    channel.address,
                    channel.id,
                    store.epoch,
                    headers=channel.next_message("exists"),
                )
            )


def graph_changed(
    store: SandboxStore, account: Account, event_id: str, change_type: str, change_key: str
) -> None:
    """Queue a change notification on every live subscription to the mailbox that wants it."""
    moment = now()
    resource = f"Users/{account.user_id}/Events/{event_id}"
    for subscription in store.push.subscriptions.values():
        if (
            subscription.account != account.email
            or not subscription.live(moment)
            or not subscription.wants(change_type)
        ):
            continue
        item = {
            **subscription.envelope(),
            "changeType": change_type,
            "resource": resource,
            "resourceData": {
                "@odata.type": "#Microsoft.Graph.Event",
                "@odata.id": resource,
                "@odata.etag": f'W/"{change_key}"',
                "id": event_id,
            },
        }
        store.deliverer.submit(
            Notification(
                GRAPH_CHANGE, subscription.notification_url, subscription.id, store.epoch, item=item
            )
        )
