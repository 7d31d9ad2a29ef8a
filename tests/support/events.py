"""Events API tests: bodies, calls and rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, CalendarEvent, EventLink

from .connections import Case

BASE = "/api/v1/crm/calendar/events"
WEEKLY = ["RRULE:FREQ=WEEKLY;BYDAY=MO", "EXDATE:20260309T090000Z"]
T1, T2 = "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"


def timed(title: str, start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {"title": title, "start": start, "end": end, **extra}


def all_day(title: str, start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {"title": title, "allDay": True, "startDate": start, "endDate": end, **extra}


def create(client: FlaskClient, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(BASE, json=body, headers=auth)
    assert response.status_code == 201, response.json
    result: dict[str, Any] = response.json
    return result


def row(app: Flask, event_id: int) -> CalendarEvent | None:
    with app.app_context():
        return db.session.get(CalendarEvent, event_id)


def row_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(CalendarEvent)) or 0


def titles(response: Any) -> list[str]:
    assert response.status_code == 200, response.json
    return [event["title"] for event in response.json]


def link(app: Flask, event_id: int, case: Case, external_id: str, kind: str = "event") -> None:
    with app.app_context():
        connection = db.session.execute(
            select(CalendarConnection).where(CalendarConnection.provider == case.name)
        ).scalar_one()
        db.session.add(
            EventLink(
                connection_id=connection.id, event_id=event_id, external_id=external_id, kind=kind
            )
        )
        db.session.commit()


def add_instance(app: Flask, series_id: int, original_start: datetime) -> int:
    with app.app_context():
        instance = CalendarEvent(
            user_id="user-1",
            title="moved",
            start_at=original_start.replace(hour=15),
            end_at=original_start.replace(hour=16),
            time_zone="UTC",
            series_id=series_id,
            original_start_at=original_start,
        )
        db.session.add(instance)
        db.session.commit()
        return instance.id
