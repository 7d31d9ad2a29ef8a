"""The provider sandbox mounted in-process through `responses`, and helpers for tests on it.

Sync tests point the service at ``SANDBOX`` (``sandbox_config``, or ``sandboxed_app`` through
``PROVIDER_SANDBOX_URL``), mount the sandbox's app on the autouse ``http`` mock (the
``sandbox`` fixture), connect through the sandbox's OAuth flow, and read or edit the
provider's side through the sandbox's control API (as the account owner).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient
from provider_sandbox import create_sandbox_app

from calendar_connections.extensions import db

from .mount import mount_sandbox
from .payloads import day

SANDBOX = "http://sandbox.test"
CONNECTIONS = "/api/v1/crm/calendar/connections"
EVENTS = "/api/v1/crm/calendar/events"


def sandbox_config(**overrides: Any) -> dict[str, Any]:
    """App config that sends every provider call to the sandbox."""
    return {
        "GOOGLE_AUTHORIZE_URL": f"{SANDBOX}/google/o/oauth2/v2/auth",
        "GOOGLE_TOKEN_URL": f"{SANDBOX}/google/token",
        "GOOGLE_REVOKE_URL": f"{SANDBOX}/google/revoke",
        "GOOGLE_API_BASE_URL": f"{SANDBOX}/google/calendar/v3",
        "GOOGLE_BATCH_URL": f"{SANDBOX}/google/batch/calendar/v3",
        "OUTLOOK_AUTHORITY_URL": f"{SANDBOX}/microsoft",
        "OUTLOOK_GRAPH_BASE_URL": f"{SANDBOX}/graph/v1.0",
        "SYNC_RETRY_BACKOFF": 0.01,
        **overrides,
    }


def empty_tables(app: Flask) -> None:
    """Delete every row of the service's tables (as the ``make_app`` fixture does)."""
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())


@dataclass(frozen=True)
class View:
    """An event reduced to what both sides must agree on."""

    key: str | None  # the location: set at creation, never edited, it names the event
    title: str
    all_day: bool
    start: str  # UTC instant (timed) or date (all-day)
    end: str


def _utc_text(value: str) -> str:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:  # Graph's dateTime, asked and rendered in UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def crm_view(item: dict[str, Any]) -> View:
    """The view of a CRM event as the events API shows it."""
    if item["allDay"]:
        return View(item["location"], item["title"], True, item["startDate"], item["endDate"])
    return View(
        item["location"], item["title"], False, _utc_text(item["start"]), _utc_text(item["end"])
    )


@dataclass(frozen=True)
class Timing:
    """When an event happens: a timed span in a zone, or whole days (end exclusive)."""

    start: datetime | date
    end: datetime | date
    zone: str = "UTC"  # a timed event's own zone (IANA)

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, datetime)

    def crm(self) -> dict[str, Any]:
        """The events API's fields for this timing."""
        if self.all_day:
            return {"allDay": True, "startDate": str(self.start), "endDate": str(self.end)}
        assert isinstance(self.start, datetime) and isinstance(self.end, datetime)
        return {
            "allDay": False,
            "start": self.local(self.start).isoformat(),
            "end": self.local(self.end).isoformat(),
            "timeZone": self.zone,
        }

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the event's zone."""
        return moment.astimezone(ZoneInfo(self.zone))


@dataclass(frozen=True)
class Side:
    """One provider as the sandbox shows it to its account owner."""

    name: str  # GOOGLE / OUTLOOK
    slug: str  # the service's path segment
    area: str  # the sandbox's control path segment
    email: str

    def body(
        self, title: str | None = None, timing: Timing | None = None, key: str | None = None
    ) -> dict[str, Any]:
        """A provider JSON body (create, or patch of the given fields)."""
        body: dict[str, Any] = {}
        google = self.name == "GOOGLE"
        if title is not None:
            body["summary" if google else "subject"] = title
        if key is not None:
            body["location"] = key if google else {"displayName": key}
        if timing is not None:
            if google:
                body.update(self._google_times(timing))
            else:
                body.update(self._graph_times(timing))
        return body

    @staticmethod
    def _google_times(timing: Timing) -> dict[str, Any]:
        if timing.all_day:
            return {"start": {"date": str(timing.start)}, "end": {"date": str(timing.end)}}
        assert isinstance(timing.start, datetime) and isinstance(timing.end, datetime)
        return {
            "start": {"dateTime": timing.local(timing.start).isoformat(), "timeZone": timing.zone},
            "end": {"dateTime": timing.local(timing.end).isoformat(), "timeZone": timing.zone},
        }

    @staticmethod
    def _graph_times(timing: Timing) -> dict[str, Any]:
        def node(value: datetime | date) -> dict[str, str]:
            if isinstance(value, datetime):  # wall time in the event's zone
                wall = timing.local(value).replace(tzinfo=None).isoformat()
                return {"dateTime": wall, "timeZone": timing.zone}
            return {"dateTime": f"{value}T00:00:00", "timeZone": "UTC"}

        return {"start": node(timing.start), "end": node(timing.end), "isAllDay": timing.all_day}

    def view(self, item: dict[str, Any]) -> View:
        """The view of a provider event as the sandbox's control API lists it."""
        if self.name == "GOOGLE":
            start, end = item["start"], item["end"]
            if "date" in start:
                return View(item.get("location"), item.get("summary", ""), True, *_days(item))
            return View(
                item.get("location"),
                item.get("summary", ""),
                False,
                _utc_text(start["dateTime"]),
                _utc_text(end["dateTime"]),
            )
        key = (item.get("location") or {}).get("displayName") or None
        start, end = item["start"]["dateTime"], item["end"]["dateTime"]
        if item.get("isAllDay"):
            return View(key, item.get("subject", ""), True, start[:10], end[:10])
        return View(key, item.get("subject", ""), False, _utc_text(start), _utc_text(end))

    def modified(self, item: dict[str, Any]) -> datetime:
        """When the provider says the event last changed."""
        text = item["updated"] if self.name == "GOOGLE" else item["lastModifiedDateTime"]
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _days(item: dict[str, Any]) -> tuple[str, str]:
    return str(item["start"]["date"]), str(item["end"]["date"])


GOOGLE = Side("GOOGLE", "google", "google", "sandbox.user@gmail.test")
OUTLOOK = Side("OUTLOOK", "outlook", "microsoft", "sandbox.user@outlook.test")
SIDES = [GOOGLE, OUTLOOK]


class Sandbox:
    """The sandbox app, mounted at ``SANDBOX``, and its control API."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.control = app.test_client()

    @classmethod
    def mount(cls, http: responses.RequestsMock, **config: Any) -> Sandbox:
        """A fresh sandbox answering every request to ``SANDBOX`` made through ``http``."""
        app = create_sandbox_app(config)
        mount_sandbox(http, app, SANDBOX)
        return cls(app)

    def call(self, method: str, path: str, json: Any = None, status: int = 200) -> Any:
        """A control API call; asserts its status and returns its JSON (or None)."""
        answer = self.control.open(f"/sandbox{path}", method=method, json=json)
        assert answer.status_code == status, (method, path, answer.status_code, answer.data)
        return answer.get_json(silent=True)

    def reset(self) -> None:
        self.call("POST", "/reset", status=204)

    def fault(self, **fault: Any) -> None:
        """Queue a fault (``method``, ``path``, ``status``, ``delay``, ``times``...)."""
        self.call("POST", "/faults", json=fault, status=201)

    def items(self, side: Side) -> list[dict[str, Any]]:
        """The account's live events, as the provider's JSON."""
        body = self.call("GET", f"/{side.area}/{side.email}/events")
        if side.name == "GOOGLE":
            return [item for item in body["items"] if item.get("status") != "cancelled"]
        return list(body["value"])

    def views(self, side: Side) -> list[View]:
        return sorted((side.view(item) for item in self.items(side)), key=repr)

    def create(self, side: Side, body: dict[str, Any]) -> dict[str, Any]:
        """Create an event as the account owner."""
        status = 200 if side.name == "GOOGLE" else 201
        result: dict[str, Any] = self.call(
            "POST", f"/{side.area}/{side.email}/events", json=body, status=status
        )
        return result

    def patch(self, side: Side, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change an event as the account owner."""
        result: dict[str, Any] = self.call(
            "PATCH", f"/{side.area}/{side.email}/events/{event_id}", json=body
        )
        return result

    def delete(self, side: Side, event_id: str) -> None:
        """Delete an event as the account owner."""
        self.call("DELETE", f"/{side.area}/{side.email}/events/{event_id}", status=204)

    def requests(self) -> list[dict[str, Any]]:
        """The provider requests the sandbox answered, oldest first."""
        result: list[dict[str, Any]] = self.call("GET", "/requests")
        return result


def connect(client: FlaskClient, auth: dict[str, str], side: Side) -> None:
    """Connect ``side``'s account through the sandbox's OAuth flow: authorize URL, consent
    (the sandbox picks the account by ``login_hint``), callback."""
    answer = client.get(f"{CONNECTIONS}/{side.slug}/authorize", headers=auth)
    assert answer.status_code == 200, answer.json
    consent = requests.get(
        answer.json["authorizationUrl"],
        params={"login_hint": side.email},
        allow_redirects=False,
        timeout=5,
    )
    assert consent.status_code == 302, consent.text
    query = parse_qs(urlsplit(consent.headers["Location"]).query)
    callback = client.get(
        f"{CONNECTIONS}/{side.slug}/callback",
        query_string={"code": query["code"][0], "state": query["state"][0]},
        headers=auth,
    )
    assert callback.status_code == 200, callback.json
    assert callback.json["connected"] is True


def sync(client: FlaskClient, auth: dict[str, str], side: Side) -> dict[str, Any]:
    """Run a sync through the API; asserts it succeeded."""
    answer = client.post(f"{CONNECTIONS}/{side.slug}/sync", headers=auth)
    assert answer.status_code == 200, answer.json
    assert answer.json["success"] is True, answer.json
    result: dict[str, Any] = answer.json
    return result


def crm_items(client: FlaskClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    """Every live CRM event of the user, through the events API."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        answer = client.get(EVENTS, query_string={"page": page, "page_size": 100}, headers=auth)
        assert answer.status_code == 200, answer.json
        items += answer.json
        if len(answer.json) < 100:
            return items
        page += 1


def crm_views(client: FlaskClient, auth: dict[str, str]) -> list[View]:
    return sorted((crm_view(item) for item in crm_items(client, auth)), key=repr)


@pytest.fixture
def sandbox(http: responses.RequestsMock) -> Sandbox:
    """The provider sandbox, answering every request to SANDBOX."""
    return Sandbox.mount(http)


@pytest.fixture
def sandboxed_app(make_app: Callable[..., Flask], sandbox: Sandbox) -> Flask:
    """The service, with every provider URL pointing at the sandbox."""
    return make_app(PROVIDER_SANDBOX_URL=SANDBOX, SYNC_RETRY_BACKOFF=0)


@pytest.fixture(params=SIDES, ids=[side.slug for side in SIDES])
def side(request: pytest.FixtureRequest) -> Side:
    """Each provider in turn."""
    return request.param  # type: ignore[no-any-return]


def timing(days: float, hours: int = 1) -> Timing:
    """``hours`` long, starting on the hour ``days`` from now."""
    return _from_now(timedelta(days=days), hours)


def soon(hours: int) -> Timing:
    """One hour long, starting on the hour ``hours`` from now."""
    return _from_now(timedelta(hours=hours), 1)


def _from_now(delay: timedelta, hours: int) -> Timing:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + delay
    return Timing(start, start + timedelta(hours=hours))


def sandbox_connect(client: FlaskClient, headers: dict[str, str], slug: str) -> dict[str, Any]:
    """Authorize, let the sandbox approve at once, and complete the callback."""
    authorize = client.get(f"{CONNECTIONS}/{slug}/authorize", headers=headers)
    assert authorize.status_code == 200, authorize.json
    consent = requests.get(authorize.json["authorizationUrl"], allow_redirects=False, timeout=5)
    assert consent.status_code == 302
    query = {k: v[0] for k, v in parse_qs(urlsplit(consent.headers["Location"]).query).items()}
    callback = client.get(f"{CONNECTIONS}/{slug}/callback", query_string=query, headers=headers)
    assert callback.status_code == 200, callback.json
    body: dict[str, Any] = callback.json
    return body


def sandbox_insert_google(email: str, summary: str) -> dict[str, Any]:
    """An event created by the Google account's owner (a Tuesday two to three weeks ahead)."""
    response = requests.post(
        f"{SANDBOX}/sandbox/google/{email}/events",
        json={
            "summary": summary,
            "start": {"dateTime": f"{day(1)}T09:00:00Z"},
            "end": {"dateTime": f"{day(1)}T09:30:00Z"},
        },
        timeout=5,
    )
    assert response.ok, response.text
    body: dict[str, Any] = response.json()
    return body
