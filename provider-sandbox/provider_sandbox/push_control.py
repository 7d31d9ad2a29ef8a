"""The control API of push: lifetimes, what is open and delivered, Graph lifecycle events."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from .errors import json_response
from .push_state import GRAPH_LIFECYCLE, Notification
from .store import current_store
from .timezones import now

bp = Blueprint("sandbox_push_control", __name__, url_prefix="/sandbox/push")

LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
_LIFETIME_FIELDS = {
    "googleChannelSeconds": "google_channel_seconds",
    "graphSubscriptionSeconds": "graph_subscription_seconds",
}


def _bad(message: str, status: int = 400) -> Response:
    return json_response({"error": message}, status)


@bp.get("")
def overview() -> Response:
    """Lifetimes, Google channels, Graph subscriptions and the last deliveries (oldest first)."""
    store = current_store()
    moment = now()
    push = store.push
    return json_response(
        {
            "lifetimes": push.lifetimes(),
            "googleChannels": [c.as_json(moment) for c in push.channels.values()],
            "graphSubscriptions": [s.as_json(moment) for s in push.subscriptions.values()],
            "deliveries": [d.as_json() for d in push.deliveries],
            "pendingDeliveries": store.deliverer.pending(),
        }
    )


@bp.post("/lifetimes")
def set_lifetimes() -> Response:
    """Set the channel and subscription lifetime caps (seconds; either may be left out)."""
    body: Any = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad("a JSON object is required")
    values: dict[str, int] = {}
    for name, attribute in _LIFETIME_FIELDS.items():
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return _bad(f"{name} must be a whole number of seconds, at least 1")
        values[attribute] = value
    push = current_store().push
    for attribute, value in values.items():
        setattr(push, attribute, value)
    return json_response(push.lifetimes())


@bp.post("/graph/<subscription_id>/lifecycle")
def lifecycle(subscription_id: str) -> Response:
    """POST a lifecycle notification to the subscription's lifecycle URL (202);
    ``subscriptionRemoved`` also removes the subscription."""
    body: Any = request.get_json(silent=True)
    event = body.get("event") if isinstance(body, dict) else None
    if event not in LIFECYCLE_EVENTS:
        return _bad(f"event must be one of {', '.join(LIFECYCLE_EVENTS)}")
    store = current_store()
    subscription = store.push.subscriptions.get(subscription_id)
    if subscription is None or subscription.deleted_at is not None:
        return _bad(f"no subscription {subscription_id}", 404)
    if subscription.lifecycle_url is None:
        return _bad("the subscription has no lifecycleNotificationUrl", 409)
    item = {**subscription.envelope(), "lifecycleEvent": event}
    store.deliverer.submit(
        Notification(
            GRAPH_LIFECYCLE, subscription.lifecycle_url, subscription.id, store.epoch, item=item
        )
    )
    if event == "subscriptionRemoved":
        subscription.deleted_at = now()
    return json_response({"queued": True, "notification": {"value": [item]}}, 202)
