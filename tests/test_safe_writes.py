"""Writes are safe for the people in the meeting: a CRM edit synced to an event its owner
set up with guests, reminders and a video meeting changes only the CRM's fields, keeps the
rest as it was, and no Google write asks Google to mail the guests (``sendUpdates=none``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from calendar_connections.config import get_settings
from calendar_connections.crypto import get_cipher
from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection
from calendar_connections.providers.types import EventFields, EventPayload
from calendar_connections.sync.engine import provider_client

from .support.attendees import GUESTS, MEET, OUTLOOK_GUESTS, REMINDERS
from .support.batches import sent_calls
from .support.sandbox import (
    EVENTS,
    GOOGLE,
    OUTLOOK,
    Sandbox,
    Side,
    connect,
    crm_items,
    sandbox_config,
    soon,
    sync,
)

GOOGLE_API = "/google/calendar/v3/"
WRITES = ("POST", "PATCH", "PUT", "DELETE")
NOT_OURS = {"attendees", "reminders", "conferenceData", "onlineMeeting", "isOnlineMeeting"}


pytestmark = pytest.mark.app_config(**sandbox_config())


def google_writes(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The Google API writes the sandbox answered."""
    return [
        entry
        for entry in sandbox.requests()
        if entry["method"] in WRITES and entry["path"].startswith(GOOGLE_API)
    ]


def sent_bodies(http: responses.RequestsMock, method: str) -> list[dict[str, Any]]:
    """The JSON bodies of the service's ``method`` requests to the providers' event APIs."""
    return [
        sent.body
        for sent in sent_calls(http.calls)
        if sent.method == method and "/events" in sent.url
    ]


def the_item(sandbox: Sandbox, side: Side, event_id: str) -> dict[str, Any]:
    return next(item for item in sandbox.items(side) if item["id"] == event_id)


def edit_in_crm(client: FlaskClient, auth: dict[str, str], provider_id: str, side: Side) -> None:
    """Retitle (and describe) the CRM copy of the provider's event ``provider_id``."""
    event = next(e for e in crm_items(client, auth) if e["sources"][side.name] == provider_id)
    body = {"title": "Planning (moved)", "description": "Agenda attached"}
    answer = client.patch(f"{EVENTS}/{event['id']}", json=body, headers=auth)
    assert answer.status_code == 200, answer.json


def test_google_crm_edit_keeps_guests_reminders_and_meet_and_mails_nobody(
    client: FlaskClient, auth: dict[str, str], sandbox: Sandbox, http: responses.RequestsMock
) -> None:
    connect(client, auth, GOOGLE)
    owner_event = GOOGLE.body("Planning", soon(30), "Room 1") | {
        "attendees": GUESTS,
        "reminders": REMINDERS,
        "conferenceData": MEET,
    }
    planning = sandbox.create(GOOGLE, owner_event)
    assert sync(client, auth, GOOGLE)["eventsCreated"] == 1
    edit_in_crm(client, auth, planning["id"], GOOGLE)
    memo = client.post(EVENTS, json={"title": "Memo", **soon(40).crm()}, headers=auth)
    assert memo.status_code == 201, memo.json

    assert sync(client, auth, GOOGLE)["eventsPushed"] == 2  # the patch and the insert
    assert client.delete(f"{EVENTS}/{memo.json['id']}", headers=auth).status_code == 204
    assert sync(client, auth, GOOGLE)["eventsPushed"] == 1  # the delete

    after = the_item(sandbox, GOOGLE, planning["id"])
    assert (after["summary"], after["description"]) == ("Planning (moved)", "Agenda attached")
    assert after["attendees"] == GUESTS
    assert after["reminders"] == REMINDERS
    assert after["conferenceData"] == MEET
    writes = google_writes(sandbox)
    assert sorted({entry["method"] for entry in writes}) == ["DELETE", "PATCH", "POST"]
    assert all(entry["params"].get("sendUpdates") == ["none"] for entry in writes), writes
    assert all(not NOT_OURS & set(body) for body in sent_bodies(http, "PATCH"))


def test_google_take_over_of_an_earlier_insert_keeps_guests_and_mails_nobody(
    app: Flask, client: FlaskClient, auth: dict[str, str], sandbox: Sandbox
) -> None:
    """An insert that finds its id taken (409: inserted by a sync that died) patches it."""
    connect(client, auth, GOOGLE)
    when = soon(30)
    assert isinstance(when.start, datetime) and isinstance(when.end, datetime)
    fields = EventFields(title="Memo", start_at=when.start, end_at=when.end, time_zone="UTC")
    payload = EventPayload(uid="memo0123456789abcdef", tag="7", fields=fields)
    with app.app_context():
        connection = db.session.execute(select(CalendarConnection)).scalar_one()
        calendar = provider_client(db.session, connection, get_settings(app), get_cipher())
        calendar.insert(payload)
        sandbox.patch(GOOGLE, payload.uid, {"attendees": GUESTS, "reminders": REMINDERS})
        sandbox.call("DELETE", "/requests", status=204)
        payload.fields.title = "Memo (retried)"

        taken_over = calendar.insert(payload)
        calendar.close()

    assert taken_over.external_id == payload.uid
    writes = google_writes(sandbox)
    assert [(e["method"], e["status"]) for e in writes] == [("POST", 409), ("PATCH", 200)]
    assert all(entry["params"].get("sendUpdates") == ["none"] for entry in writes)
    after = the_item(sandbox, GOOGLE, payload.uid)
    assert after["summary"] == "Memo (retried)"
    assert (after["attendees"], after["reminders"]) == (GUESTS, REMINDERS)


def test_outlook_crm_edit_keeps_attendees_and_the_online_meeting(
    client: FlaskClient, auth: dict[str, str], sandbox: Sandbox, http: responses.RequestsMock
) -> None:
    connect(client, auth, OUTLOOK)
    owner_event = OUTLOOK.body("Planning", soon(30), "Room 1") | {
        "attendees": OUTLOOK_GUESTS,
        "isOnlineMeeting": True,
        "onlineMeetingProvider": "teamsForBusiness",
    }
    planning = sandbox.create(OUTLOOK, owner_event)
    join_url = planning["onlineMeeting"]["joinUrl"]
    assert sync(client, auth, OUTLOOK)["eventsCreated"] == 1
    edit_in_crm(client, auth, planning["id"], OUTLOOK)

    assert sync(client, auth, OUTLOOK)["eventsPushed"] == 1

    after = the_item(sandbox, OUTLOOK, planning["id"])
    assert after["subject"] == "Planning (moved)"
    assert after["attendees"] == OUTLOOK_GUESTS
    assert after["isOnlineMeeting"] is True
    assert after["onlineMeeting"] == {"joinUrl": join_url}
    patches = sent_bodies(http, "PATCH")
    assert patches and all(not NOT_OURS & set(body) for body in patches)


@pytest.mark.parametrize(
    ("side", "written"),
    [(GOOGLE, {"summary", "extendedProperties"}), (OUTLOOK, {"subject"})],
    ids=["google", "outlook"],
)
def test_an_update_writes_only_what_the_crm_changed(
    client: FlaskClient,
    auth: dict[str, str],
    sandbox: Sandbox,
    http: responses.RequestsMock,
    side: Side,
    written: set[str],
) -> None:
    """A retitle sends the title alone (Google: and our tag): the description, which on an
    Outlook online meeting holds its join information, and the times are left alone; a change
    that the provider already holds writes nothing."""
    connect(client, auth, side)
    meeting = {"isOnlineMeeting": True} if side is OUTLOOK else {"conferenceData": MEET}
    owner_event = side.body("Planning", soon(30), "Room 1") | meeting
    planning = sandbox.create(side, owner_event)
    sync(client, auth, side)
    event = crm_items(client, auth)[0]
    retitle = {"title": "Planning (moved)"}
    assert client.patch(f"{EVENTS}/{event['id']}", json=retitle, headers=auth).status_code == 200

    assert sync(client, auth, side)["eventsPushed"] == 1

    (patch,) = sent_bodies(http, "PATCH")
    assert set(patch) == written
    after = the_item(sandbox, side, planning["id"])
    assert side.view(after).title == "Planning (moved)"
    assert side.view(after).start == side.view(planning).start
    if side is OUTLOOK:
        assert after["onlineMeeting"] == planning["onlineMeeting"]
    # Back and forth before a sync: the provider already has it, nothing is written.
    for title in ("Other", "Planning (moved)"):
        body = {"title": title}
        assert client.patch(f"{EVENTS}/{event['id']}", json=body, headers=auth).status_code == 200
    assert sync(client, auth, side)["eventsPushed"] == 0
    assert len(sent_bodies(http, "PATCH")) == 1
