"""A third provider, in memory, registered through the registry: the engine syncs it both ways
as it is, with no change to its code."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from calendar_connections.config import Settings, get_settings
from calendar_connections.crypto import get_cipher
from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection
from calendar_connections.providers import registry
from calendar_connections.providers.batch import write_singly
from calendar_connections.providers.http import OAuthClientConfig
from calendar_connections.providers.spec import AccountInfo, ClientContext, ProviderSpec
from calendar_connections.providers.types import (
    EventFields,
    EventPayload,
    Page,
    RemoteEvent,
    RemoteGone,
    Write,
    WriteResult,
)
from calendar_connections.sync.service import run_sync
from calendar_connections.token_store import save_token

from .support.events import timed

EVENTS = "/api/v1/crm/calendar/events"
NAME = "MEMORY"


@dataclass
class MemoryCalendar:
    """A provider's calendar kept in a dict; every change gets the next sequence number."""

    events: dict[str, RemoteEvent] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def put(self, event: RemoteEvent) -> RemoteEvent:
        number = next(self.sequence)
        stored = replace(event, etag=f"v{number}", updated=datetime.now(UTC))
        self.events[event.external_id] = stored
        self.changed[event.external_id] = number
        return stored

    def add(self, fields: EventFields, tag: str | None = None) -> RemoteEvent:
        return self.put(RemoteEvent(f"mem-{next(self.ids)}", fields=fields, crm_tag=tag))

    def cancel(self, external_id: str) -> None:
        self.put(replace(self.events[external_id], cancelled=True))

    def live(self) -> dict[str, RemoteEvent]:
        return {key: event for key, event in self.events.items() if not event.cancelled}


@dataclass
class MemoryClient:
    """The engine's ``CalendarClient`` over a ``MemoryCalendar``."""

    calendar: MemoryCalendar

    def list_changes(
        self, cursor: str | None, window_start: datetime, window_end: datetime
    ) -> Iterator[Page]:
        since = int(cursor or 0)
        items = [
            event
            for key, event in self.calendar.events.items()
            if self.calendar.changed[key] > since and (cursor or not event.cancelled)
        ]
        yield Page(items, cursor=str(max(self.calendar.changed.values(), default=0)))

    def get(self, external_id: str) -> RemoteEvent:
        event = self.calendar.events.get(external_id)
        if event is None or event.cancelled:
            raise RemoteGone(external_id)
        return event

    def insert(self, payload: EventPayload) -> RemoteEvent:
        return self.calendar.add(payload.fields, tag=payload.tag)

    def update(self, external_id: str, payload: EventPayload, etag: str | None) -> RemoteEvent:
        return self.calendar.put(replace(self.get(external_id), fields=payload.fields))

    def delete(self, external_id: str) -> None:
        if external_id in self.calendar.live():
            self.calendar.cancel(external_id)

    # No batch endpoint: the provider-neutral fallback makes one call per write.
    batch_size = 10

    def write_batch(self, writes: Sequence[Write]) -> list[WriteResult]:
        return write_singly(self, writes)

    def close(self) -> None:
        pass


def oauth(settings: Settings) -> OAuthClientConfig:
    return OAuthClientConfig(
        client_id="memory",
        client_secret="memory",
        redirect_uri="http://localhost/memory",
        authorize_url="http://localhost/memory/authorize",
        token_url="http://localhost/memory/token",
        scopes=(),
    )


@pytest.fixture
def calendar() -> Iterator[MemoryCalendar]:
    """A memory calendar registered as the provider MEMORY for the test's length."""
    memory = MemoryCalendar()

    def client(context: ClientContext) -> MemoryClient:
        return MemoryClient(memory)

    def account(settings: Settings, token: dict[str, Any]) -> AccountInfo:
        return AccountInfo("memory", None)

    spec = ProviderSpec(
        name=NAME, label="Memory", oauth=oauth, client=client, fetch_account=account
    )
    registry.register(spec)
    yield memory
    registry.unregister(NAME)


def connect_memory(app: Flask) -> None:
    with app.app_context():
        connection = CalendarConnection(
            user_id="user-1", provider=NAME, calendar_id="memory", connected=True
        )
        db.session.add(connection)
        save_token(connection, {"access_token": "a", "token_type": "Bearer"}, get_cipher())
        db.session.commit()


def sync(app: Flask) -> tuple[int, int, int, int]:
    with app.app_context():
        connection = db.session.execute(
            select(CalendarConnection).where(CalendarConnection.provider == NAME)
        ).scalar_one()
        result = run_sync(db.session, connection, get_settings(app), get_cipher())
        assert result.success, result.error
        return (
            result.events_created,
            result.events_updated,
            result.events_deleted,
            result.events_pushed,
        )


def crm_events(client: FlaskClient, auth: dict[str, str]) -> dict[str, dict[str, Any]]:
    response = client.get(
        EVENTS, query_string={"from": "2026-01-01", "to": "2028-01-01"}, headers=auth
    )
    assert response.status_code == 200, response.json
    return {event["title"]: event for event in response.json}


def test_a_registered_in_memory_provider_syncs_both_ways(
    app: Flask, client: FlaskClient, auth: dict[str, str], calendar: MemoryCalendar
) -> None:
    """Pull creates CRM events, CRM creates are pushed, a delete goes both ways."""
    lunch = calendar.add(
        EventFields(
            title="Team lunch",
            start_at=datetime(2027, 3, 2, 12, tzinfo=UTC),
            end_at=datetime(2027, 3, 2, 13, tzinfo=UTC),
            time_zone="UTC",
        )
    )
    body = timed("Demo", "2027-03-03T10:00:00+00:00", "2027-03-03T11:00:00+00:00")
    demo = client.post(EVENTS, json=body, headers=auth).json
    connect_memory(app)

    assert sync(app) == (1, 0, 0, 1)

    events = crm_events(client, auth)
    assert set(events) == {"Team lunch", "Demo"}
    assert events["Team lunch"]["sources"] == {NAME: lunch.external_id}
    assert events["Team lunch"]["start"].startswith("2027-03-02T12:00:00")
    pushed = [event for event in calendar.live().values() if event.fields.title == "Demo"]
    assert len(pushed) == 1 and pushed[0].crm_tag == str(demo["id"])
    assert events["Demo"]["sources"] == {NAME: pushed[0].external_id}

    # The memory calendar deletes the lunch; the CRM deletes the demo.
    calendar.cancel(lunch.external_id)
    assert client.delete(f"{EVENTS}/{demo['id']}", headers=auth).status_code == 204

    assert sync(app) == (0, 0, 1, 1)

    assert crm_events(client, auth) == {}
    assert calendar.live() == {}
    # Nothing is left to do on either side.
    assert sync(app) == (0, 0, 0, 0)
