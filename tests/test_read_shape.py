"""The read path's shape: the events list and the status answer in a fixed number of
statements, the list's hand-written dump is EventSchema's to the byte, and a token is verified
by the JWT library once per process."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import jwt as pyjwt
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_smorest import Blueprint

from calendar_connections.api.common import ApiBlueprint
from calendar_connections.auth import issue_token
from calendar_connections.extensions import db
from calendar_connections.jwt_manager import VERIFIED_TOKENS_KEY
from calendar_connections.models import CalendarConnection, CalendarEvent, EventLink
from calendar_connections.operations import events
from calendar_connections.operations.connections import connection_statuses
from calendar_connections.schemas.connections import ConnectionStatusSchema
from calendar_connections.schemas.events import EventSchema

BASE = "/api/v1/crm/calendar/events"
STATUS = "/api/v1/crm/calendar/connections/status"
START = datetime(2026, 3, 2, 9, tzinfo=UTC)


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app's engine sends inside the block."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def connect(app: Flask, user: str, *providers: str) -> list[int]:
    with app.app_context():
        rows = [
            CalendarConnection(
                user_id=user,
                provider=provider,
                calendar_id=f"{provider.lower()}-cal",
                account_email=f"{user}@example.test",
                connected=True,
                last_sync_at=START,
                last_sync_status="SUCCESS",
            )
            for provider in providers
        ]
        db.session.add_all(rows)
        db.session.commit()
        return [row.id for row in rows]


def add_events(app: Flask, user: str, count: int, connection_ids: list[int]) -> None:
    """``count`` timed events, each linked to every connection given."""
    with app.app_context():
        for n in range(count):
            event = CalendarEvent(
                user_id=user,
                title=f"Event {n}",
                start_at=START + timedelta(hours=n),
                end_at=START + timedelta(hours=n + 1),
                time_zone="UTC",
            )
            db.session.add(event)
            db.session.flush()
            for connection_id in connection_ids:
                db.session.add(
                    EventLink(connection_id=connection_id, event_id=event.id, external_id=f"x{n}")
                )
        db.session.commit()


def list_statements(app: Flask, client: FlaskClient, headers: dict[str, str]) -> int:
    with statements(app) as sent:
        response = client.get(BASE, query_string={"page_size": 100}, headers=headers)
    assert response.status_code == 200, response.json
    return len(sent)


def test_the_list_takes_the_same_statements_for_10_and_100_events(
    app: Flask, client: FlaskClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    few, many = token_for("few"), token_for("many")
    add_events(app, "few", 10, connect(app, "few", "GOOGLE"))
    add_events(app, "many", 100, connect(app, "many", "GOOGLE", "OUTLOOK"))

    assert len(client.get(BASE, query_string={"page_size": 100}, headers=many).json) == 100
    # The count, the page, the page's sources.
    assert list_statements(app, client, few) == list_statements(app, client, many) == 3


def test_a_page_past_the_end_still_counts_the_list(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    add_events(app, "user-1", 3, [])
    with statements(app) as sent:
        response = client.get(BASE, query_string={"page": 5, "page_size": 2}, headers=auth)
    assert response.status_code == 200
    assert response.json == []
    assert json.loads(response.headers["X-Pagination"])["total"] == 3
    assert len(sent) == 2  # the count and the (empty) page: no sources to read


def test_the_status_takes_one_statement_for_one_or_two_connections(
    app: Flask, client: FlaskClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    one, two = token_for("one"), token_for("two")
    connect(app, "one", "GOOGLE")
    connect(app, "two", "GOOGLE", "OUTLOOK")
    counts = []
    for headers, connected in ((one, [True, False]), (two, [True, True])):
        with statements(app) as sent:
            response = client.get(STATUS, headers=headers)
        assert [item["connected"] for item in response.json] == connected
        counts.append(len(sent))
    assert counts == [1, 1]


def varied_events(app: Flask, user: str) -> None:
    """Every kind of event a list shows: timed, all-day, a series and its moved instances
    (timed and all-day), with and without sources, text and without."""
    google, outlook = connect(app, user, "GOOGLE", "OUTLOOK")
    with app.app_context():
        timed_series = CalendarEvent(
            user_id=user,
            title='Weekly ✓ "review" <b>',
            description="Line one\nLine two",
            location="Room 4.12",
            start_at=START,
            end_at=START + timedelta(hours=1),
            time_zone="Europe/Berlin",
            recurrence=["RRULE:FREQ=WEEKLY;BYDAY=MO", "EXDATE:20260309T090000Z"],
            status="tentative",
            updated_at=START + timedelta(microseconds=123456),
        )
        all_day_series = CalendarEvent(
            user_id=user,
            title="Offsite",
            all_day=True,
            start_date=date(2026, 3, 3),
            end_date=date(2026, 3, 5),
            recurrence=["RRULE:FREQ=MONTHLY;COUNT=3"],
        )
        db.session.add_all([timed_series, all_day_series])
        db.session.flush()
        db.session.add_all(
            [
                CalendarEvent(
                    user_id=user,
                    title="Moved",
                    start_at=START + timedelta(days=14, hours=2),
                    end_at=START + timedelta(days=14, hours=3),
                    time_zone="UTC",
                    series_id=timed_series.id,
                    original_start_at=START + timedelta(days=14),
                ),
                CalendarEvent(
                    user_id=user,
                    title="Moved day",
                    all_day=True,
                    start_date=date(2026, 4, 4),
                    end_date=date(2026, 4, 5),
                    series_id=all_day_series.id,
                    original_start_date=date(2026, 4, 3),
                ),
                CalendarEvent(
                    user_id=user,
                    title="Gone",
                    start_at=START,
                    end_at=START + timedelta(hours=1),
                    deleted_at=START,
                ),
            ]
        )
        db.session.add_all(
            [
                EventLink(connection_id=outlook, event_id=timed_series.id, external_id="o-1"),
                EventLink(connection_id=google, event_id=timed_series.id, external_id="g-1"),
                EventLink(connection_id=google, event_id=all_day_series.id, external_id="g-2"),
                EventLink(
                    connection_id=google,
                    event_id=all_day_series.id,
                    external_id="g-2_20260403",
                    kind="occurrence",
                ),
            ]
        )
        db.session.commit()


def test_the_list_body_is_event_schemas_dump_to_the_byte(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    varied_events(app, "user-1")
    response = client.get(BASE, query_string={"page_size": 100}, headers=auth)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    with app.app_context():
        session = db.session()
        rows = session.scalars(
            sa.select(CalendarEvent)
            .where(CalendarEvent.deleted_at.is_(None))
            .order_by(
                sa.func.coalesce(CalendarEvent.start_at, CalendarEvent.start_date),
                CalendarEvent.id,
            )
        ).all()
        expected = EventSchema(many=True).dump(events.describe(session, rows))
        body = app.json.dumps(expected, separators=(",", ":")) + "\n"
    assert len(expected) == 4
    assert response.get_data(as_text=True) == body
    # Each item is also what reading the event alone answers.
    for item in response.json:
        assert client.get(f"{BASE}/{item['id']}", headers=auth).json == item


def test_the_status_body_is_connection_status_schemas_dump_to_the_byte(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    (google,) = connect(app, "user-1", "GOOGLE")
    with app.app_context():
        row = db.session.get(CalendarConnection, google)
        assert row is not None
        row.last_sync_at = START + timedelta(microseconds=250)
        row.last_sync_status = "FAILED"
        row.last_sync_error = "Google said \u00ab no \u00bb"
        row.push_expires_at = datetime.now(UTC) + timedelta(days=3)
        db.session.commit()
    response = client.get(STATUS, headers=auth)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    with app.app_context():
        statuses = connection_statuses(db.session(), "user-1")
        expected = ConnectionStatusSchema(many=True).dump(statuses)
        body = app.json.dumps(expected, separators=(",", ":")) + "\n"
    # Both kinds: connected with every field set (push active), and never connected.
    assert [(s["connected"], s["pushActive"]) for s in expected] == [(True, True), (False, False)]
    assert response.get_data(as_text=True) == body


def test_a_token_is_verified_by_the_library_once(
    app: Flask, client: FlaskClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[str] = []
    library_decode = pyjwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        decoded.append("decode")
        return library_decode(*args, **kwargs)

    monkeypatch.setattr(pyjwt, "decode", counting_decode)
    for _ in range(3):
        assert client.get(STATUS, headers=auth).status_code == 200
    first = len(decoded)
    assert first > 0
    for _ in range(3):
        assert client.get(STATUS, headers=auth).status_code == 200
    assert len(decoded) == first


def test_a_remembered_token_that_expired_is_refused(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        expired = issue_token("user-1", timedelta(minutes=-10))
    # As if it had been verified while it was valid.
    app.extensions[VERIFIED_TOKENS_KEY][expired] = {
        "sub": "user-1",
        "type": "access",
        "exp": int((datetime.now(UTC) - timedelta(minutes=10)).timestamp()),
    }
    response = client.get(STATUS, headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json["detail"] == "The Bearer token has expired."


@pytest.mark.parametrize(
    ("page", "page_size", "total"),
    [(1, 10, 0), (1, 10, 5), (1, 10, 10), (2, 10, 11), (3, 10, 25), (4, 10, 25), (1, 100, 3000)],
)
def test_the_pagination_header_is_flask_smorests(page: int, page_size: int, total: int) -> None:
    ours = ApiBlueprint._make_pagination_metadata(page, page_size, total)
    assert ours == Blueprint._make_pagination_metadata(page, page_size, total)
