"""Odd calendar data never wedges a connection: provider text is cleaned to what the CRM
stores, and an event that cannot be read, stored or written is skipped, named in the sync's
``error`` and tried again next time, while the calendar's other events sync.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from calendar_connections.models.event import LOCATION_MAX_LENGTH

from .support.sandbox import (
    CONNECTIONS,
    EVENTS,
    GOOGLE,
    OUTLOOK,
    Sandbox,
    Side,
    connect,
    crm_items,
    sandbox_config,
    sync,
    timing,
)

pytestmark = pytest.mark.app_config(**sandbox_config())


def with_text(side: Side, body: dict[str, Any], description: str) -> dict[str, Any]:
    if side is GOOGLE:
        return {**body, "description": description}
    return {**body, "body": {"contentType": "text", "content": description}}


def test_provider_text_with_nul_surrogates_and_overlong_fields_is_cleaned(
    client: FlaskClient, auth: dict[str, str], sandbox: Sandbox, side: Side
) -> None:
    """Text anyone can put in an invitation syncs, cleaned the same way on every database."""
    connect(client, auth, side)
    long_place = "Room " + "x" * 2000
    odd = side.body("Nul\x00title", timing(2), long_place)
    sandbox.create(side, with_text(side, odd, "bad \ud800 half\x00way"))
    sandbox.create(side, side.body("Plain", timing(3), "k2"))

    result = sync(client, auth, side)

    assert (result["eventsCreated"], result["error"]) == (2, None)
    by_title = {item["title"]: item for item in crm_items(client, auth)}
    assert set(by_title) == {"Nultitle", "Plain"}
    cleaned = by_title["Nultitle"]
    assert cleaned["location"] == long_place[:LOCATION_MAX_LENGTH]
    assert cleaned["description"] == "bad \ufffd halfway"
    again = sync(client, auth, side)
    assert (again["eventsCreated"], again["eventsUpdated"], again["eventsPushed"]) == (0, 0, 0)


def test_an_unreadable_provider_event_is_skipped_and_named_the_rest_sync(
    client: FlaskClient, auth: dict[str, str], sandbox: Sandbox
) -> None:
    """A listed item whose start cannot be read is left out; the sync succeeds and says so,
    keeps no cursor past it, and the next sync tries it again."""
    connect(client, auth, GOOGLE)
    good = sandbox.create(GOOGLE, GOOGLE.body("Good", timing(2), "k1"))
    broken = {**good, "id": "broken1", "start": {"dateTime": "Tuesday next week"}}
    listing = {"kind": "calendar#events", "items": [broken, good], "nextSyncToken": "st-x"}
    sandbox.fault(method="GET", path="/events", status=200, body=listing, times=2)

    first = sync(client, auth, GOOGLE)
    second = sync(client, auth, GOOGLE)

    for result in (first, second):
        assert result["success"] is True
        assert "1 event(s) skipped" in result["error"] and "broken1" in result["error"]
    assert first["eventsCreated"] == 1 and second["eventsCreated"] == 0
    assert [item["title"] for item in crm_items(client, auth)] == ["Good"]
    status = client.get(f"{CONNECTIONS}/status", headers=auth).json
    (google,) = [row for row in status if row["provider"] == "GOOGLE"]
    assert (google["lastSyncStatus"], google["connected"]) == ("SUCCESS", True)
    assert "broken1" in google["lastSyncError"]
    # Gone from the listing (fixed at the provider): the next sync is clean again.
    third = sync(client, auth, GOOGLE)
    assert third["error"] is None and third["eventsCreated"] == 0


def test_a_rule_outlook_cannot_express_is_skipped_for_outlook_only(
    client: FlaskClient, auth: dict[str, str], sandbox: Sandbox
) -> None:
    """A series Google takes but Graph has no pattern for is pushed to Google, skipped for
    Outlook (named in the error, retried each sync); the other events reach both."""
    for account in (GOOGLE, OUTLOOK):
        connect(client, auth, account)
        sync(client, auth, account)
    twice_monthly = {
        "title": "Payroll",
        **timing(2).crm(),
        "recurrence": ["RRULE:FREQ=MONTHLY;BYMONTHDAY=1,15"],
    }
    series = client.post(EVENTS, json=twice_monthly, headers=auth)
    assert series.status_code == 201, series.json
    plain = client.post(EVENTS, json={"title": "Plain", **timing(3).crm()}, headers=auth)
    assert plain.status_code == 201

    google = sync(client, auth, GOOGLE)
    outlook = sync(client, auth, OUTLOOK)
    outlook_again = sync(client, auth, OUTLOOK)

    assert (google["eventsPushed"], google["error"]) == (2, None)
    assert outlook["success"] is True and outlook["eventsPushed"] == 1
    for result in (outlook, outlook_again):
        assert f"CRM event {series.json['id']}" in result["error"]
        assert "Outlook" in result["error"]
    assert sorted(item["subject"] for item in sandbox.items(OUTLOOK)) == ["Plain"]
    assert sorted(item["summary"] for item in sandbox.items(GOOGLE)) == ["Payroll", "Plain"]


def test_a_write_the_provider_refuses_is_skipped_and_retried(
    client: FlaskClient, auth: dict[str, str], sandbox: Sandbox, side: Side
) -> None:
    """A 400 to one insert skips that event only; the next sync pushes it."""
    connect(client, auth, side)
    sync(client, auth, side)
    for n in range(3):
        body = {"title": f"CRM {n}", "location": f"k{n}", **timing(2 + n).crm()}
        assert client.post(EVENTS, json=body, headers=auth).status_code == 201
    refusal = {"error": {"code": 400, "message": "Invalid value", "errors": []}}
    sandbox.fault(method="POST", path="/events", status=400, body=refusal, times=1)

    first = sync(client, auth, side)
    second = sync(client, auth, side)

    assert (first["success"], first["eventsPushed"]) == (True, 2)
    assert "1 event(s) skipped" in first["error"] and "HTTP 400" in first["error"]
    assert (second["eventsPushed"], second["error"]) == (1, None)
    assert len(sandbox.items(side)) == 3
    assert all(item["sources"] for item in crm_items(client, auth))


@pytest.mark.parametrize(
    "rule",
    [
        "RRULE:FREQ=HOURLY",
        "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
    ],
)
def test_the_events_api_refuses_rules_no_provider_can_take_or_that_never_occur(
    client: FlaskClient, auth: dict[str, str], rule: str
) -> None:
    body = {"title": "Odd", **timing(2).crm(), "recurrence": [rule]}
    answer = client.post(EVENTS, json=body, headers=auth)
    assert answer.status_code == 422
    assert answer.mimetype == "application/problem+json"
    assert "recurrence" in answer.json["errors"]
    assert crm_items(client, auth) == []
