"""The provider sandbox treats writes as the real APIs do where meeting data is concerned:
Google ignores conferenceData without conferenceDataVersion=1 and checks sendUpdates, a PATCH
keeps guests, reminders and the meeting; Graph keeps attendees and the online meeting; the
request log carries each request's parsed query parameters."""

from __future__ import annotations

from flask.testing import FlaskClient

from .support.attendees import GUESTS, MEET, OUTLOOK_GUESTS, REMINDERS
from .support.google_sandbox import EVENTS, bearer, timed
from .support.google_sandbox import connect as google_connect
from .support.microsoft_sandbox import GRAPH, event
from .support.microsoft_sandbox import connect as graph_connect
from .support.sandbox_direct import app, client

__all__ = ["app", "client"]  # the sandbox as the app: fixtures used as arguments


def test_google_patch_keeps_guests_reminders_and_meet(client: FlaskClient) -> None:
    headers = bearer(google_connect(client))
    created = client.post(
        EVENTS,
        query_string={"conferenceDataVersion": 1, "sendUpdates": "none"},
        json=timed(3, 10, attendees=GUESTS, reminders=REMINDERS, conferenceData=MEET),
        headers=headers,
    )
    assert created.status_code == 200 and created.json["conferenceData"] == MEET

    patched = client.patch(
        f"{EVENTS}/{created.json['id']}",
        query_string={"sendUpdates": "none"},
        json={"summary": "Renamed", "conferenceData": {"conferenceId": "other"}},
        headers=headers,
    )

    assert patched.status_code == 200
    body = patched.json
    assert body["summary"] == "Renamed"
    assert (body["attendees"], body["reminders"]) == (GUESTS, REMINDERS)
    assert body["conferenceData"] == MEET  # version 0 ignores the body's conference data


def test_google_insert_without_conference_version_ignores_conference_data(
    client: FlaskClient,
) -> None:
    headers = bearer(google_connect(client))
    created = client.post(EVENTS, json=timed(3, 10, conferenceData=MEET), headers=headers)
    assert created.status_code == 200 and "conferenceData" not in created.json


def test_google_refuses_an_unknown_send_updates_value(client: FlaskClient) -> None:
    headers = bearer(google_connect(client))
    answer = client.post(
        EVENTS, query_string={"sendUpdates": "nobody"}, json=timed(3, 10), headers=headers
    )
    assert answer.status_code == 400
    assert answer.json["error"]["errors"][0]["reason"] == "invalidParameter"
    created = client.post(EVENTS, json=timed(3, 10), headers=headers)
    deleted = client.delete(
        f"{EVENTS}/{created.json['id']}", query_string={"sendUpdates": "all!"}, headers=headers
    )
    assert deleted.status_code == 400


def test_request_log_has_the_parsed_query(client: FlaskClient) -> None:
    headers = bearer(google_connect(client))
    client.post(EVENTS, query_string={"sendUpdates": "none"}, json=timed(3, 10), headers=headers)
    log = client.get("/sandbox/requests").json
    write = next(entry for entry in log if entry["method"] == "POST" and entry["path"] == EVENTS)
    assert write["params"] == {"sendUpdates": ["none"]}
    assert write["query"] == "sendUpdates=none"


def test_graph_patch_keeps_attendees_and_the_online_meeting(client: FlaskClient) -> None:
    headers = graph_connect(client)
    body = event(3, attendees=OUTLOOK_GUESTS, isOnlineMeeting=True)
    body["onlineMeetingProvider"] = "teamsForBusiness"
    created = client.post(f"{GRAPH}/me/events", json=body, headers=headers)
    assert created.status_code == 201
    meeting = created.json["onlineMeeting"]
    assert meeting["joinUrl"].startswith("https://teams.microsoft.com/")

    patched = client.patch(
        f"{GRAPH}/me/events/{created.json['id']}", json={"subject": "Renamed"}, headers=headers
    )

    assert patched.status_code == 200
    assert patched.json["attendees"] == OUTLOOK_GUESTS
    assert patched.json["onlineMeeting"] == meeting
    assert patched.json["onlineMeetingProvider"] == "teamsForBusiness"
    offline = client.patch(
        f"{GRAPH}/me/events/{created.json['id']}", json={"isOnlineMeeting": False}, headers=headers
    )
    assert offline.json["onlineMeeting"] is None and offline.json["isOnlineMeeting"] is False
