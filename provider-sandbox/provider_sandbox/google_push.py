"""Google Calendar push: ``events.watch`` opens a channel, ``channels.stop`` ends one.

A new channel gets a ``sync`` message at once; after that every change to the calendar's events
sends ``exists`` to each of its live channels (``push_state.google_changed``). The lifetime is
the requested ``params.ttl`` (or ``expiration``), capped by the sandbox's channel lifetime.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, request

from .errors import google_error, json_response
from .google_calendar import check_calendar, request_account
from .push_state import GOOGLE_SYNC, GoogleChannel, Notification, google_resource_id
from .timezones import now

bp = Blueprint("sandbox_google_push", __name__, url_prefix="/google/calendar/v3")

MAX_ID = 64
MAX_TOKEN = 256
CHANNEL_TYPES = ("web_hook", "webhook")


def _invalid(message: str, reason: str = "invalid") -> Exception:
    return google_error(400, reason, message)


def _required(name: str) -> Exception:
    return google_error(400, "required", "Required", location=name, location_type="parameter")


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise google_error(400, "parseError", "Parse Error")
    return body


def _seconds(body: dict[str, Any], cap: int) -> float:
    """The channel's lifetime: ``params.ttl`` or ``expiration`` if given, at most ``cap``."""
    lifetime = float(cap)
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise _invalid("Invalid value for params.")
    ttl = params.get("ttl")
    if ttl is not None:
        try:
            asked = int(str(ttl))
        except ValueError:
            raise _invalid(f"Invalid value for ttl: {ttl}") from None
        if asked <= 0:
            raise _invalid(f"Invalid value for ttl: {ttl}")
        lifetime = min(lifetime, asked)
    expiration = body.get("expiration")
    if expiration is not None:
        try:
            until_ms = int(str(expiration))
        except ValueError:
            raise _invalid(f"Invalid value for expiration: {expiration}") from None
        left = until_ms / 1000 - now().timestamp()
        if left <= 0:
            raise _invalid("Expiration must be in the future.")
        lifetime = min(lifetime, left)
    return lifetime


@bp.post("/calendars/<calendar_id>/events/watch")
def events_watch(calendar_id: str) -> Response:
    """Open a channel on the calendar's events: 200 with the channel; a ``sync`` POST follows."""
    store, account = request_account()
    check_calendar(account, calendar_id)
    body = _body()
    channel_id, kind, address = body.get("id"), body.get("type"), body.get("address")
    token = body.get("token")
    if not channel_id:
        raise _required("id")
    if not isinstance(channel_id, str) or len(channel_id) > MAX_ID:
        raise _invalid(f"Channel id must be a string of at most {MAX_ID} characters.")
    if kind not in CHANNEL_TYPES:
        raise _invalid(f"Invalid channel type: {kind}.", "invalidChannelType")
    if not isinstance(address, str) or not address.startswith(("http://", "https://")):
        raise _invalid(f"Invalid notification address: {address}.", "push.webhookUrlUnauthorized")
    if token is not None and (not isinstance(token, str) or len(token) > MAX_TOKEN):
        raise _invalid(f"Channel token must be a string of at most {MAX_TOKEN} characters.")
    moment = now()
    known = store.push.channels.get(channel_id)
    if known is not None and known.live(moment):
        raise _invalid(f"Channel id {channel_id} not unique", "channelIdNotUnique")
    lifetime = _seconds(body, store.push.google_channel_seconds)
    root = request.url_root.rstrip("/")
    channel = GoogleChannel(
        id=channel_id,
        resource_id=google_resource_id(account.email),
        resource_uri=f"{root}{bp.url_prefix}/calendars/{quote(calendar_id, safe='@')}/events"
        "?alt=json",
        account=account.email,
        calendar_id=account.calendar_id,
        address=address,
        token=token,
        expiration=moment + timedelta(seconds=lifetime),
        opened_at=moment,
    )
    store.push.channels[channel_id] = channel
    sync = channel.next_message("sync")
    store.deliverer.submit(Notification(GOOGLE_SYNC, address, channel_id, store.epoch, sync))
    answer: dict[str, Any] = {
        "kind": "api#channel",
        "id": channel.id,
        "resourceId": channel.resource_id,
        "resourceUri": channel.resource_uri,
    }
    if token is not None:
        answer["token"] = token
    answer["expiration"] = str(int(channel.expiration.timestamp() * 1000))
    return json_response(answer)


@bp.post("/channels/stop")
def channels_stop() -> Response:
    """Stop a channel: 204; an unknown or already stopped one 404."""
    store, _ = request_account()
    body = _body()
    channel_id, resource_id = body.get("id"), body.get("resourceId")
    if not channel_id:
        raise _required("id")
    if not resource_id:
        raise _required("resourceId")
    channel = store.push.channels.get(str(channel_id))
    if channel is None or channel.stopped_at is not None or channel.resource_id != resource_id:
        raise google_error(404, "notFound", f"Channel '{channel_id}' not found for project")
    channel.stopped_at = now()
    return Response(status=204)
