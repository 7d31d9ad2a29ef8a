"""Google sync tests: canned events and pages, and a harness around the mocked API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, CalendarEvent

from . import payloads as p
from .connections import GOOGLE, connect

CONNECTIONS = "/api/v1/crm/calendar/connections"
SYNC = f"{CONNECTIONS}/google/sync"
EVENTS = "/api/v1/crm/calendar/events"
URL = p.GOOGLE_EVENTS_URL
BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
DAY = datetime.now(UTC).date() + timedelta(days=10)  # inside the sync window, whenever run


def at(days: int, hour: int, zone: ZoneInfo = BERLIN) -> datetime:
    return datetime.combine(DAY + timedelta(days=days), time(hour), zone)


def ago(minutes: float) -> str:
    """A Google `updated` value, ``minutes`` ago."""
    moment = datetime.now(UTC) - timedelta(minutes=minutes)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def gevent(
    event_id: str, summary: str, days: int = 0, hour: int = 10, **extra: Any
) -> dict[str, Any]:
    """A one-hour timed Google event, Europe/Berlin unless ``zone`` says otherwise."""
    zone = extra.pop("zone", BERLIN)
    start = at(days, hour, zone)
    end = (start + timedelta(hours=1)).isoformat()
    return p.google_event(event_id, summary, start.isoformat(), end, zone=zone.key, **extra)


def page(*items: dict[str, Any], token: str = "st-1", next_page: str | None = None) -> Any:
    return p.google_list(list(items), sync_token=token, next_page=next_page)


def tagged(uid: str) -> dict[str, Any]:
    return {"extendedProperties": {"private": {"crmEventId": uid}}}


def params(request: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}


def body_of(request: Any) -> dict[str, Any]:
    return json.loads(request.body)  # type: ignore[no-any-return]


def instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None
    return parsed


@dataclass
class Harness:
    """The CRM API of user-1 and the mocked Google behind it."""

    client: FlaskClient
    auth: dict[str, str]
    http: responses.RequestsMock
    app: Flask

    def lists(self, *answers: dict[str, Any] | tuple[int, Any]) -> None:
        """Answers to the next events.list calls, in order (a tuple is status, body)."""
        for answer in answers:
            status, body = answer if isinstance(answer, tuple) else (200, answer)
            self.http.get(URL, json=body, status=status)

    def calls(self, method: str, path: str = "") -> list[Any]:
        """Requests made to the events collection (``path`` = "/{id}" for one event)."""
        return [
            c.request
            for c in self.http.calls
            if c.request.method == method and c.request.url.split("?")[0] == URL + path
        ]

    def sync(self, *expected: int) -> dict[str, Any]:
        """Sync Google; with ``expected``: assert success and created/updated/deleted/pushed."""
        response = self.client.post(SYNC, headers=self.auth)
        assert response.status_code == 200, response.json
        result: dict[str, Any] = response.json
        assert result["provider"] == "GOOGLE"
        if expected:
            assert result["success"], result["error"]
            got = [result[f"events{k}"] for k in ("Created", "Updated", "Deleted", "Pushed")]
            assert got == list(expected)
        return result

    def events(self) -> dict[str, dict[str, Any]]:
        """The CRM's live events by title (titles are unique in these tests)."""
        response = self.client.get(f"{EVENTS}?page_size=100", headers=self.auth)
        assert response.status_code == 200
        found = {e["title"]: e for e in response.json}
        assert len(found) == len(response.json), "duplicate events"
        return found

    def create(self, title: str, days: int = 1, hour: int = 14, **body: Any) -> tuple[int, str]:
        """A CRM event (timed, one hour, Europe/Berlin unless ``body`` says otherwise)."""
        if not body.get("allDay"):
            start, end = at(days, hour), at(days, hour + 1)
            body = {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "timeZone": BERLIN.key,
                **body,
            }
        response = self.client.post(EVENTS, json={"title": title, **body}, headers=self.auth)
        assert response.status_code == 201, response.json
        with self.db() as session:
            event = session.get(CalendarEvent, response.json["id"])
            assert event is not None
            return event.id, event.uid

    def edit(self, event_id: int, **body: Any) -> None:
        response = self.client.patch(f"{EVENTS}/{event_id}", json=body, headers=self.auth)
        assert response.status_code == 200, response.json

    @contextmanager
    def db(self) -> Iterator[Session]:
        with self.app.app_context():
            yield db.session()

    def status(self) -> dict[str, Any]:
        response = self.client.get(f"{CONNECTIONS}/status", headers=self.auth)
        return next(s for s in response.json if s["provider"] == "GOOGLE")  # type: ignore[no-any-return]


def connection(session: Session, provider: str = "GOOGLE") -> CalendarConnection:
    return session.execute(
        select(CalendarConnection).where(CalendarConnection.provider == provider)
    ).scalar_one()


@pytest.fixture
def harness(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask
) -> Harness:
    """The CRM API of user-1 and the mocked Google behind it."""
    return Harness(client, auth, http, app)


@pytest.fixture
def g(harness: Harness) -> Harness:
    """The harness with Google connected (access token ya29.access-1, refresh 1//refresh-1)."""
    assert connect(harness.client, harness.auth, harness.http, GOOGLE).status_code == 200
    return harness
