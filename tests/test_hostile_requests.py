"""Hostile requests: each is a 4xx problem saying what was wrong, stores nothing, and is the
same on SQLite and PostgreSQL (the suite runs on both)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from calendar_connections.models.event import (
    DESCRIPTION_MAX_LENGTH,
    LOCATION_MAX_LENGTH,
    TITLE_MAX_LENGTH,
)

from .support.app import JWT_SECRET
from .support.events import BASE, T1, T2, row_count, timed
from .support.problems import assert_problem, encode

STATUS = "/api/v1/crm/calendar/connections/status"


def bearer(claims: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {encode(claims)}"}


def raw_json(text: str) -> dict[str, Any]:
    """A body sent exactly as written (``json=`` would escape what we want sent raw)."""
    return {"data": text.encode("utf-8", "surrogatepass"), "content_type": "application/json"}


def event_json(**fields: Any) -> dict[str, Any]:
    return {"json": {**timed("Review", T1, T2), **fields}}


@dataclass(frozen=True)
class Hostile:
    """One hostile request: what is sent, the status it gets, words its detail must hold."""

    method: str
    path: str
    status: int
    says: str
    send: dict[str, Any] = field(default_factory=dict)
    # None: the default user's token; else the claims of the token sent.
    claims: dict[str, Any] | None = None


HOSTILE = {
    "page-beyond-64-bits": Hostile("GET", f"{BASE}?page={2**64}", 422, "page"),
    "page-beyond-maximum": Hostile("GET", f"{BASE}?page=1000001", 422, "page"),
    "page-zero": Hostile("GET", f"{BASE}?page=0", 422, "page"),
    "page-size-too-large": Hostile("GET", f"{BASE}?page_size=101", 422, "page_size"),
    "event-id-beyond-32-bits": Hostile("GET", f"{BASE}/{2**40}", 404, "No resource"),
    "lone-surrogate-in-title": Hostile(
        "POST", BASE, 422, "title: Contains a lone surrogate", raw_json('{"title": "\\ud800"}')
    ),
    "lone-surrogate-in-description": Hostile(
        "POST",
        BASE,
        422,
        "description: Contains a lone surrogate",
        raw_json(f'{{"title": "t", "start": "{T1}", "end": "{T2}", "description": "a\\udfffb"}}'),
    ),
    "lone-surrogate-in-recurrence": Hostile(
        "POST",
        BASE,
        422,
        "recurrence: Contains a lone surrogate",
        raw_json(f'{{"title": "t", "start": "{T1}", "end": "{T2}", "recurrence": ["\\ud83d"]}}'),
    ),
    "lone-surrogate-in-a-field-name": Hostile(
        "POST", BASE, 422, "lone surrogate", raw_json('{"title": "t", "\\ud800": 1}')
    ),
    "lone-surrogate-in-a-patch": Hostile(
        "PATCH",
        f"{BASE}/1",
        422,
        "location: Contains a lone surrogate",
        raw_json('{"location": "\\udc00"}'),
    ),
    "nul-in-title": Hostile("POST", BASE, 422, "title: Contains a NUL", event_json(title="a\x00b")),
    "nul-in-description": Hostile(
        "POST", BASE, 422, "description: Contains a NUL", event_json(description="\x00")
    ),
    "nul-in-location": Hostile(
        "POST", BASE, 422, "location: Contains a NUL", event_json(location="room\x00")
    ),
    "nul-in-time-zone": Hostile(
        "POST", BASE, 422, "timeZone: Contains a NUL", event_json(timeZone="UTC\x00")
    ),
    "title-too-long": Hostile(
        "POST", BASE, 422, "title", event_json(title="t" * (TITLE_MAX_LENGTH + 1))
    ),
    "location-too-long": Hostile(
        "POST", BASE, 422, "location", event_json(location="l" * (LOCATION_MAX_LENGTH + 1))
    ),
    "description-too-long": Hostile(
        "POST", BASE, 422, "description", event_json(description="d" * (DESCRIPTION_MAX_LENGTH + 1))
    ),
    "json-nested-50000-deep": Hostile(
        "POST", BASE, 400, "nested too deeply", raw_json("[" * 50_000 + "]" * 50_000)
    ),
    "json-nested-40-deep-in-a-field": Hostile(
        "POST",
        BASE,
        400,
        "nested too deeply",
        raw_json('{"title": "t", "recurrence": ' + "[" * 40 + "]" * 40 + "}"),
    ),
    "invalid-json": Hostile("POST", BASE, 400, "line 1, column 11", raw_json('{"title": }')),
    "not-utf-8": Hostile(
        "POST",
        BASE,
        400,
        "not UTF-8",
        {"data": b'{"title": "\xff"}', "content_type": "application/json"},
    ),
    "huge-integer-in-json": Hostile(
        "POST", BASE, 400, "not valid JSON", raw_json('{"title": ' + "9" * 5000 + "}")
    ),
    "text-plain-post": Hostile(
        "POST",
        BASE,
        415,
        "text/plain",
        {"data": '{"title": "t"}', "content_type": "text/plain;charset=UTF-8"},
    ),
    "text-plain-patch": Hostile(
        "PATCH",
        f"{BASE}/1",
        415,
        "text/plain",
        {"data": '{"title": "t"}', "content_type": "text/plain"},
    ),
    "form-post": Hostile(
        "POST", BASE, 415, "application/x-www-form-urlencoded", {"data": {"title": "t"}}
    ),
    "body-over-max-content-length": Hostile(
        "POST",
        BASE,
        413,
        "MAX_CONTENT_LENGTH",
        raw_json('{"title": "' + "x" * (1024 * 1024) + '"}'),
    ),
    "bad-idempotency-key": Hostile(
        "POST",
        BASE,
        422,
        "Idempotency-Key",
        {**event_json(), "headers": {"Idempotency-Key": "two words"}},
    ),
    "nul-in-token-sub": Hostile("GET", STATUS, 401, "NUL", claims={"sub": "user\x00-1"}),
    "lone-surrogate-in-token-sub": Hostile(
        "GET", STATUS, 401, "lone surrogate", claims={"sub": "\ud800"}
    ),
    "huge-integer-token-sub": Hostile(
        "GET", STATUS, 401, "longer than 255", claims={"sub": 10**300}
    ),
    "long-token-sub": Hostile("GET", STATUS, 401, "longer than 255", claims={"sub": "u" * 256}),
    "token-without-exp": Hostile("GET", STATUS, 401, "`exp`", claims={"sub": "u", "exp": None}),
    "refresh-token": Hostile("GET", STATUS, 401, "refresh", claims={"sub": "u", "type": "refresh"}),
    "id-token": Hostile("GET", STATUS, 401, "`type`", claims={"sub": "u", "type": "id"}),
}


def token_headers(claims: dict[str, Any] | None, auth: dict[str, str]) -> dict[str, str]:
    if claims is None:
        return dict(auth)
    if claims.get("exp", 0) is None:
        without_exp = {k: v for k, v in claims.items() if k != "exp"}
        return {"Authorization": f"Bearer {pyjwt.encode(without_exp, JWT_SECRET, 'HS256')}"}
    return bearer(claims)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_requests_are_4xx_problems_that_store_nothing(
    app: Flask, client: FlaskClient, auth: dict[str, str], name: str
) -> None:
    hostile = HOSTILE[name]
    if hostile.method == "PATCH":
        # A real event to aim at: the request must leave it as it was.
        created = client.post(BASE, json=timed("Kept", T1, T2), headers=auth)
        assert created.status_code == 201
        path = f"{BASE}/{created.json['id']}"
    else:
        path = hostile.path
    before = row_count(app)
    send = dict(hostile.send)
    headers = {**token_headers(hostile.claims, auth), **send.pop("headers", {})}

    response = client.open(path, method=hostile.method, headers=headers, **send)

    body = assert_problem(response, hostile.status)
    assert hostile.says in body["detail"], body["detail"]
    assert row_count(app) == before
    if hostile.method == "PATCH":
        assert client.get(path, headers=auth).json["title"] == "Kept"
