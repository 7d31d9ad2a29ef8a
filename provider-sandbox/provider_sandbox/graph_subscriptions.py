"""Graph subscriptions to a mailbox's events: create (with the validation handshake), get, list,
renew (``PATCH``), reauthorize and delete.

Creating one first POSTs ``?validationToken=...`` to ``notificationUrl`` and to
``lifecycleNotificationUrl`` (when given) and requires 200, ``text/plain`` and the exact token
back within 10 s; that runs without the store's lock. ``expirationDateTime`` is capped by the
sandbox's subscription lifetime; an expired or deleted subscription is gone (404). A mailbox
has at most ``SANDBOX_GRAPH_MAILBOX_SUBSCRIPTIONS`` (1,000, as Outlook) live ones (403 beyond).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests
from flask import Blueprint, Response, request

from .batch import unlocked
from .errors import GRAPH_JSON, SandboxError, graph_error, json_response
from .graph import request_account
from .push_delivery import record
from .push_state import GRAPH_VALIDATION, Delivery, GraphSubscription
from .store import Account, SandboxStore, current_store
from .timezones import now, parse_instant

bp = Blueprint("sandbox_graph_subscriptions", __name__, url_prefix="/graph/v1.0")

VALIDATION_TIMEOUT = 10.0
MAX_CLIENT_STATE = 128
MAX_PER_MAILBOX = 1000  # Outlook's limit of subscriptions per mailbox, across all apps
CHANGE_TYPES = ("created", "updated", "deleted")
_RESOURCE = re.compile(r"me/(?:events|calendar/events|calendars/(?P<calendar>[^/]+)/events)", re.I)
# Graph's tokens read like this: spaces and colons, so a receiver must decode the query string.
_TOKEN_TEXT = "Validation: Testing client application reachability for subscription"
_MISMATCH = (
    "Subscription validation request failed. Response must exactly match validationToken "
    "query parameter."
)
_VALIDATION_FAILED = (
    "Subscription validation request failed. Notification endpoint must respond with 200 OK "
    "to validation request."
)


def _json(body: Any, status: int = 200) -> Response:
    return json_response(body, status, content_type=GRAPH_JSON)


def _invalid(message: str) -> SandboxError:
    return graph_error(400, "InvalidRequest", message)


def _not_found() -> SandboxError:
    return graph_error(404, "ResourceNotFound", "The object was not found.")


def _context() -> str:
    return request.url_root.rstrip("/") + "/graph/v1.0/$metadata#subscriptions/$entity"


def _url(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise _invalid(f"Invalid {name}: an absolute http(s) URL is required.")
    return value


def _expiration(body: dict[str, Any], cap: int) -> datetime:
    asked = parse_instant(body.get("expirationDateTime") or None)
    if asked is None:
        raise _invalid("expirationDateTime is required (an ISO 8601 date-time).")
    moment = now()
    if asked <= moment:
        raise _invalid("Subscription expiration can only be in the future.")
    return min(asked, moment + timedelta(seconds=cap))


def _checked(body: dict[str, Any], account: Account, cap: int) -> dict[str, Any]:
    """The new subscription's fields, every one validated."""
    change_type = body.get("changeType")
    parts = [part.strip() for part in str(change_type or "").split(",")]
    if not change_type or any(part not in CHANGE_TYPES for part in parts):
        raise _invalid(f"Invalid changeType '{change_type}': use created, updated, deleted.")
    resource = body.get("resource")
    match = _RESOURCE.fullmatch(str(resource or "").strip("/"))
    if not isinstance(resource, str) or match is None:
        raise _invalid(f"Resource '{resource}' is not supported.")
    if match["calendar"] is not None and match["calendar"] != account.calendar_id:
        raise graph_error(
            404, "ErrorItemNotFound", "The specified object was not found in the store."
        )
    client_state = body.get("clientState")
    if client_state is not None and (
        not isinstance(client_state, str) or len(client_state) > MAX_CLIENT_STATE
    ):
        raise _invalid(f"clientState must be a string of at most {MAX_CLIENT_STATE} characters.")
    return {
        "resource": resource,
        "change_type": ",".join(parts),
        "client_state": client_state,
        "notification_url": _url(body, "notificationUrl", required=True),
        "lifecycle_url": _url(body, "lifecycleNotificationUrl", required=False),
        "expiration": _expiration(body, cap),
    }


def _check_room(store: SandboxStore, account: Account) -> None:
    """403 when the mailbox already has as many live subscriptions as Outlook allows."""
    limit = int(store.config.get("SANDBOX_GRAPH_MAILBOX_SUBSCRIPTIONS") or MAX_PER_MAILBOX)
    moment = now()
    live = sum(
        1
        for subscription in store.push.subscriptions.values()
        if subscription.account == account.email and subscription.live(moment)
    )
    if live >= limit:
        raise graph_error(
            403,
            "ExtensionError",
            "Operation: Create; Exception: [Status Code: Forbidden; "
            "Reason: Maximum number of subscriptions has been reached]",
        )


def _validate_url(store: SandboxStore, epoch: int, url: str) -> str | None:
    """POST the handshake to ``url``: None when it echoed the token, else why not."""
    token = f"{_TOKEN_TEXT} Request-Id: {uuid.uuid4()}"
    target = url + ("&" if "?" in url else "?") + "validationToken=" + quote(token, safe="")
    status: int | None = None
    problem: str | None = None
    try:
        answer = requests.post(
            target,
            data=b"",
            headers={"Content-Type": "text/plain; charset=utf-8"},
            timeout=VALIDATION_TIMEOUT,
        )
        status = answer.status_code
        mimetype = answer.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if status != 200 or mimetype != "text/plain":
            problem = _VALIDATION_FAILED
        elif answer.text != token:
            problem = _MISMATCH
    except requests.Timeout:
        problem = "Subscription validation request timed out."
    except requests.RequestException as exc:
        problem = f"Subscription validation request failed: {type(exc).__name__}."
    record(store, Delivery(GRAPH_VALIDATION, url, "", status, problem, now()), epoch)
    return problem


@bp.post("/subscriptions")
@unlocked
def create() -> Response:
    """Validate both URLs (without the lock), then create the subscription: 201."""
    store = current_store()
    with store.lock:
        _, account = request_account()
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise _invalid("Empty Payload. JSON content expected.")
        fields = _checked(body, account, store.push.graph_subscription_seconds)
        _check_room(store, account)
        epoch = store.epoch
    for url in (fields["notification_url"], fields["lifecycle_url"]):
        if url is not None and (problem := _validate_url(store, epoch, url)) is not None:
            raise graph_error(400, "ValidationError", problem)
    with store.lock:
        _check_room(store, account)
        moment = now()
        subscription = GraphSubscription(
            id=str(uuid.uuid4()),
            account=account.email,
            user_id=account.user_id,
            created_at=moment,
            **fields,
        )
        if store.epoch == epoch:
            store.push.subscriptions[subscription.id] = subscription
    return _json({"@odata.context": _context(), **subscription.resource_json()}, 201)


def _own(subscription_id: str) -> tuple[SandboxStore, GraphSubscription]:
    store, account = request_account()
    subscription = store.push.subscriptions.get(subscription_id)
    if (
        subscription is None
        or subscription.account != account.email
        or not subscription.live(now())
    ):
        raise _not_found()
    return store, subscription


@bp.get("/subscriptions")
def list_subscriptions() -> Response:
    """The mailbox's live subscriptions."""
    store, account = request_account()
    moment = now()
    value = [
        subscription.resource_json()
        for subscription in store.push.subscriptions.values()
        if subscription.account == account.email and subscription.live(moment)
    ]
    context = request.url_root.rstrip("/") + "/graph/v1.0/$metadata#subscriptions"
    return _json({"@odata.context": context, "value": value})


@bp.get("/subscriptions/<subscription_id>")
def get(subscription_id: str) -> Response:
    """One live subscription."""
    _, subscription = _own(subscription_id)
    return _json({"@odata.context": _context(), **subscription.resource_json()})


@bp.patch("/subscriptions/<subscription_id>")
def renew(subscription_id: str) -> Response:
    """Move ``expirationDateTime`` (capped by the sandbox's lifetime): 200."""
    store, subscription = _own(subscription_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise _invalid("Empty Payload. JSON content expected.")
    subscription.expiration = _expiration(body, store.push.graph_subscription_seconds)
    subscription.renewed_at = now()
    return _json({"@odata.context": _context(), **subscription.resource_json()})


@bp.post("/subscriptions/<subscription_id>/reauthorize")
def reauthorize(subscription_id: str) -> Response:
    """Reauthorize a subscription (after ``reauthorizationRequired``): 204, expiry unchanged."""
    _own(subscription_id)
    return Response(status=204)


@bp.delete("/subscriptions/<subscription_id>")
def delete(subscription_id: str) -> Response:
    """Delete a subscription: 204; it sends nothing more."""
    _, subscription = _own(subscription_id)
    subscription.deleted_at = now()
    return Response(status=204)
