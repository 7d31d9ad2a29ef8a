"""Microsoft Graph v1.0: me, calendars, calendarView (+ delta), events and instances."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request

from . import graph_delta
from .errors import GRAPH_JSON, graph_error, graph_not_found, json_response
from .graph_model import MASTER, GraphEvent, render
from .graph_view import calendar_view, find_event, instances
from .graph_writes import create_event, delete_event, update_event
from .oauth import BearerProblem, authenticate
from .store import MICROSOFT, Account, SandboxStore, current_store
from .timezones import parse_instant

bp = Blueprint("sandbox_graph", __name__, url_prefix="/graph/v1.0")

_AUTH_MESSAGES = {
    BearerProblem.MISSING: "Access token is empty.",
    BearerProblem.UNKNOWN: "CompactToken parsing failed with error code: 80049217",
    BearerProblem.EXPIRED: "Lifetime validation failed, the token is expired.",
}
_EXPAND = re.compile(r"singleValueExtendedProperties(?:\(\$filter=(?P<filter>.*)\))?", re.I)
_FILTER_ID = re.compile(r"id\s+eq\s+'((?:[^']|'')*)'", re.I)
_WINDOW_MESSAGE = (
    "This request requires a time window specified by the query string parameters "
    "StartDateTime and EndDateTime."
)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return json_response(body, status, content_type=GRAPH_JSON, headers=headers)


def request_account() -> tuple[SandboxStore, Account]:
    """The store and the mailbox whose bearer token this request carries (401 otherwise)."""
    store = current_store()
    account = authenticate(store, MICROSOFT)
    if isinstance(account, BearerProblem):
        raise graph_error(
            401,
            "InvalidAuthenticationToken",
            _AUTH_MESSAGES[account],
            headers={
                "WWW-Authenticate": 'Bearer realm="", authorization_uri='
                '"https://login.microsoftonline.com/common/oauth2/authorize", '
                'client_id="00000003-0000-0000-c000-000000000000"'
            },
        )
    return store, account


def _prefer() -> tuple[int, str | None, dict[str, str]]:
    text = ", ".join(request.headers.getlist("Prefer"))
    applied: dict[str, str] = {}
    size = int(current_store().config.get("SANDBOX_GRAPH_PAGE_SIZE", 10))
    match = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", text, re.I)
    if match and int(match.group(1)) > 0:
        size = int(match.group(1))
        applied["odata.maxpagesize"] = f"odata.maxpagesize={size}"
    zone_match = re.search(r'outlook\.timezone\s*=\s*(?:"([^"]*)"|([^,;\s]+))', text, re.I)
    zone = (zone_match.group(1) or zone_match.group(2)) if zone_match else None
    if zone:
        applied["outlook.timezone"] = f'outlook.timezone="{zone}"'
    return size, zone, applied


def _expand(text: str | None) -> list[str] | None:
    """The extended property ids ``$expand`` asks for ([] = all), None when not asked."""
    match = _EXPAND.fullmatch(text.strip()) if text else None
    if match is None:
        return None
    return [value.replace("''", "'") for value in _FILTER_ID.findall(match["filter"] or "")]


def _render(event: GraphEvent, expand_text: str | None = None) -> dict[str, Any]:
    _, zone, _ = _prefer()
    return render(event, time_zone=zone, expand=_expand(expand_text or request.args.get("$expand")))


def _calendar(account: Account, calendar_id: str | None) -> None:
    if calendar_id is not None and calendar_id != account.calendar_id:
        raise graph_not_found()


def _link(params: dict[str, str]) -> str:
    return request.url_root.rstrip("/") + request.path + "?" + urlencode(params, safe="$")


def _context(what: str) -> str:
    return request.url_root.rstrip("/") + f"/graph/v1.0/$metadata#{what}"


def _calendar_json(account: Account) -> dict[str, Any]:
    return {
        "id": account.calendar_id,
        "name": "Calendar",
        "color": "auto",
        "hexColor": "",
        "isDefaultCalendar": True,
        "changeKey": "sandbox",
        "canShare": True,
        "canViewPrivateItems": True,
        "canEdit": True,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness",
        "isTallyingResponses": True,
        "isRemovable": False,
        "owner": {"name": account.display_name, "address": account.email},
    }


@bp.get("/me")
def me() -> Response:
    """The signed-in user."""
    _, account = request_account()
    first, _, last = account.display_name.partition(" ")
    return _json(
        {
            "@odata.context": _context("users/$entity"),
            "id": account.user_id,
            "displayName": account.display_name,
            "givenName": first,
            "surname": last or None,
            "mail": account.email,
            "userPrincipalName": account.email,
            "businessPhones": [],
            "jobTitle": None,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": "en-US",
        }
    )


@bp.get("/me/calendar")
@bp.get("/me/calendars/<calendar_id>")
def calendar(calendar_id: str | None = None) -> Response:
    """The default calendar (the only one the sandbox has)."""
    _, account = request_account()
    _calendar(account, calendar_id)
    return _json(
        {"@odata.context": _context("users('me')/calendars/$entity"), **_calendar_json(account)}
    )


@bp.get("/me/calendars")
def calendars() -> Response:
    """The user's calendars: just the default one."""
    _, account = request_account()
    return _json(
        {"@odata.context": _context("users('me')/calendars"), "value": [_calendar_json(account)]}
    )


def _window() -> tuple[Any, Any]:
    low = parse_instant(request.args.get("startDateTime") or request.args.get("StartDateTime"))
    high = parse_instant(request.args.get("endDateTime") or request.args.get("EndDateTime"))
    if low is None or high is None:
        raise graph_error(400, "ErrorInvalidParameter", _WINDOW_MESSAGE)
    return low, high


@bp.get("/me/calendarView/delta")
@bp.get("/me/calendar/calendarView/delta")
@bp.get("/me/calendars/<calendar_id>/calendarView/delta")
def calendar_view_delta(calendar_id: str | None = None) -> Response:
    """A page of the calendar view's changes: nextLink until the last page's deltaLink."""
    store, account = request_account()
    _calendar(account, calendar_id)
    args = request.args
    size, zone, applied = _prefer()
    offset = 0
    if args.get("$skiptoken"):
        ident, offset, _ = graph_delta.decode_token(store, "skip", args["$skiptoken"])
        delta_round = store.delta_rounds.get(ident)
        if delta_round is None or delta_round.email != account.email:
            raise graph_delta.sync_state_gone()
    elif args.get("$deltatoken"):
        ident, _, _ = graph_delta.decode_token(store, "delta", args["$deltatoken"])
        state = store.delta_states.get(ident)
        if state is None or state.email != account.email:
            raise graph_delta.sync_state_gone()
        delta_round = graph_delta.start_round(
            store, account.email, state.window, state.snapshot, args.get("$expand") or state.expand
        )
    else:
        window = _window()
        delta_round = graph_delta.start_round(
            store, account.email, window, None, args.get("$expand")
        )
    live = {event.id: event for event in calendar_view(store, account.email, *delta_round.window)}
    expand = _expand(args.get("$expand") or delta_round.expand)
    value = [
        graph_delta.removed(event_id)
        if gone or event_id not in live
        else render(live[event_id], time_zone=zone, expand=expand)
        for event_id, gone in delta_round.entries[offset : offset + size]
    ]
    body: dict[str, Any] = {"@odata.context": _context("Collection(event)"), "value": value}
    if offset + size < len(delta_round.entries):
        token = graph_delta.encode_token(
            store, "skip", delta_round.id, delta_round.window, offset + size
        )
        body["@odata.nextLink"] = _link({"$skiptoken": token})
    else:
        state = graph_delta.finish_round(store, delta_round)
        token = graph_delta.encode_token(store, "delta", state.id, state.window)
        body["@odata.deltaLink"] = _link({"$deltatoken": token})
    headers = {"Preference-Applied": ", ".join(["odata.track-changes", *applied.values()])}
    return _json(body, headers=headers)


@bp.get("/me/calendarView")
@bp.get("/me/calendar/calendarView")
@bp.get("/me/calendars/<calendar_id>/calendarView")
def calendar_view_list(calendar_id: str | None = None) -> Response:
    """The calendar view of a window, paged with ``$top``/``$skip``."""
    store, account = request_account()
    _calendar(account, calendar_id)
    low, high = _window()
    size, _, applied = _prefer()
    try:
        size = int(request.args.get("$top", size))
        skip = int(request.args.get("$skip", 0))
    except ValueError:
        raise graph_error(400, "BadRequest", "Invalid $top or $skip value.") from None
    events = calendar_view(store, account.email, low, high)
    body: dict[str, Any] = {
        "@odata.context": _context("Collection(event)"),
        "value": [_render(event) for event in events[skip : skip + size]],
    }
    if skip + size < len(events):
        params = {key: value for key, value in request.args.items() if key != "$skip"}
        body["@odata.nextLink"] = _link({**params, "$skip": str(skip + size)})
    return _json(
        body, headers={"Preference-Applied": ", ".join(applied.values())} if applied else None
    )


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise graph_error(400, "BadRequest", "Empty Payload. JSON content expected.")
    return body


def _check_if_match(store: SandboxStore, account: Account, event_id: str) -> None:
    header = request.headers.get("If-Match")
    event = find_event(store, account.email, event_id)
    if not header or header.strip() == "*" or event is None:
        return
    if event.change_key not in header:
        raise graph_error(
            412,
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed "
            "in the request does not match the current change key for the item.",
        )


@bp.post("/me/events")
@bp.post("/me/calendar/events")
@bp.post("/me/calendars/<calendar_id>/events")
def events_create(calendar_id: str | None = None) -> Response:
    """Create an event (201)."""
    store, account = request_account()
    _calendar(account, calendar_id)
    event = create_event(store, account, _body())
    headers = {"Location": request.url_root.rstrip("/") + f"/graph/v1.0/me/events/{event.id}"}
    return _json(
        {"@odata.context": _context("users('me')/events/$entity"), **_render(event)}, 201, headers
    )


@bp.get("/me/events/<event_id>")
@bp.get("/me/calendar/events/<event_id>")
@bp.get("/me/calendars/<calendar_id>/events/<event_id>")
def events_get(event_id: str, calendar_id: str | None = None) -> Response:
    """One event of any type (a series master includes its recurrence)."""
    store, account = request_account()
    _calendar(account, calendar_id)
    event = find_event(store, account.email, event_id)
    if event is None:
        raise graph_not_found()
    return _json({"@odata.context": _context("users('me')/events/$entity"), **_render(event)})


@bp.patch("/me/events/<event_id>")
@bp.patch("/me/calendar/events/<event_id>")
@bp.patch("/me/calendars/<calendar_id>/events/<event_id>")
def events_patch(event_id: str, calendar_id: str | None = None) -> Response:
    """Update an event (200)."""
    store, account = request_account()
    _calendar(account, calendar_id)
    body = _body()
    _check_if_match(store, account, event_id)
    event = update_event(store, account, event_id, body)
    return _json({"@odata.context": _context("users('me')/events/$entity"), **_render(event)})


@bp.delete("/me/events/<event_id>")
@bp.delete("/me/calendar/events/<event_id>")
@bp.delete("/me/calendars/<calendar_id>/events/<event_id>")
def events_delete(event_id: str, calendar_id: str | None = None) -> Response:
    """Delete an event (204)."""
    store, account = request_account()
    _calendar(account, calendar_id)
    _check_if_match(store, account, event_id)
    delete_event(store, account, event_id)
    return Response(status=204)


@bp.get("/me/events/<event_id>/instances")
@bp.get("/me/calendars/<calendar_id>/events/<event_id>/instances")
def events_instances(event_id: str, calendar_id: str | None = None) -> Response:
    """Occurrences and exceptions of a series master in a window."""
    store, account = request_account()
    _calendar(account, calendar_id)
    event = find_event(store, account.email, event_id)
    if event is None:
        raise graph_not_found()
    low, high = _window()
    found = instances(event, low, high) if event.kind == MASTER else []
    return _json(
        {
            "@odata.context": _context(f"users('me')/events('{event.id}')/instances"),
            "value": [_render(item) for item in found],
        }
    )
