"""Outlook sync tests: Graph delta routes, the sync and status calls, and readers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection

from . import payloads as p

SYNC = "/api/v1/crm/calendar/connections/outlook/sync"
EVENTS = "/api/v1/crm/calendar/events"
DELTA = p.GRAPH_DELTA_URL
TAG = "String {a16b08cb-cb99-44db-824b-896982902cc5} Name crmEventId"


def skip_link(token: str) -> str:
    return f"{DELTA}?$skiptoken={token}"


def delta_link(token: str) -> str:
    return f"{DELTA}?$deltatoken={token}"


def event_url(event_id: str) -> str:
    return f"{p.GRAPH}/me/events/{quote(event_id)}"


def with_window(request: Any) -> tuple[bool, str]:
    """Matches the first request of a full round (it carries the window)."""
    query = parse_qs(urlsplit(request.url).query)
    return ("startDateTime" in query and "endDateTime" in query, "no window")


def serve(
    http: responses.RequestsMock,
    first: str | None,
    *pages: list[dict[str, Any]],
    delta: str = "D1",
) -> list[responses.BaseResponse]:
    """A delta round: `first` is a deltatoken (None: a full round), pages end in `delta`."""
    routes = []
    for number, items in enumerate(pages):
        last = number == len(pages) - 1
        body = p.graph_page(
            items,
            next_link=None if last else skip_link(f"{delta}-{number + 1}"),
            delta_link=delta_link(delta) if last else None,
        )
        if number == 0 and first is None:
            routes.append(http.get(DELTA, json=body, match=[with_window]))
        elif number == 0:
            routes.append(http.get(delta_link(first or ""), json=body))
        else:
            routes.append(http.get(skip_link(f"{delta}-{number}"), json=body))
    return routes


def sync(client: FlaskClient, auth: dict[str, str]) -> dict[str, Any]:
    response = client.post(SYNC, headers=auth)
    assert response.status_code == 200, response.json
    body: dict[str, Any] = response.json
    return body


def counts(result: dict[str, Any]) -> tuple[int, int, int, int]:
    assert result["success"], result
    return (
        result["eventsCreated"],
        result["eventsUpdated"],
        result["eventsDeleted"],
        result["eventsPushed"],
    )


def status(client: FlaskClient, auth: dict[str, str]) -> dict[str, Any]:
    response = client.get("/api/v1/crm/calendar/connections/status", headers=auth)
    return next(s for s in response.json if s["provider"] == "OUTLOOK")  # type: ignore[union-attr]


def connection(app: Flask) -> CalendarConnection:
    with app.app_context():
        row = db.session.execute(select(CalendarConnection)).scalar_one()
        db.session.expunge(row)
        return row


YEAR = timedelta(days=366)


def crm_events(client: FlaskClient, auth: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The user's CRM events by their Outlook id (or title when not linked)."""
    response = client.get(
        EVENTS,
        query_string={"from": str(p.TODAY - YEAR), "to": str(p.TODAY + 2 * YEAR), "page_size": 100},
        headers=auth,
    )
    assert response.status_code == 200, response.json
    return {e["sources"].get("OUTLOOK") or e["title"]: e for e in response.json}


def graph_time(moment: datetime) -> str:
    """A Graph `lastModifiedDateTime`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def body_of(route: responses.BaseResponse, number: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(route.calls[number].request.body or b"")
    return result
