"""Google Calendar API v3: calendar list entry and events (list with sync tokens, CRUD)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, request

from .errors import google_auth_error, google_error, json_response
from .google_events import (
    GoogleEvent,
    bad_request,
    check_if_match,
    delete_event,
    find_event,
    full_view,
    insert_event,
    minimal_view,
    patch_event,
    update_event,
)
from .oauth import authenticate
from .store import GOOGLE, Account, SandboxStore, current_store
from .timezones import day_span, now, parse_date, parse_datetime, rfc3339_millis, zone_or_utc

bp = Blueprint("sandbox_google_calendar", __name__, url_prefix="/google/calendar/v3")

MAX_RESULTS = 2500
DEFAULT_RESULTS = 250
_SYNC_RESTRICTED = (
    "timeMin",
    "timeMax",
    "updatedMin",
    "q",
    "orderBy",
    "iCalUID",
    "privateExtendedProperty",
    "sharedExtendedProperty",
)
SEND_UPDATES = ("all", "externalOnly", "none")


def request_account() -> tuple[SandboxStore, Account]:
    """The store and the account whose bearer token this request carries (401 otherwise)."""
    store = current_store()
    account = authenticate(store, GOOGLE)
    if not isinstance(account, Account):
        raise google_auth_error()
    return store, account


def _not_found() -> Exception:
    return google_error(404, "notFound", "Not Found")


def check_calendar(account: Account, calendar_id: str) -> None:
    """404 unless ``calendar_id`` is ``primary`` or the account's own calendar."""
    if calendar_id != "primary" and calendar_id.lower() != account.email:
        raise _not_found()


def _body() -> Any:
    body = request.get_json(silent=True)
    if body is None:
        raise bad_request("Parse Error", "parseError")
    return body


def _check_send_updates() -> None:
    value = request.args.get("sendUpdates")
    if value is not None and value not in SEND_UPDATES:
        raise bad_request(
            f"Invalid value '{value}'. Values must be one of: {', '.join(SEND_UPDATES)}.",
            "invalidParameter",
        )


def _write_body() -> Any:
    """A write's body as Google applies it: its parameters checked, and without
    ``conferenceDataVersion=1`` any ``conferenceData`` in it ignored (the event keeps its own)."""
    _check_send_updates()
    version = request.args.get("conferenceDataVersion", "0")
    if version not in ("0", "1"):
        raise bad_request(
            f"Invalid value '{version}'. Values must be within the range: [0, 1]",
            "invalidParameter",
        )
    body = _body()
    if version == "0" and isinstance(body, dict):
        body = {key: value for key, value in body.items() if key != "conferenceData"}
    return body


def calendar_list_entry(account: Account) -> dict[str, Any]:
    """The calendarListEntry of the account's primary calendar."""
    return {
        "kind": "calendar#calendarListEntry",
        "etag": '"1700000000000000"',
        "id": account.email,
        "summary": account.email,
        "timeZone": account.time_zone,
        "colorId": "14",
        "backgroundColor": "#9fe1e7",
        "foregroundColor": "#000000",
        "selected": True,
        "accessRole": "owner",
        "defaultReminders": [{"method": "popup", "minutes": 10}],
        "primary": True,
    }


@bp.get("/users/me/calendarList")
def calendar_list() -> Response:
    """The account's calendar list: just its primary calendar."""
    _, account = request_account()
    entry = calendar_list_entry(account)
    return json_response({"kind": "calendar#calendarList", "etag": entry["etag"], "items": [entry]})


@bp.get("/users/me/calendarList/<path:calendar_id>")
def calendar_list_get(calendar_id: str) -> Response:
    """One calendarListEntry: ``primary`` or the account's email."""
    _, account = request_account()
    check_calendar(account, calendar_id)
    return json_response(calendar_list_entry(account))


@bp.get("/calendars/<calendar_id>")
def calendar_get(calendar_id: str) -> Response:
    """The calendar resource of the primary calendar."""
    _, account = request_account()
    check_calendar(account, calendar_id)
    entry = calendar_list_entry(account)
    keep = ("etag", "id", "summary", "timeZone")
    return json_response({"kind": "calendar#calendar", **{k: entry[k] for k in keep}})


def sync_token(store: SandboxStore, account: Account, seq: int) -> str:
    """An opaque sync token standing for ``seq`` in this sandbox epoch."""
    raw = f"sandbox-sync:{store.epoch}:{account.email}:{seq}".encode()
    return base64.b64encode(raw).decode("ascii")


def _read_sync_token(store: SandboxStore, account: Account, token: str) -> int:
    try:
        kind, epoch, email, seq = base64.b64decode(token, validate=True).decode().split(":")
        if kind == "sandbox-sync" and int(epoch) == store.epoch and email == account.email:
            return int(seq)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        pass
    raise google_error(
        410,
        "fullSyncRequired",
        "Sync token is no longer valid, a full sync is required.",
        grpc_status="GONE",
    )


def _page_token(last_ordinal: int, upto: int) -> str:
    raw = json.dumps({"after": last_ordinal, "upto": upto}).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _read_page_token(token: str) -> tuple[int, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["after"]), int(data["upto"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise bad_request("Invalid page token value.") from None


def _time_param(name: str) -> datetime | None:
    text = request.args.get(name)
    if not text:
        return None
    value = parse_datetime(text)
    if value is None or value.tzinfo is None:
        raise google_error(
            400, "badRequest", "Bad Request", location=name, location_type="parameter"
        )
    return value.astimezone(UTC)


def _span(event: GoogleEvent, account: Account) -> tuple[datetime, datetime] | None:
    def instant(value: dict[str, Any] | None) -> datetime | None:
        if not value:
            return None
        if value.get("date"):
            day = parse_date(value["date"])
            return None if day is None else day_span(day, zone_or_utc(account.time_zone))[0]
        moment = parse_datetime(str(value.get("dateTime", "")))
        return moment.astimezone(UTC) if moment and moment.tzinfo else None

    resource = event.resource
    start = instant(resource.get("start") or resource.get("originalStartTime"))
    end = instant(resource.get("end") or resource.get("originalStartTime"))
    return (start, end) if start and end else None


@dataclass(frozen=True)
class ListingFilter:
    """The restrictions of a full listing, read once from the query string."""

    show_deleted: bool
    updated_min: datetime | None
    time_min: datetime | None
    time_max: datetime | None
    ical_uid: str | None
    properties: dict[str, dict[str, str]]

    @classmethod
    def from_request(cls) -> ListingFilter:
        """The filter this request asks for."""
        args = request.args
        properties = {}
        for kind in ("private", "shared"):
            pairs = (v.partition("=") for v in args.getlist(f"{kind}ExtendedProperty"))
            properties[kind] = {key: value for key, _, value in pairs}
        return cls(
            show_deleted=args.get("showDeleted") == "true",
            updated_min=_time_param("updatedMin"),
            time_min=_time_param("timeMin"),
            time_max=_time_param("timeMax"),
            ical_uid=args.get("iCalUID") or None,
            properties=properties,
        )

    def keeps(self, event: GoogleEvent, account: Account, events: dict[str, GoogleEvent]) -> bool:
        """Whether a full listing shows ``event``."""
        resource = event.resource
        if event.cancelled and not self.show_deleted and self.updated_min is None:
            master = events.get(str(resource.get("recurringEventId")))
            # A cancelled instance of a live series is listed even without showDeleted.
            if master is None or master.cancelled:
                return False
        if self.updated_min is not None:
            updated = parse_datetime(str(resource.get("updated")))
            if updated is None or updated < self.updated_min:
                return False
        if self.ical_uid and resource.get("iCalUID") != self.ical_uid:
            return False
        for kind, wanted in self.properties.items():
            have = (resource.get("extendedProperties") or {}).get(kind) or {}
            if any(have.get(key) != value for key, value in wanted.items()):
                return False
        span = _span(event, account) if self.time_min or self.time_max else None
        if span is None:
            return True
        start, end = span
        if self.time_max is not None and start >= self.time_max:
            return False
        # A series is kept whatever timeMin says: its later instances may fall in the range.
        return (
            self.time_min is None
            or bool(resource.get("recurrence"))
            or end > self.time_min
            or start >= self.time_min
        )


def _page(events: Iterable[GoogleEvent], after: int, size: int) -> tuple[list[GoogleEvent], bool]:
    ordered = sorted((e for e in events if e.ordinal > after), key=lambda e: e.ordinal)
    return ordered[:size], len(ordered) > size


@bp.get("/calendars/<calendar_id>/events")
def events_list(calendar_id: str) -> Response:
    """List events: full (paged, optionally filtered) or incremental with ``syncToken``."""
    store, account = request_account()
    check_calendar(account, calendar_id)
    args = request.args
    if args.get("singleEvents") == "true":
        raise bad_request("singleEvents=true is not supported by the provider sandbox.")
    if args.get("orderBy") == "startTime":
        raise bad_request("The requested ordering is not available for the particular query.")
    try:
        size = int(args.get("maxResults", DEFAULT_RESULTS))
    except ValueError:
        raise bad_request(f"Invalid value '{args['maxResults']}'.") from None
    if size < 1:
        raise bad_request(f"Invalid value '{size}'. Values must be within the range: [1, 2500]")
    size = min(size, MAX_RESULTS)
    token = args.get("syncToken")
    since: int | None = None
    if token:
        if any(args.get(name) for name in _SYNC_RESTRICTED):
            raise bad_request(
                "Sync token cannot be used with other request restrictions.",
            )
        since = _read_sync_token(store, account, token)
    after, upto = _read_page_token(args["pageToken"]) if args.get("pageToken") else (0, store.seq)
    events = store.google_events.get(account.email, {})
    if since is not None:
        chosen = [e for e in events.values() if e.seq > since]
    else:
        listing = ListingFilter.from_request()
        chosen = [e for e in events.values() if listing.keeps(e, account, events)]
    page, more = _page(chosen, after, size)
    body: dict[str, Any] = {
        "kind": "calendar#events",
        "etag": f'"p{upto}"',
        "summary": account.email,
        "description": "",
        "updated": rfc3339_millis(now()),
        "timeZone": account.time_zone,
        "accessRole": "owner",
        "defaultReminders": [{"method": "popup", "minutes": 10}],
    }
    if more:
        body["nextPageToken"] = _page_token(page[-1].ordinal, upto)
    else:
        body["nextSyncToken"] = sync_token(store, account, upto)
    body["items"] = [minimal_view(e) if e.cancelled else full_view(e) for e in page]
    return json_response(body)


@bp.post("/calendars/<calendar_id>/events")
def events_insert(calendar_id: str) -> Response:
    """Insert an event (a client-chosen id is kept; a taken one gives 409)."""
    store, account = request_account()
    check_calendar(account, calendar_id)
    return json_response(full_view(insert_event(store, account, _write_body())))


def _existing(
    store: SandboxStore, account: Account, event_id: str, materialize: bool
) -> GoogleEvent:
    event = find_event(store, account, event_id, materialize=materialize)
    if event is None:
        raise _not_found()
    return event


@bp.get("/calendars/<calendar_id>/events/<event_id>")
def events_get(calendar_id: str, event_id: str) -> Response:
    """One event (a deleted one comes back with ``status: cancelled``)."""
    store, account = request_account()
    check_calendar(account, calendar_id)
    return json_response(full_view(_existing(store, account, event_id, False)))


@bp.patch("/calendars/<calendar_id>/events/<event_id>")
def events_patch(calendar_id: str, event_id: str) -> Response:
    """Patch an event; ``If-Match`` with a stale etag gives 412."""
    store, account = request_account()
    check_calendar(account, calendar_id)
    body = _write_body()
    event = _existing(store, account, event_id, False)
    check_if_match(event, request.headers.get("If-Match"))
    event = _existing(store, account, event_id, True)
    return json_response(full_view(patch_event(store, account, event, body)))


@bp.put("/calendars/<calendar_id>/events/<event_id>")
def events_update(calendar_id: str, event_id: str) -> Response:
    """Replace an event; ``If-Match`` with a stale etag gives 412."""
    store, account = request_account()
    check_calendar(account, calendar_id)
    body = _write_body()
    event = _existing(store, account, event_id, False)
    check_if_match(event, request.headers.get("If-Match"))
    event = _existing(store, account, event_id, True)
    return json_response(full_view(update_event(store, account, event, body)))


@bp.delete("/calendars/<calendar_id>/events/<event_id>")
def events_delete(calendar_id: str, event_id: str) -> Response:
    """Delete (cancel) an event: 204; again gives 410 ``deleted``."""
    store, account = request_account()
    check_calendar(account, calendar_id)
    _check_send_updates()
    event = _existing(store, account, event_id, False)
    if event.cancelled:
        raise google_error(410, "deleted", "Resource has been deleted")
    check_if_match(event, request.headers.get("If-Match"))
    delete_event(store, account, _existing(store, account, event_id, True))
    return Response(status=204)
