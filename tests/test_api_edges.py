"""Edges of the API: browsers on another origin, the root, wrong-case paths, foreign paging
links, partial Google consent, and a connect that fails after the code exchange."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection

from .support import payloads as p
from .support.connections import BASE, GOOGLE, OUTLOOK, authorize, connect
from .support.outlook import DELTA
from .support.problems import assert_problem

ORIGIN = "https://crm.example.test"
EVENTS = "/api/v1/crm/calendar/events"


def preflight(client: FlaskClient, origin: str, method: str = "POST") -> object:
    return client.options(
        EVENTS,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_cors_preflight_from_a_configured_origin_allows_bearer_and_json(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    client = make_app(CORS_ORIGINS=(ORIGIN,)).test_client()
    response = preflight(client, ORIGIN)
    assert response.status_code == 200  # type: ignore[attr-defined]
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in headers

    listing = client.get(EVENTS, headers={**auth, "Origin": ORIGIN})
    assert listing.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "X-Pagination" in listing.headers["Access-Control-Expose-Headers"]


def test_cors_answers_no_other_origin(make_app: Callable[..., Flask]) -> None:
    client = make_app(CORS_ORIGINS=(ORIGIN,)).test_client()
    response = preflight(client, "https://evil.example.test")
    assert "Access-Control-Allow-Origin" not in response.headers  # type: ignore[attr-defined]


def test_cors_is_off_by_default(client: FlaskClient) -> None:
    response = preflight(client, ORIGIN)
    assert "Access-Control-Allow-Origin" not in response.headers  # type: ignore[attr-defined]


def test_the_root_points_to_the_docs_page(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/api/v1/docs"
    assert client.get(response.headers["Location"]).status_code == 200


@pytest.mark.parametrize(
    ("path", "says"),
    [
        (f"{BASE}/GOOGLE/authorize", f"use {BASE}/google/authorize"),
        (f"{BASE}/Outlook/callback", f"use {BASE}/outlook/callback"),
        (f"{BASE}/YAHOO/authorize", "Unknown provider 'YAHOO'"),
    ],
)
def test_a_wrong_provider_in_an_oauth_path_says_which_paths_exist(
    client: FlaskClient, auth: dict[str, str], path: str, says: str
) -> None:
    body = assert_problem(client.get(path, headers=auth), 404)
    assert says in body["detail"]
    assert body["allowedValues"] == ["google", "outlook"]


def test_a_paging_link_to_another_host_is_not_followed(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock
) -> None:
    assert connect(client, auth, http, OUTLOOK).status_code == 200
    http.get(DELTA, json=p.graph_page([], next_link="https://evil.example.test/steal?x=1"))
    stolen = http.get("https://evil.example.test/steal", json=p.graph_page([]))

    response = client.post(f"{BASE}/OUTLOOK/sync", headers=auth)

    assert response.status_code == 200
    assert response.json["success"] is False
    assert "another host" in response.json["error"]
    assert stolen.call_count == 0


def test_google_consent_without_calendar_access_is_a_400_and_revokes_the_grant(
    app: Flask, client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock
) -> None:
    state = authorize(client, auth, GOOGLE)["state"]
    token = GOOGLE.token()
    token["scope"] = "https://www.googleapis.com/auth/calendar.calendarlist.readonly"
    http.post(GOOGLE.token_url, json=token)
    revoke = http.post(p.GOOGLE_REVOKE_URL, body="")

    response = client.get(f"{BASE}/google/callback?code=c&state={state}", headers=auth)

    body = assert_problem(response, 400)
    assert "calendar access" in body["detail"]
    assert body["type"].endswith(":calendar-access-not-granted")
    assert revoke.call_count == 1
    sent = parse_qs(revoke.calls[0].request.body)  # type: ignore[union-attr]
    assert sent["token"] == [token["refresh_token"]]
    with app.app_context():
        assert db.session.execute(select(CalendarConnection)).first() is None


def test_a_connect_failing_after_the_code_exchange_revokes_what_it_got(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock
) -> None:
    state = authorize(client, auth, GOOGLE)["state"]
    http.post(GOOGLE.token_url, json=GOOGLE.token())
    GOOGLE.mock_account(http, status=500)
    revoke = http.post(p.GOOGLE_REVOKE_URL, body="")

    response = client.get(f"{BASE}/google/callback?code=c&state={state}", headers=auth)

    assert_problem(response, 502)
    assert revoke.call_count == 1
