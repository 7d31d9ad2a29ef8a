"""The provider sandbox's Microsoft side: identity platform, Graph events, calendarView delta."""

from __future__ import annotations

import requests
import responses
from flask import Flask
from flask.testing import FlaskClient

from .support.microsoft_sandbox import (
    CRM_PROP,
    GRAPH,
    WINDOW,
    authorize,
    connect,
    delta_round,
    event,
    exchange,
    first_delta,
    refresh,
    weekly,
)
from .support.mount import mount_sandbox
from .support.sandbox_direct import app, client, pkce_pair

__all__ = ["app", "client"]  # the sandbox as the app: fixtures used as arguments

# --- Identity platform -------------------------------------------------------------------


def test_code_flow_with_pkce_and_rotating_refresh(client: FlaskClient) -> None:
    verifier, challenge = pkce_pair()
    query = authorize(client, challenge, login_hint="carol@outlook.test")
    assert query["state"] == ["state-9"]
    assert query["session_state"][0]
    answer = exchange(client, query["code"][0], verifier)
    assert answer.status_code == 200
    tokens = answer.json
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3599 and tokens["ext_expires_in"]
    assert set(tokens["scope"].split()) == {"Calendars.ReadWrite", "User.Read"}
    rotated = refresh(client, tokens["refresh_token"])
    assert rotated.status_code == 200
    assert rotated.json["refresh_token"] != tokens["refresh_token"]
    old = refresh(client, tokens["refresh_token"])
    assert old.status_code == 400
    assert old.json["error"] == "invalid_grant"
    assert old.json["error_codes"] == [70008]
    assert old.json["error_description"].startswith("AADSTS70008:")
    assert {"timestamp", "trace_id", "correlation_id"} <= set(old.json)
    assert refresh(client, rotated.json["refresh_token"]).status_code == 200
    me = client.get(
        f"{GRAPH}/me", headers={"Authorization": f"Bearer {rotated.json['access_token']}"}
    )
    assert me.json["mail"] == "carol@outlook.test"


def test_wrong_verifier_and_reused_code(client: FlaskClient) -> None:
    verifier, challenge = pkce_pair()
    code = authorize(client, challenge)["code"][0]
    wrong = exchange(client, code, pkce_pair()[0])
    assert wrong.status_code == 400
    assert wrong.json["error"] == "invalid_grant"
    code = authorize(client, challenge)["code"][0]
    assert exchange(client, code, verifier).status_code == 200
    reused = exchange(client, code, verifier)
    assert reused.status_code == 400
    assert reused.json["error"] == "invalid_grant"


def test_denied_consent(client: FlaskClient) -> None:
    _, challenge = pkce_pair()
    denied = authorize(client, challenge, sandbox_deny="1")
    assert denied["error"] == ["access_denied"]
    assert denied["state"] == ["state-9"]
    assert denied["error_description"][0].startswith("AADSTS65004")


def test_revoked_grants_and_expired_access_tokens(client: FlaskClient) -> None:
    verifier, challenge = pkce_pair()
    code = authorize(client, challenge)["code"][0]
    tokens = exchange(client, code, verifier).json
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    client.post("/sandbox/expire-access-tokens")
    expired = client.get(f"{GRAPH}/me", headers=headers)
    assert expired.status_code == 401
    assert expired.json["error"]["code"] == "InvalidAuthenticationToken"
    client.post("/sandbox/revoke-grants")
    revoked = refresh(client, tokens["refresh_token"])
    assert revoked.json["error"] == "invalid_grant"


def test_me_calendar_and_auth(client: FlaskClient) -> None:
    headers = connect(client)
    me = client.get(f"{GRAPH}/me", headers=headers).json
    assert me["userPrincipalName"] == "carol@outlook.test"
    assert me["displayName"] == "Carol"
    calendar = client.get(f"{GRAPH}/me/calendar", headers=headers).json
    assert calendar["name"] == "Calendar" and calendar["id"]
    same = client.get(f"{GRAPH}/me/calendars/{calendar['id']}", headers=headers)
    assert same.status_code == 200
    assert client.get(f"{GRAPH}/me/calendars/other", headers=headers).status_code == 404
    missing = client.get(f"{GRAPH}/me")
    assert missing.status_code == 401
    assert missing.json["error"]["code"] == "InvalidAuthenticationToken"


# --- Events ------------------------------------------------------------------------------


def test_create_get_patch_delete(client: FlaskClient) -> None:
    headers = connect(client)
    made = client.post(f"{GRAPH}/me/events", headers=headers, json=event(7))
    assert made.status_code == 201
    body = made.json
    assert body["type"] == "singleInstance"
    assert body["originalStartTimeZone"] == "W. Europe Standard Time"
    assert body["start"] == {"dateTime": "2026-12-07T09:00:00.0000000", "timeZone": "UTC"}
    assert body["lastModifiedDateTime"].endswith("Z") and len(body["lastModifiedDateTime"]) == 28
    assert body["bodyPreview"] == "Agenda"
    shown = client.get(
        f"{GRAPH}/me/events/{body['id']}",
        headers={**headers, "Prefer": 'outlook.timezone="Pacific Standard Time"'},
    ).json
    assert shown["start"] == {
        "dateTime": "2026-12-07T01:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }
    patched = client.patch(
        f"{GRAPH}/me/events/{body['id']}", headers=headers, json={"subject": "X"}
    )
    assert patched.status_code == 200
    assert patched.json["subject"] == "X"
    assert patched.json["changeKey"] != body["changeKey"]
    assert client.delete(f"{GRAPH}/me/events/{body['id']}", headers=headers).status_code == 204
    for method in ("get", "patch", "delete"):
        answer = getattr(client, method)(
            f"{GRAPH}/me/events/{body['id']}", headers=headers, json={}
        )
        assert answer.status_code == 404
        assert answer.json["error"]["code"] == "ErrorItemNotFound"


def test_bad_time_zone_is_refused(client: FlaskClient) -> None:
    headers = connect(client)
    answer = client.post(f"{GRAPH}/me/events", headers=headers, json=event(7, zone="Mars/Olympus"))
    assert answer.status_code == 400
    assert answer.json["error"]["code"] == "TimeZoneNotSupportedException"


def test_transaction_id_dedupes_creates(client: FlaskClient) -> None:
    headers = connect(client)
    first = client.post(f"{GRAPH}/me/events", headers=headers, json=event(7, transactionId="t-1"))
    again = client.post(f"{GRAPH}/me/events", headers=headers, json=event(7, transactionId="t-1"))
    assert first.status_code == again.status_code == 201
    assert first.json["id"] == again.json["id"]
    items, _, _ = first_delta(client, headers)
    assert [item["id"] for item in items] == [first.json["id"]]


def test_extended_properties_come_back_when_expanded(client: FlaskClient) -> None:
    headers = connect(client)
    props = [{"id": CRM_PROP, "value": "crm-42"}]
    expand = f"singleValueExtendedProperties($filter=id eq '{CRM_PROP}')"
    made = client.post(
        f"{GRAPH}/me/events",
        headers=headers,
        query_string={"$expand": expand},
        json=event(7, singleValueExtendedProperties=props),
    ).json
    assert made["singleValueExtendedProperties"] == props
    plain = client.get(f"{GRAPH}/me/events/{made['id']}", headers=headers).json
    assert "singleValueExtendedProperties" not in plain
    expanded = client.get(
        f"{GRAPH}/me/events/{made['id']}", headers=headers, query_string={"$expand": expand}
    ).json
    assert expanded["singleValueExtendedProperties"] == props
    delta = client.get(
        f"{GRAPH}/me/calendarView/delta",
        headers=headers,
        query_string={**WINDOW, "$expand": expand},
    ).json
    assert delta["value"][0]["singleValueExtendedProperties"] == props


# --- calendarView delta ------------------------------------------------------------------


def test_delta_paging_then_changes(client: FlaskClient) -> None:
    headers = connect(client)
    ids = [
        client.post(f"{GRAPH}/me/events", headers=headers, json=event(day)).json["id"]
        for day in range(1, 6)
    ]
    outside = event(1)
    outside["start"]["dateTime"] = "2027-02-01T10:00:00"
    outside["end"]["dateTime"] = "2027-02-01T11:00:00"
    client.post(f"{GRAPH}/me/events", headers=headers, json=outside)
    items, delta_link, pages = first_delta(client, headers, page_size=2)
    assert pages == 3
    assert [item["id"] for item in items] == ids
    assert "$deltatoken=" in delta_link

    client.patch(f"{GRAPH}/me/events/{ids[0]}", headers=headers, json={"subject": "Changed"})
    client.delete(f"{GRAPH}/me/events/{ids[1]}", headers=headers)
    added = client.post(f"{GRAPH}/me/events", headers=headers, json=event(20)).json
    changes, next_delta, _ = delta_round(client, headers, delta_link)
    by_id = {item["id"]: item for item in changes}
    assert set(by_id) == {ids[0], ids[1], added["id"]}
    assert by_id[ids[0]]["subject"] == "Changed"
    assert by_id[ids[1]] == {
        "@odata.type": "#microsoft.graph.event",
        "id": ids[1],
        "@removed": {"reason": "deleted"},
    }
    quiet, _, _ = delta_round(client, headers, next_delta)
    assert quiet == []


def test_expired_delta_and_skip_tokens_are_gone(client: FlaskClient) -> None:
    headers = connect(client)
    for day in range(1, 4):
        client.post(f"{GRAPH}/me/events", headers=headers, json=event(day))
    _, delta_link, _ = first_delta(client, headers)
    query = "&".join(f"{k}={v}" for k, v in WINDOW.items())
    first_page = client.get(
        f"{GRAPH}/me/calendarView/delta?{query}",
        headers={**headers, "Prefer": "odata.maxpagesize=1"},
    ).json
    client.post("/sandbox/expire-sync-tokens")
    for url in (delta_link, first_page["@odata.nextLink"]):
        gone = client.get(url, headers=headers)
        assert gone.status_code == 410
        assert gone.json["error"]["code"] == "SyncStateNotFound"
    assert client.get(f"{GRAPH}/me/calendarView/delta", headers=headers).status_code == 400


def test_weekly_series_in_the_view(client: FlaskClient) -> None:
    headers = connect(client)
    master = client.post(f"{GRAPH}/me/events", headers=headers, json=weekly()).json
    assert master["type"] == "seriesMaster"
    items, _, _ = first_delta(client, headers)
    assert [item["type"] for item in items] == ["occurrence"] * 4
    assert {item["seriesMasterId"] for item in items} == {master["id"]}
    assert [item["start"]["dateTime"][:16] for item in items] == [
        "2026-12-07T09:00",
        "2026-12-09T09:00",
        "2026-12-14T09:00",
        "2026-12-16T09:00",
    ]
    assert all(item["recurrence"] is None for item in items)
    fetched = client.get(f"{GRAPH}/me/events/{master['id']}", headers=headers).json
    assert fetched["recurrence"]["pattern"]["daysOfWeek"] == ["monday", "wednesday"]
    occurrence = client.get(f"{GRAPH}/me/events/{items[1]['id']}", headers=headers).json
    assert occurrence["type"] == "occurrence"
    instances = client.get(
        f"{GRAPH}/me/events/{master['id']}/instances", headers=headers, query_string=WINDOW
    ).json["value"]
    assert [i["id"] for i in instances] == [item["id"] for item in items]


def test_series_time_change_reports_the_same_occurrences_changed(client: FlaskClient) -> None:
    headers = connect(client)
    master = client.post(f"{GRAPH}/me/events", headers=headers, json=weekly()).json
    items, delta_link, _ = first_delta(client, headers)
    later = {
        "start": {"dateTime": "2026-12-07T16:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2026-12-07T17:00:00", "timeZone": "W. Europe Standard Time"},
    }
    patched = client.patch(f"{GRAPH}/me/events/{master['id']}", headers=headers, json=later)
    assert patched.status_code == 200
    changes, _, _ = delta_round(client, headers, delta_link)
    assert [item["id"] for item in changes] == [item["id"] for item in items]
    assert {item["start"]["dateTime"][11:16] for item in changes} == {"15:00"}


def test_patched_occurrence_becomes_exception_and_deleted_one_is_removed(
    client: FlaskClient,
) -> None:
    headers = connect(client)
    master = client.post(f"{GRAPH}/me/events", headers=headers, json=weekly()).json
    items, delta_link, _ = first_delta(client, headers)
    moved_id, gone_id = items[1]["id"], items[2]["id"]
    moved = client.patch(
        f"{GRAPH}/me/events/{moved_id}",
        headers=headers,
        json={
            "subject": "Moved",
            "start": {"dateTime": "2026-12-09T14:00:00", "timeZone": "W. Europe Standard Time"},
            "end": {"dateTime": "2026-12-09T15:00:00", "timeZone": "W. Europe Standard Time"},
        },
    )
    assert moved.status_code == 200
    assert moved.json["type"] == "exception"
    assert moved.json["id"] == moved_id
    assert moved.json["seriesMasterId"] == master["id"]
    assert client.delete(f"{GRAPH}/me/events/{gone_id}", headers=headers).status_code == 204
    changes, _, _ = delta_round(client, headers, delta_link)
    by_id = {item["id"]: item for item in changes}
    assert set(by_id) == {moved_id, gone_id}
    assert by_id[moved_id]["type"] == "exception"
    assert by_id[moved_id]["start"]["dateTime"] == "2026-12-09T13:00:00.0000000"
    assert by_id[gone_id]["@removed"] == {"reason": "deleted"}
    instances = client.get(
        f"{GRAPH}/me/events/{master['id']}/instances", headers=headers, query_string=WINDOW
    ).json["value"]
    assert [(i["type"], i["subject"]) for i in instances] == [
        ("occurrence", "Visit 7"),
        ("exception", "Moved"),
        ("occurrence", "Visit 7"),
    ]
    assert client.get(f"{GRAPH}/me/events/{gone_id}", headers=headers).status_code == 404
    client.delete(f"{GRAPH}/me/events/{master['id']}", headers=headers)
    assert client.get(f"{GRAPH}/me/events/{moved_id}", headers=headers).status_code == 404


def test_owner_edits_show_up_in_the_next_delta(client: FlaskClient) -> None:
    headers = connect(client, "dave@outlook.test")
    _, delta_link, _ = first_delta(client, headers)
    made = client.post("/sandbox/microsoft/dave@outlook.test/events", json=event(8))
    assert made.status_code == 201
    changes, delta_link, _ = delta_round(client, headers, delta_link)
    assert [item["id"] for item in changes] == [made.json["id"]]
    client.patch(
        f"/sandbox/microsoft/dave@outlook.test/events/{made.json['id']}", json={"subject": "Z"}
    )
    changes, _, _ = delta_round(client, headers, delta_link)
    assert [item["subject"] for item in changes] == ["Z"]
    stored = client.get("/sandbox/microsoft/dave@outlook.test/events").json["value"]
    assert [item["subject"] for item in stored] == ["Z"]


# --- Faults, log, in-memory requests -----------------------------------------------------


def test_graph_faults_and_request_counts(client: FlaskClient) -> None:
    headers = connect(client)
    client.delete("/sandbox/requests")
    fault = {"path": "/graph/v1.0/me", "status": 429, "headers": {"Retry-After": "2"}, "times": 1}
    client.post("/sandbox/faults", json=fault)
    throttled = client.get(f"{GRAPH}/me", headers=headers)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    assert throttled.json["error"]["code"] == "TooManyRequests"
    assert client.get(f"{GRAPH}/me", headers=headers).status_code == 200
    log = client.get("/sandbox/requests").json
    assert [(e["status"], e["fault"]) for e in log] == [(429, True), (200, False)]
    assert client.get("/sandbox/state").json["requests"] == {f"GET {GRAPH}/me": 2}


def test_delta_links_work_through_mount_sandbox(app: Flask) -> None:
    base = "https://graph.sandbox.test/prefix"
    client = app.test_client()
    headers = connect(client)
    for day in range(1, 4):
        client.post(f"{GRAPH}/me/events", headers=headers, json=event(day))
    with responses.RequestsMock() as rsps:
        mount_sandbox(rsps, app, base)
        session = requests.Session()
        session.headers.update({**headers, "Prefer": "odata.maxpagesize=2"})
        page = session.get(f"{base}{GRAPH}/me/calendarView/delta", params=WINDOW, timeout=5).json()
        seen = list(page["value"])
        assert page["@odata.nextLink"].startswith(
            f"{base}{GRAPH}/me/calendarView/delta?$skiptoken="
        )
        page = session.get(page["@odata.nextLink"], timeout=5).json()
        seen += page["value"]
        assert len(seen) == 3
        assert page["@odata.deltaLink"].startswith(base)
        made = session.post(f"{base}{GRAPH}/me/events", json=event(9), timeout=5)
        assert made.status_code == 201
        changes = session.get(page["@odata.deltaLink"], timeout=5).json()
        assert [item["id"] for item in changes["value"]] == [made.json()["id"]]
