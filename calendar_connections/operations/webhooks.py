"""Push notifications received: which ones to trust, and marking their connections due.

A notification is trusted only when its channel (Google) or subscription (Graph) is one of
ours and the secret it carries (``X-Goog-Channel-Token`` / ``clientState``) matches the one
sent when the channel was opened (compared in constant time), and, for Google, its resource
id is the channel's. A trusted change makes its connection due in the database (durable: a
scheduler round syncs it if this process never does), the mark is committed, and only then
is the connection handed to the process's dispatcher. Anything else changes nothing.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, update
from sqlalchemy.orm import Session

from ..config import Settings
from ..models import CalendarConnection
from ..models.push import PushChannel
from ..sync.channels import find_channel, find_channels, renew_now, reopen, secret_matches
from ..text import unstorable_reason

log = logging.getLogger(__name__)

# Longer values are none of ours: Google's channel ids and resource ids, Graph's GUIDs and
# the secrets we send (Google: up to 256 characters; Graph: 128) all fit.
MAX_ID_LENGTH = 255
MAX_SECRET_LENGTH = 256
# Google's states that report a change ("sync" only says a channel opened).
GOOGLE_CHANGE_STATES = frozenset({"exists", "not_exists"})
# Graph's lifecycle events (https://learn.microsoft.com/graph/change-notifications-lifecycle-events).
REAUTHORIZATION_REQUIRED = "reauthorizationRequired"
SUBSCRIPTION_REMOVED = "subscriptionRemoved"
MISSED = "missed"
# More notifications than this in one POST are not Graph's (it batches far fewer).
MAX_GRAPH_ITEMS = 1000


@dataclass(frozen=True)
class LifecycleAction:
    """A Graph lifecycle event to act on in the background (it calls Graph)."""

    event: str  # REAUTHORIZATION_REQUIRED or SUBSCRIPTION_REMOVED
    channel_id: int
    connection_id: int

    @property
    def then_sync(self) -> bool:
        """Sync once it is done: after the new subscription is open, so that the sync (which
        opens one when none is open) cannot open a second one beside it."""
        return self.event == SUBSCRIPTION_REMOVED


class Dispatch(Protocol):
    """Where trusted notifications go once recorded: the process's dispatcher."""

    def sync_soon(self, connection_id: int) -> None: ...

    def lifecycle_soon(self, action: LifecycleAction) -> None: ...


class HeaderSource(Protocol):
    """Request headers, looked up by name (case-insensitive in Werkzeug's)."""

    def get(self, key: str) -> str | None: ...


@dataclass(frozen=True)
class GoogleNotification:
    """The headers of one Google push message (it has no body)."""

    channel_id: str | None
    token: str | None
    resource_id: str | None
    state: str | None
    message_number: str | None

    @classmethod
    def from_headers(cls, headers: HeaderSource) -> GoogleNotification:
        """Read from request headers (absent ones are None)."""
        return cls(
            headers.get("X-Goog-Channel-ID"),
            headers.get("X-Goog-Channel-Token"),
            headers.get("X-Goog-Resource-ID"),
            headers.get("X-Goog-Resource-State"),
            headers.get("X-Goog-Message-Number"),
        )


def _usable(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and unstorable_reason(value) is None


def trusted_channel(session: Session, provider_channel_id: Any, secret: Any) -> PushChannel | None:
    """Our channel of that id, when ``secret`` is its secret; None for anything else."""
    if not _usable(provider_channel_id, MAX_ID_LENGTH) or not _usable(secret, MAX_SECRET_LENGTH):
        return None
    channel = find_channel(session, provider_channel_id)
    if channel is None or not secret_matches(channel, secret):
        return None
    return channel


def mark_due(session: Session, connection_id: int, now: datetime) -> bool:
    """Make a connected connection due (keeping an earlier mark); flushes. False when it is
    no longer connected."""
    result = session.execute(
        update(CalendarConnection)
        .where(CalendarConnection.id == connection_id, CalendarConnection.connected)
        .values(push_due_at=func.coalesce(CalendarConnection.push_due_at, now))
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def receive_google(
    session: Session, notification: GoogleNotification, now: datetime, dispatch: Dispatch
) -> None:
    """Act on one Google message: a trusted change marks its connection due (commits);
    ``sync`` (the channel opened) and anything untrusted change nothing."""
    channel = trusted_channel(session, notification.channel_id, notification.token)
    if channel is None or not _same_resource(channel, notification.resource_id):
        log.info("google notification ignored: not a channel of ours")
    elif notification.state in GOOGLE_CHANGE_STATES:
        _mark_due(session, {channel.connection_id}, now, dispatch)


def _same_resource(channel: PushChannel, resource_id: str | None) -> bool:
    if channel.resource_id is None or not _usable(resource_id, MAX_ID_LENGTH):
        return False
    assert resource_id is not None
    return hmac.compare_digest(channel.resource_id.encode(), resource_id.encode())


def receive_graph(
    session: Session, items: Iterable[Any], now: datetime, dispatch: Dispatch
) -> None:
    """Act on Graph's ``value`` array: trusted change notifications and ``missed`` mark their
    connections due, ``subscriptionRemoved`` too and reopens, ``reauthorizationRequired``
    renews (both in the background); commits."""
    due: set[int] = set()
    # One action per subscription and event however often a body repeats it: each calls Graph.
    actions: dict[LifecycleAction, None] = {}
    candidates = [
        item
        for item in list(items)[:MAX_GRAPH_ITEMS]
        if isinstance(item, dict)
        and _usable(item.get("subscriptionId"), MAX_ID_LENGTH)
        and _usable(item.get("clientState"), MAX_SECRET_LENGTH)
    ]
    # One query for the whole body, however many subscriptions it names (ours or not).
    ours = find_channels(session, {item["subscriptionId"] for item in candidates})
    for item in candidates:
        channel = ours.get(item["subscriptionId"])
        if channel is None or not secret_matches(channel, item["clientState"]):
            continue
        event = item.get("lifecycleEvent")
        if event is None or event in (MISSED, SUBSCRIPTION_REMOVED):
            due.add(channel.connection_id)
        if event in (REAUTHORIZATION_REQUIRED, SUBSCRIPTION_REMOVED):
            actions[LifecycleAction(event, channel.id, channel.connection_id)] = None
    if not due and not actions:
        log.info("graph notifications ignored: no subscription of ours")
        return
    reopening = {action.connection_id for action in actions if action.then_sync}
    _mark_due(session, due, now, dispatch, later=reopening)
    for action in actions:
        dispatch.lifecycle_soon(action)


def _mark_due(
    session: Session,
    connection_ids: set[int],
    now: datetime,
    dispatch: Dispatch,
    *,
    later: Collection[int] = (),
) -> None:
    """Mark, commit, then hand to the dispatcher those not left to a lifecycle action."""
    marked = [cid for cid in sorted(connection_ids) if mark_due(session, cid, now)]
    session.commit()  # durable before anyone is told: a crash now leaves it to the scheduler
    for connection_id in marked:
        if connection_id not in later:
            dispatch.sync_soon(connection_id)


def run_lifecycle_action(session: Session, settings: Settings, action: LifecycleAction) -> None:
    """Renew the subscription now, or open a new one in place of the removed one; commits."""
    if action.event == REAUTHORIZATION_REQUIRED:
        channel = session.get(PushChannel, action.channel_id)
        if channel is not None:
            renew_now(session, settings, channel)
    elif action.event == SUBSCRIPTION_REMOVED:
        reopen(session, settings, action.connection_id)
    session.commit()
