"""The ``/sandbox`` control API: faults, token expiry, state, request log, owner edits."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from . import graph_delta
from .errors import google_error, graph_not_found, json_response
from .faults import parse_fault
from .google_events import GoogleEvent, full_view, insert_event, patch_event
from .google_events import delete_event as google_delete
from .google_events import find_event as google_find
from .graph_model import render
from .graph_view import find_event as graph_find
from .graph_writes import create_event, delete_event, update_event
from .oauth import revoke_grant
from .store import GOOGLE, MICROSOFT, Account, SandboxStore, current_store
from .timezones import now

bp = Blueprint("sandbox_control", __name__, url_prefix="/sandbox")


def _json_body() -> Any:
    return request.get_json(silent=True)


def _bad(message: str) -> Response:
    return json_response({"error": message}, 400)


@bp.post("/faults")
def add_fault() -> Response:
    """Queue a fault for the next matching provider requests."""
    try:
        fault = parse_fault(_json_body())
    except (ValueError, TypeError) as exc:
        return _bad(str(exc))
    store = current_store()
    store.faults.append(fault)
    return json_response(fault.as_json(), 201)


@bp.get("/faults")
def list_faults() -> Response:
    """The faults still queued."""
    return json_response([fault.as_json() for fault in current_store().faults])


@bp.delete("/faults")
def clear_faults() -> Response:
    """Drop every queued fault."""
    current_store().faults.clear()
    return Response(status=204)


@bp.post("/expire-sync-tokens")
def expire_sync_tokens() -> Response:
    """Every Google sync token and Graph delta/skip token issued so far now gets 410."""
    dropped = graph_delta.expire(current_store())
    return json_response({"expired": True, "graphStatesDropped": dropped})


@bp.post("/revoke-grants")
def revoke_grants() -> Response:
    """Every grant is revoked: refresh tokens get ``invalid_grant``, access tokens 401."""
    store = current_store()
    grants = [grant for grant in store.grants.values() if not grant.revoked]
    for grant in grants:
        revoke_grant(store, grant)
    return json_response({"revoked": len(grants)})


@bp.post("/expire-access-tokens")
def expire_access_tokens() -> Response:
    """Every access token issued so far is expired (401 until the client refreshes)."""
    store = current_store()
    moment = now()
    for token in store.access_tokens.values():
        token.expires_at = min(token.expires_at, moment)
    return json_response({"expired": len(store.access_tokens)})


@bp.post("/reset")
def reset() -> Response:
    """Forget every account, grant, event, token, fault and logged request."""
    current_store().reset()
    return Response(status=204)


def _google_summary(store: SandboxStore) -> list[dict[str, Any]]:
    result = []
    for email, account in sorted(store.accounts[GOOGLE].items()):
        events = store.google_events.get(email, {}).values()
        result.append(
            {
                "email": email,
                "calendarId": account.calendar_id,
                "events": sum(1 for e in events if not e.cancelled),
                "cancelled": sum(1 for e in events if e.cancelled),
            }
        )
    return result


def _microsoft_summary(store: SandboxStore) -> list[dict[str, Any]]:
    result = []
    for email, account in sorted(store.accounts[MICROSOFT].items()):
        events = store.graph_events.get(email, {}).values()
        result.append(
            {
                "email": email,
                "calendarId": account.calendar_id,
                "events": len(events),
                "series": sum(1 for e in events if e.recurrence),
                "exceptions": sum(len(e.exceptions) for e in events),
                "deletedOccurrences": sum(len(e.deleted) for e in events),
            }
        )
    return result


@bp.get("/state")
def state() -> Response:
    """A summary: accounts, events per account, grants, pending faults, request counts."""
    store = current_store()
    return json_response(
        {
            "accounts": {GOOGLE: _google_summary(store), MICROSOFT: _microsoft_summary(store)},
            "grants": {
                "active": sum(1 for grant in store.grants.values() if not grant.revoked),
                "revoked": sum(1 for grant in store.grants.values() if grant.revoked),
            },
            "changeSequence": store.seq,
            "faults": len(store.faults),
            "requests": dict(sorted(store.counts.items())),
            "graphPeakInFlight": dict(sorted(store.peak_in_flight.items())),
        }
    )


@bp.get("/requests")
def requests_log() -> Response:
    """Every provider request answered so far, oldest first."""
    return json_response([entry.as_json() for entry in current_store().log])


@bp.delete("/requests")
def clear_requests() -> Response:
    """Empty the request log, the counts and the peaks of requests in flight."""
    store = current_store()
    store.log.clear()
    store.counts.clear()
    store.peak_in_flight.clear()
    return Response(status=204)


@bp.get("/google/<email>/events")
def google_events(email: str) -> Response:
    """Every event of a Google account, cancelled ones included, as Google's JSON."""
    store = current_store()
    events = store.google_events.get(email.lower(), {}).values()
    ordered = sorted(events, key=lambda e: e.ordinal)
    return json_response({"items": [full_view(e) for e in ordered]})


@bp.post("/google/<email>/events")
def google_insert(email: str) -> Response:
    """Insert an event as the account owner (shows up in the next incremental sync)."""
    store = current_store()
    account = store.account(GOOGLE, email)
    return json_response(full_view(insert_event(store, account, _json_body())))


def _google_event(email: str, event_id: str) -> tuple[SandboxStore, Account, GoogleEvent]:
    store = current_store()
    account = store.account(GOOGLE, email)
    event = google_find(store, account, event_id, materialize=True)
    if event is None:
        raise google_error(404, "notFound", "Not Found")
    return store, account, event


@bp.patch("/google/<email>/events/<event_id>")
def google_patch(email: str, event_id: str) -> Response:
    """Patch an event (or, by instance id, one instance of a series) as the account owner."""
    store, account, event = _google_event(email, event_id)
    return json_response(full_view(patch_event(store, account, event, _json_body())))


@bp.delete("/google/<email>/events/<event_id>")
def google_delete_event(email: str, event_id: str) -> Response:
    """Delete an event (or, by instance id, one instance of a series) as the account owner."""
    store, account, event = _google_event(email, event_id)
    google_delete(store, account, event)
    return Response(status=204)


@bp.get("/microsoft/<email>/events")
def microsoft_events(email: str) -> Response:
    """Every stored event of a mailbox (singles, masters, exceptions) as Graph's JSON."""
    store = current_store()
    items: list[dict[str, Any]] = []
    for event in store.graph_events.get(email.lower(), {}).values():
        items.append(render(event, expand=[]))
        items += [render(exc, expand=[]) for exc in event.exceptions.values()]
    return json_response({"value": items})


@bp.post("/microsoft/<email>/events")
def microsoft_create(email: str) -> Response:
    """Create an event as the mailbox owner."""
    store = current_store()
    account = store.account(MICROSOFT, email)
    body = _json_body()
    if not isinstance(body, dict):
        return _bad("a JSON object is required")
    return json_response(render(create_event(store, account, body), expand=[]), 201)


@bp.patch("/microsoft/<email>/events/<event_id>")
def microsoft_patch(email: str, event_id: str) -> Response:
    """Patch an event (an occurrence becomes an exception) as the mailbox owner."""
    store = current_store()
    account = store.account(MICROSOFT, email)
    body = _json_body()
    if not isinstance(body, dict):
        return _bad("a JSON object is required")
    return json_response(render(update_event(store, account, event_id, body), expand=[]))


@bp.delete("/microsoft/<email>/events/<event_id>")
def microsoft_delete(email: str, event_id: str) -> Response:
    """Delete an event, a series, or one occurrence as the mailbox owner."""
    store = current_store()
    account = store.account(MICROSOFT, email)
    if graph_find(store, account.email, event_id) is None:
        raise graph_not_found()
    delete_event(store, account, event_id)
    return Response(status=204)
