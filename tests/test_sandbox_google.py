"""The provider sandbox's Google side: OAuth, Calendar v3 events and sync, faults, control."""

from __future__ import annotations

import base64
import re
import time
from urllib.parse import parse_qs, urlsplit

import requests
import responses
from flask import Flask
from flask.testing import FlaskClient
from provider_sandbox import create_sandbox_app

from .support.google_sandbox import (
    EVENTS,
    REDIRECT,
    SCOPE,
    authorize,
    bearer,
    connect,
    exchange,
    list_all,
    timed,
)
from .support.mount import mount_sandbox
from .support.sandbox_direct import app, client, pkce_pair

__all__ = ["app", "client"]  # the sandbox as the app: fixtures used as arguments

# --- OAuth -------------------------------------------------------------------------------


def test_code_flow_with_pkce_issues_tokens(client: FlaskClient) -> None:
    verifier, challenge = pkce_pair()
    query = authorize(client, challenge, login_hint="alice@gmail.test")
    assert query["state"] == ["state-123"]
    assert query["scope"] == [SCOPE]
    answer = exchange(client, query["code"][0], verifier)
    assert answer.status_code == 200
    body = answer.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert body["scope"] == SCOPE
    assert body["access_token"] and body["refresh_token"]
    primary = client.get("/google/calendar/v3/users/me/calendarList/primary", headers=bearer(body))
    assert primary.status_code == 200
    assert primary.json["id"] == "alice@gmail.test"
    assert primary.json["primary"] is True
    assert primary.json["timeZone"] == "UTC"


def test_wrong_verifier_and_reused_code_are_invalid_grant(client: FlaskClient) -> None:
    verifier, challenge = pkce_pair()
    code = authorize(client, challenge)["code"][0]
    wrong = exchange(client, code, pkce_pair()[0])
    assert wrong.status_code == 400
    assert wrong.json["error"] == "invalid_grant"

    code = authorize(client, challenge)["code"][0]
    assert exchange(client, code, verifier).status_code == 200
    reused = exchange(client, code, verifier)
    assert reused.status_code == 400
    assert reused.json == {"error": "invalid_grant", "error_description": "Bad Request"}


def test_denied_consent_and_bad_authorize_requests(client: FlaskClient) -> None:
    _, challenge = pkce_pair()
    denied = authorize(client, challenge, sandbox_deny="1")
    assert denied == {"error": ["access_denied"], "state": ["state-123"]}
    missing = client.get("/google/o/oauth2/v2/auth", query_string={"client_id": "x"})
    assert missing.status_code == 400
    assert "redirect_uri" in missing.get_data(as_text=True)


def test_refresh_keeps_the_refresh_token(client: FlaskClient) -> None:
    tokens = connect(client)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    first = client.post("/google/token", data={**form, "client_id": "crm-client"})
    assert first.status_code == 200
    assert "refresh_token" not in first.json
    assert first.json["access_token"] != tokens["access_token"]
    again = client.post("/google/token", data={**form, "client_id": "crm-client"})
    assert again.status_code == 200
    events = client.get(EVENTS, headers=bearer(again.json))
    assert events.status_code == 200


def test_revoke_ends_the_grant(client: FlaskClient) -> None:
    tokens = connect(client)
    answer = client.post("/google/revoke", data={"token": tokens["refresh_token"]})
    assert answer.status_code == 200
    assert answer.json == {}
    refresh = client.post(
        "/google/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "crm-client",
        },
    )
    assert refresh.status_code == 400
    assert refresh.json["error"] == "invalid_grant"
    assert client.get(EVENTS, headers=bearer(tokens)).status_code == 401
    unknown = client.post("/google/revoke", data={"token": "nope"})
    assert unknown.status_code == 400
    assert unknown.json == {
        "error": "invalid_token",
        "error_description": "Token expired or revoked",
    }


def test_pinned_client_credentials() -> None:
    client = create_sandbox_app(
        {"SANDBOX_CLIENT_ID": "crm-client", "SANDBOX_CLIENT_SECRET": "right"}
    ).test_client()
    verifier, challenge = pkce_pair()
    code = authorize(client, challenge)["code"][0]
    wrong = exchange(client, code, verifier)  # sends "secret"
    assert wrong.status_code == 401
    assert wrong.json["error"] == "invalid_client"
    basic = base64.b64encode(b"crm-client:right").decode()
    right = client.post(
        "/google/token",
        headers={"Authorization": f"Basic {basic}"},
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    )
    assert right.status_code == 200


def test_calendar_api_requires_a_valid_bearer(client: FlaskClient) -> None:
    answer = client.get(EVENTS)
    assert answer.status_code == 401
    error = answer.json["error"]
    assert error["code"] == 401
    assert error["status"] == "UNAUTHENTICATED"
    assert error["errors"][0]["reason"] == "authError"
    assert error["errors"][0]["location"] == "Authorization"
    assert client.get(EVENTS, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_expired_access_tokens_get_401_until_refreshed(client: FlaskClient) -> None:
    tokens = connect(client)
    assert client.post("/sandbox/expire-access-tokens").status_code == 200
    assert client.get(EVENTS, headers=bearer(tokens)).status_code == 401
    fresh = client.post(
        "/google/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "crm-client",
        },
    ).json
    assert client.get(EVENTS, headers=bearer(fresh)).status_code == 200
    client.post("/sandbox/revoke-grants")
    again = client.post(
        "/google/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "crm-client",
        },
    )
    assert again.json["error"] == "invalid_grant"


# --- Events and sync ---------------------------------------------------------------------


def test_paging_then_incremental_sync(client: FlaskClient) -> None:
    headers = bearer(connect(client))
    ids = [
        client.post(EVENTS, headers=headers, json=timed(day, 9)).json["id"] for day in range(1, 6)
    ]
    pages = list_all(client, headers, maxResults=2)
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert all("nextSyncToken" not in page for page in pages[:-1])
    assert "nextPageToken" not in pages[-1]
    assert [item["id"] for page in pages for item in page["items"]] == ids
    sync = pages[-1]["nextSyncToken"]

    nothing = client.get(EVENTS, headers=headers, query_string={"syncToken": sync}).json
    assert nothing["items"] == []
    assert nothing["nextSyncToken"]

    added = client.post(EVENTS, headers=headers, json=timed(7, 9)).json
    client.patch(f"{EVENTS}/{ids[0]}", headers=headers, json={"summary": "Moved"})
    assert client.delete(f"{EVENTS}/{ids[1]}", headers=headers).status_code == 204
    changes = client.get(EVENTS, headers=headers, query_string={"syncToken": sync}).json
    by_id = {item["id"]: item for item in changes["items"]}
    assert set(by_id) == {ids[0], ids[1], added["id"]}
    assert by_id[ids[0]]["summary"] == "Moved"
    cancelled = by_id[ids[1]]
    assert cancelled["status"] == "cancelled"
    assert cancelled["kind"] == "calendar#event"
    assert "summary" not in cancelled and cancelled["etag"]

    full = client.get(EVENTS, headers=headers).json["items"]
    assert ids[1] not in {item["id"] for item in full}
    with_deleted = client.get(EVENTS, headers=headers, query_string={"showDeleted": "true"}).json
    assert ids[1] in {item["id"] for item in with_deleted["items"]}


def test_sync_token_rules(client: FlaskClient) -> None:
    headers = bearer(connect(client))
    client.post(EVENTS, headers=headers, json=timed(1, 9))
    sync = client.get(EVENTS, headers=headers).json["nextSyncToken"]
    restricted = client.get(
        EVENTS, headers=headers, query_string={"syncToken": sync, "timeMin": "2026-01-01T00:00:00Z"}
    )
    assert restricted.status_code == 400
    assert client.post("/sandbox/expire-sync-tokens").status_code == 200
    gone = client.get(EVENTS, headers=headers, query_string={"syncToken": sync})
    assert gone.status_code == 410
    error = gone.json["error"]
    assert error["code"] == 410
    assert error["status"] == "GONE"
    assert error["errors"][0]["reason"] == "fullSyncRequired"
    assert error["message"] == "Sync token is no longer valid, a full sync is required."
    garbage = client.get(EVENTS, headers=headers, query_string={"syncToken": "bm9wZQ=="})
    assert garbage.status_code == 410


def test_client_chosen_id_and_duplicate(client: FlaskClient) -> None:
    headers = bearer(connect(client))
    event = client.post(EVENTS, headers=headers, json=timed(1, 9, id="crm0000000042abc"))
    assert event.status_code == 200
    body = event.json
    assert body["id"] == "crm0000000042abc"
    assert body["status"] == "confirmed"
    assert body["iCalUID"] and body["sequence"] == 0
    assert re.fullmatch(r'"\d+"', body["etag"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["updated"])
    duplicate = client.post(EVENTS, headers=headers, json=timed(2, 9, id="crm0000000042abc"))
    assert duplicate.status_code == 409
    assert duplicate.json["error"]["errors"][0]["reason"] == "duplicate"
    assert duplicate.json["error"]["message"] == "The requested identifier already exists."
    bad = client.post(EVENTS, headers=headers, json=timed(2, 9, id="Not_Base32hex!"))
    assert bad.status_code == 400


def test_patch_merges_and_if_match(client: FlaskClient) -> None:
    headers = bearer(connect(client))
    private = {"private": {"crmEventId": "42", "origin": "crm"}}
    event = client.post(EVENTS, headers=headers, json=timed(1, 9, extendedProperties=private)).json
    assert event["extendedProperties"] == private
    patched = client.patch(
        f"{EVENTS}/{event['id']}",
        headers={**headers, "If-Match": event["etag"]},
        json={"extendedProperties": {"private": {"origin": "google"}}, "summary": "New"},
    )
    assert patched.status_code == 200
    assert patched.json["extendedProperties"]["private"] == {"crmEventId": "42", "origin": "google"}
    assert patched.json["etag"] != event["etag"]
    stale = client.patch(
        f"{EVENTS}/{event['id']}",
        headers={**headers, "If-Match": event["etag"]},
        json={"summary": "Lost update"},
    )
    assert stale.status_code == 412
    assert stale.json["error"]["errors"][0]["reason"] == "conditionNotMet"
    found = client.get(
        EVENTS, headers=headers, query_string={"privateExtendedProperty": "crmEventId=42"}
    ).json
    assert [item["id"] for item in found["items"]] == [event["id"]]


def test_delete_twice_unknown_and_validation(client: FlaskClient) -> None:
    headers = bearer(connect(client))
    event = client.post(EVENTS, headers=headers, json=timed(1, 9)).json
    assert client.delete(f"{EVENTS}/{event['id']}", headers=headers).status_code == 204
    again = client.delete(f"{EVENTS}/{event['id']}", headers=headers)
    assert again.status_code == 410
    assert again.json["error"]["errors"][0]["reason"] == "deleted"
    assert client.get(f"{EVENTS}/{event['id']}", headers=headers).json["status"] == "cancelled"
    unknown = client.get(f"{EVENTS}/doesnotexist", headers=headers)
    assert unknown.status_code == 404
    assert unknown.json["error"]["errors"][0]["reason"] == "notFound"
    no_end = client.post(EVENTS, headers=headers, json={"start": {"date": "2026-12-01"}})
    assert no_end.status_code == 400
    assert no_end.json["error"]["errors"][0]["reason"] == "required"
    backwards = timed(1, 9)
    backwards["end"] = {"dateTime": "2026-12-01T08:00:00+01:00"}
    empty = client.post(EVENTS, headers=headers, json=backwards)
    assert empty.status_code == 400
    assert empty.json["error"]["errors"][0]["reason"] == "timeRangeEmpty"


def test_time_window_of_a_full_listing(client: FlaskClient) -> None:
    headers = bearer(connect(client))
    early = client.post(EVENTS, headers=headers, json=timed(1, 9)).json
    late = client.post(EVENTS, headers=headers, json=timed(20, 9)).json
    allday = {"summary": "Day", "start": {"date": "2026-12-10"}, "end": {"date": "2026-12-11"}}
    day = client.post(EVENTS, headers=headers, json=allday).json
    window = {"timeMin": "2026-12-05T00:00:00Z", "timeMax": "2026-12-15T00:00:00+01:00"}
    items = client.get(EVENTS, headers=headers, query_string=window).json["items"]
    assert [item["id"] for item in items] == [day["id"]]
    assert {early["id"], late["id"]}.isdisjoint(item["id"] for item in items)


def test_series_instances_exceptions_and_cancellations(client: FlaskClient) -> None:
    headers = bearer(connect(client))
    series = timed(7, 9, recurrence=["RRULE:FREQ=WEEKLY;COUNT=4"])
    master = client.post(EVENTS, headers=headers, json=series).json
    sync = client.get(EVENTS, headers=headers).json["nextSyncToken"]
    instance_id = f"{master['id']}_20261214T080000Z"
    moved = client.patch(f"{EVENTS}/{instance_id}", headers=headers, json={"summary": "Moved"})
    assert moved.status_code == 200
    assert moved.json["recurringEventId"] == master["id"]
    assert moved.json["originalStartTime"] == {
        "dateTime": "2026-12-14T09:00:00+01:00",
        "timeZone": "Europe/Berlin",
    }
    cancelled_id = f"{master['id']}_20261221T080000Z"
    assert client.delete(f"{EVENTS}/{cancelled_id}", headers=headers).status_code == 204
    not_an_instance = client.patch(
        f"{EVENTS}/{master['id']}_20261215T080000Z", headers=headers, json={"summary": "x"}
    )
    assert not_an_instance.status_code == 404
    changes = client.get(EVENTS, headers=headers, query_string={"syncToken": sync}).json["items"]
    by_id = {item["id"]: item for item in changes}
    assert set(by_id) == {instance_id, cancelled_id}
    assert by_id[cancelled_id]["status"] == "cancelled"
    assert by_id[cancelled_id]["recurringEventId"] == master["id"]
    assert by_id[cancelled_id]["originalStartTime"]["dateTime"] == "2026-12-21T09:00:00+01:00"
    full = {item["id"] for item in client.get(EVENTS, headers=headers).json["items"]}
    assert full == {master["id"], instance_id, cancelled_id}


def test_owner_edits_show_up_in_incremental_sync(client: FlaskClient) -> None:
    headers = bearer(connect(client, "bob@gmail.test"))
    sync = client.get(EVENTS, headers=headers).json["nextSyncToken"]
    made = client.post("/sandbox/google/bob@gmail.test/events", json=timed(3, 9))
    assert made.status_code == 200
    event_id = made.json["id"]
    edited = client.patch(
        f"/sandbox/google/bob@gmail.test/events/{event_id}", json={"summary": "Edited by Bob"}
    )
    assert edited.json["summary"] == "Edited by Bob"
    changes = client.get(EVENTS, headers=headers, query_string={"syncToken": sync}).json
    assert [(i["id"], i["summary"]) for i in changes["items"]] == [(event_id, "Edited by Bob")]
    listed = client.get("/sandbox/google/bob@gmail.test/events").json["items"]
    assert [item["id"] for item in listed] == [event_id]
    assert client.delete(f"/sandbox/google/bob@gmail.test/events/{event_id}").status_code == 204
    after = client.get(EVENTS, headers=headers, query_string={"syncToken": sync}).json["items"]
    assert after[0]["status"] == "cancelled"


# --- Faults, log, state ------------------------------------------------------------------


def test_fault_429_with_retry_after_once(client: FlaskClient) -> None:
    headers = bearer(connect(client))
    fault = {"method": "GET", "path": "/events", "status": 429, "headers": {"Retry-After": "1"}}
    assert client.post("/sandbox/faults", json=fault).status_code == 201
    limited = client.get(EVENTS, headers=headers)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.json["error"]["errors"][0]["reason"] == "rateLimitExceeded"
    assert client.get(EVENTS, headers=headers).status_code == 200


def test_fault_delay_only_slows_the_answer(client: FlaskClient) -> None:
    headers = bearer(connect(client))
    client.post("/sandbox/faults", json={"path": "/events", "status": None, "delay": 0.2})
    started = time.monotonic()
    answer = client.get(EVENTS, headers=headers)
    assert answer.status_code == 200
    assert time.monotonic() - started >= 0.2
    assert client.post("/sandbox/faults", json={"status": None}).status_code == 400
    client.post("/sandbox/faults", json={"status": 503, "times": 5})
    assert client.delete("/sandbox/faults").status_code == 204
    assert client.get(EVENTS, headers=headers).status_code == 200


def test_denial_by_fault_on_authorize(client: FlaskClient) -> None:
    client.post("/sandbox/faults", json={"path": "/o/oauth2/v2/auth", "status": 302})
    _, challenge = pkce_pair()
    assert authorize(client, challenge)["error"] == ["access_denied"]
    assert "code" in authorize(client, challenge)


def test_request_log_and_state(client: FlaskClient) -> None:
    headers = bearer(connect(client))
    assert client.delete("/sandbox/requests").status_code == 204
    client.post(EVENTS, headers=headers, json=timed(1, 9))
    client.get(EVENTS, headers=headers)
    client.get(EVENTS)
    log = client.get("/sandbox/requests").json
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("POST", EVENTS, 200),
        ("GET", EVENTS, 200),
        ("GET", EVENTS, 401),
    ]
    state = client.get("/sandbox/state").json
    assert state["requests"] == {f"GET {EVENTS}": 2, f"POST {EVENTS}": 1}
    assert state["accounts"]["google"][0]["email"] == "alice@gmail.test"
    assert state["accounts"]["google"][0]["events"] == 1
    assert client.post("/sandbox/reset").status_code == 204
    assert client.get("/sandbox/state").json["accounts"]["google"] == []
    assert client.get(EVENTS, headers=headers).status_code == 401


def test_requests_through_mount_sandbox(app: Flask) -> None:
    base = "http://sandbox.test:18090"
    verifier, challenge = pkce_pair()
    with responses.RequestsMock() as rsps:
        mount_sandbox(rsps, app, base)
        consent = requests.get(
            f"{base}/google/o/oauth2/v2/auth",
            params={
                "client_id": "crm-client",
                "redirect_uri": REDIRECT,
                "response_type": "code",
                "scope": SCOPE,
                "state": "xyz",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "access_type": "offline",
            },
            allow_redirects=False,
            timeout=5,
        )
        assert consent.status_code == 302
        code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
        tokens = requests.post(
            f"{base}/google/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
                "client_id": "crm-client",
            },
            timeout=5,
        ).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        made = requests.post(
            f"{base}{EVENTS}", json=timed(1, 9, id="viarequests01"), headers=headers, timeout=5
        )
        assert made.status_code == 200
        listed = requests.get(f"{base}{EVENTS}", headers=headers, timeout=5)
        assert [item["id"] for item in listed.json()["items"]] == ["viarequests01"]
        gone = requests.delete(f"{base}{EVENTS}/viarequests01", headers=headers, timeout=5)
        assert gone.status_code == 204
        unauthorized = requests.get(f"{base}{EVENTS}", timeout=5)
        assert unauthorized.status_code == 401
        assert unauthorized.json()["error"]["status"] == "UNAUTHENTICATED"
