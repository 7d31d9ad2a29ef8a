"""Push channels: opened after a sync, renewed by claim, stopped on disconnect, in the status."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from calendar_connections.config import SETTINGS_KEY, get_settings
from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, PushChannel, utcnow
from calendar_connections.scheduler import run_round
from calendar_connections.sync import channels as channel_functions
from calendar_connections.sync.channels import (
    claim_due_channels,
    find_channel,
    open_channel,
    renew_due_channels,
    renew_now,
    reopen,
    secret_matches,
)

from .support import payloads as p
from .support.connections import BASE, GOOGLE, OUTLOOK, authorize, connect
from .support.google import Harness, page
from .support.outlook import serve
from .support.outlook import status as outlook_status
from .support.outlook import sync as outlook_sync

HOOKS = "https://crm.example.test/api/v1/crm/calendar/webhooks"
WATCH_URL = f"{p.GOOGLE_API}/calendars/ada%40example.com/events/watch"
STOP_URL = f"{p.GOOGLE_API}/channels/stop"
SUBSCRIPTIONS_URL = f"{p.GRAPH}/subscriptions"

pytestmark = pytest.mark.app_config(
    WEBHOOK_BASE_URL="https://crm.example.test/", SYNC_RETRY_BACKOFF=0
)

Reply = tuple[int, dict[str, str], str]


class GoogleWatch:
    """Google's events.watch and channels.stop, answering like Google (ms expirations)."""

    def __init__(self, http: responses.RequestsMock, lifetime: timedelta) -> None:
        self.lifetime = lifetime
        self.bodies: list[dict[str, Any]] = []
        self.stops: list[dict[str, Any]] = []
        self.on_stop: Callable[[], None] | None = None
        self.watch = http.add_callback(responses.POST, WATCH_URL, callback=self._watch)
        self.stop = http.add_callback(responses.POST, STOP_URL, callback=self._stop)

    def _watch(self, request: Any) -> Reply:
        body = json.loads(request.body)
        self.bodies.append(body)
        expiration = datetime.now(UTC) + self.lifetime
        answer = {
            "kind": "api#channel",
            "id": body["id"],
            "resourceId": f"resource-{len(self.bodies)}",
            "resourceUri": f"{WATCH_URL}?alt=json",
            "token": body["token"],
            "expiration": str(int(expiration.timestamp() * 1000)),
        }
        return 200, {}, json.dumps(answer)

    def _stop(self, request: Any) -> Reply:
        self.stops.append(json.loads(request.body))
        if self.on_stop is not None:
            self.on_stop()
        return 204, {}, ""


class GraphSubscriptions:
    """Graph's /subscriptions, granting at most ``maximum`` whatever is asked."""

    def __init__(self, http: responses.RequestsMock, maximum: timedelta) -> None:
        self.maximum = maximum
        self.bodies: list[dict[str, Any]] = []
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.deleted: list[str] = []
        self.grants: list[datetime] = []
        self.failing = False  # DELETE answers 500
        http.add_callback(responses.POST, SUBSCRIPTIONS_URL, callback=self._create)
        pattern = rf"{SUBSCRIPTIONS_URL}/[^/]+$"
        http.add_callback(responses.PATCH, re.compile(pattern), callback=self._patch)
        http.add_callback(responses.DELETE, re.compile(pattern), callback=self._delete)

    def granted(self, asked: str) -> str:
        moment = min(
            datetime.fromisoformat(asked.replace("Z", "+00:00")),
            datetime.now(UTC) + self.maximum,
        ).replace(microsecond=0)
        self.grants.append(moment)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")

    def _create(self, request: Any) -> Reply:
        body = json.loads(request.body)
        self.bodies.append(body)
        answer = {**body, "id": str(uuid.uuid4())}
        answer["expirationDateTime"] = self.granted(body["expirationDateTime"])
        return 201, {}, json.dumps(answer)

    def _patch(self, request: Any) -> Reply:
        body = json.loads(request.body)
        self.patches.append((request.url.rsplit("/", 1)[1], body))
        answer = {"id": request.url.rsplit("/", 1)[1]}
        answer["expirationDateTime"] = self.granted(body["expirationDateTime"])
        return 200, {}, json.dumps(answer)

    def _delete(self, request: Any) -> Reply:
        if self.failing:
            return 500, {}, json.dumps(p.graph_error("InternalServerError", "try later"))
        self.deleted.append(request.url.rsplit("/", 1)[1])
        return 204, {}, ""


def channels(app: Flask) -> list[PushChannel]:
    with app.app_context():
        rows = list(db.session.execute(sa.select(PushChannel).order_by(PushChannel.id)).scalars())
        db.session.expunge_all()
        return rows


def the_connection(app: Flask, provider: str) -> CalendarConnection:
    with app.app_context():
        row = db.session.execute(
            sa.select(CalendarConnection).where(CalendarConnection.provider == provider)
        ).scalar_one()
        db.session.expunge(row)
        return row


def google_status(client: FlaskClient, auth: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"{BASE}/status", headers=auth)
    return next(s for s in response.json if s["provider"] == "GOOGLE")  # type: ignore[union-attr]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_google_channel_opens_after_the_first_sync(
    g: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    watch = GoogleWatch(g.http, timedelta(days=7))
    caplog.set_level(logging.DEBUG)
    g.lists(page(token="s1"), page(token="s2"))
    g.sync(0, 0, 0, 0)

    [body] = watch.bodies
    assert uuid.UUID(body["id"]) and body["type"] == "web_hook"
    assert body["address"] == f"{HOOKS}/google"
    assert body["params"] == {"ttl": "604800"}
    secret = body["token"]
    assert 32 <= len(secret) <= 256
    [channel] = channels(g.app)
    assert channel.provider_channel_id == body["id"] and channel.resource_id == "resource-1"
    assert channel.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert channel.renew_at == channel.created_at + (channel.expires_at - channel.created_at) / 2
    state = google_status(g.client, g.auth)
    assert state["pushActive"] is True and state["lastSyncStatus"] == "SUCCESS"
    assert instant(state["pushExpiresAt"]) == channel.expires_at
    assert secret not in json.dumps(state) and secret not in caplog.text

    g.sync(0, 0, 0, 0)  # one open channel: no second one
    assert len(watch.bodies) == 1 and len(channels(g.app)) == 1


@pytest.mark.app_config(WEBHOOK_BASE_URL=None)
def test_no_channel_without_a_webhook_base_url(g: Harness) -> None:
    watch = GoogleWatch(g.http, timedelta(days=7))
    g.lists(page(token="s1"))
    g.sync(0, 0, 0, 0)
    assert watch.bodies == [] and channels(g.app) == []
    state = google_status(g.client, g.auth)
    assert state["pushActive"] is False and state["pushExpiresAt"] is None
    assert the_connection(g.app, "GOOGLE").push_error is None


def test_a_channel_that_cannot_be_opened_leaves_polling_in_charge(g: Harness) -> None:
    refusal = p.google_error(400, "push.webhookUrlNotHttps", "WebHook callback must be HTTPS")
    watch = g.http.post(WATCH_URL, json=refusal, status=400)
    g.lists(page(token="s1"))
    result = g.sync(0, 0, 0, 0)

    assert result["success"] is True and len(watch.calls) == 1
    state = google_status(g.client, g.auth)
    assert state["pushActive"] is False and state["pushExpiresAt"] is None
    assert state["lastSyncStatus"] == "SUCCESS" and state["lastSyncError"] is None
    connection = the_connection(g.app, "GOOGLE")
    assert connection.push_error and "WebHook callback must be HTTPS" in connection.push_error
    assert connection.push_expires_at is None and channels(g.app) == []


def connect_outlook(client: FlaskClient, auth: dict[str, str], http: Any) -> None:
    assert connect(client, auth, http, OUTLOOK).status_code == 200


def test_a_graph_subscription_opens_with_what_graph_grants(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask
) -> None:
    graph = GraphSubscriptions(http, timedelta(minutes=4230))
    connect_outlook(client, auth, http)
    serve(http, None, [], delta="D1")
    assert outlook_sync(client, auth)["success"]

    [body] = graph.bodies
    assert body["changeType"] == "created,updated,deleted"
    assert body["notificationUrl"] == body["lifecycleNotificationUrl"] == f"{HOOKS}/outlook"
    assert body["resource"] == f"me/calendars/{p.OUTLOOK_CALENDAR_ID}/events"
    assert 32 <= len(body["clientState"]) <= 128
    asked = instant(body["expirationDateTime"])
    assert timedelta(days=6) < asked - datetime.now(UTC) <= timedelta(days=7)
    [channel] = channels(app)
    assert channel.resource_id is None
    assert channel.expires_at < asked  # Graph's grant, not what was asked
    assert channel.renew_at == channel.created_at + (channel.expires_at - channel.created_at) / 2
    assert secret_matches(channel, body["clientState"])
    state = outlook_status(client, auth)
    assert state["pushActive"] is True and instant(state["pushExpiresAt"]) == channel.expires_at


def test_graph_refusing_the_lifetime_asked_gets_the_one_it_allows(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask
) -> None:
    refusal = p.graph_error(
        "ExtensionError", "Subscription expiration can only be 4230 minutes in the future."
    )
    connect_outlook(client, auth, http)
    connection_id = the_connection(app, "OUTLOOK").id
    graph_calls: list[dict[str, Any]] = []

    def granted(request: Any) -> Reply:
        body = json.loads(request.body)
        graph_calls.append(body)
        return 201, {}, json.dumps({**body, "id": "sub-1"})

    refused = http.post(SUBSCRIPTIONS_URL, json=refusal, status=400)
    http.add_callback(responses.POST, SUBSCRIPTIONS_URL, callback=granted)
    with app.app_context():
        open_channel(db.session(), get_settings(app), connection_id)
    assert len(refused.calls) == 1
    [body] = graph_calls
    allowed = instant(body["expirationDateTime"]) - datetime.now(UTC)
    assert timedelta(minutes=4220) < allowed < timedelta(minutes=4230)
    assert [c.provider_channel_id for c in channels(app)] == ["sub-1"]


def opened_google(g: Harness, lifetime: timedelta) -> tuple[GoogleWatch, PushChannel]:
    watch = GoogleWatch(g.http, lifetime)
    connection_id = the_connection(g.app, "GOOGLE").id
    with g.app.app_context():
        open_channel(db.session(), get_settings(g.app), connection_id)
    [channel] = channels(g.app)
    return watch, channel


def test_google_renewal_opens_a_new_channel_then_stops_the_old(g: Harness) -> None:
    watch, old = opened_google(g, timedelta(hours=2))
    settings = get_settings(g.app)
    seen: list[int] = []

    def count_channels() -> None:  # while the old channel is being stopped
        with db.engine.connect() as conn:
            seen.append(conn.execute(sa.select(sa.func.count(PushChannel.id))).scalar_one())

    watch.on_stop = count_channels
    with g.app.app_context():
        session = db.session()
        assert renew_due_channels(session, settings, old.renew_at - timedelta(seconds=1)) == 0
        assert len(watch.bodies) == 1
        assert renew_due_channels(session, settings, old.renew_at + timedelta(seconds=1)) == 1

    assert len(watch.bodies) == 2 and watch.bodies[1]["id"] != old.provider_channel_id
    assert watch.stops == [{"id": old.provider_channel_id, "resourceId": "resource-1"}]
    assert seen == [2]  # never more than two channels at once
    [new] = channels(g.app)
    assert new.provider_channel_id == watch.bodies[1]["id"]
    assert new.renew_at == new.created_at + (new.expires_at - new.created_at) / 2
    assert the_connection(g.app, "GOOGLE").push_expires_at == new.expires_at
    assert secret_matches(new, watch.bodies[1]["token"])
    assert not secret_matches(new, watch.bodies[0]["token"])
    assert not secret_matches(new, None) and not secret_matches(new, "")


def test_two_renewers_renew_a_channel_once(g: Harness) -> None:
    watch, channel = opened_google(g, timedelta(hours=2))
    due = channel.renew_at + timedelta(seconds=1)
    with g.app.app_context():
        first, second = db.session(), db.session.session_factory()
        try:
            claimed = claim_due_channels(first, now=due, hold=timedelta(minutes=2), limit=10)
            assert claimed == [channel.id]
            assert claim_due_channels(second, now=due, hold=timedelta(minutes=2), limit=10) == []
        finally:
            second.close()
        settings = get_settings(g.app)
        # Claimed but not renewed (a renewer died): due again once its hold is over.
        assert renew_due_channels(db.session(), settings, due) == 0
        assert renew_due_channels(db.session(), settings, due + timedelta(minutes=3)) == 1
    assert len(watch.bodies) == 2 and len(watch.stops) == 1


def test_a_failed_renewal_keeps_the_old_channel_and_says_why(g: Harness) -> None:
    watch, channel = opened_google(g, timedelta(hours=2))
    g.http.remove(watch.watch)
    g.http.post(WATCH_URL, json=p.google_error(403, "forbidden", "Not allowed"), status=403)
    with g.app.app_context():
        renewed = renew_due_channels(
            db.session(), get_settings(g.app), channel.renew_at + timedelta(seconds=1)
        )
    assert renewed == 0 and watch.stops == []
    connection = the_connection(g.app, "GOOGLE")
    assert connection.push_error and "Not allowed" in connection.push_error
    # The old channel still delivers until it ends: push stays active until then.
    assert connection.push_expires_at == channel.expires_at
    assert [c.id for c in channels(g.app)] == [channel.id]


def test_graph_renewal_patches_the_expiry_and_renews_at_half(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask
) -> None:
    graph = GraphSubscriptions(http, timedelta(hours=1))
    connect_outlook(client, auth, http)
    connection_id = the_connection(app, "OUTLOOK").id
    settings = get_settings(app)
    with app.app_context():
        open_channel(db.session(), settings, connection_id)
    [old] = channels(app)
    with app.app_context():
        assert renew_due_channels(db.session(), settings, old.renew_at + timedelta(seconds=1)) == 1
    [(subscription_id, body)] = graph.patches
    assert subscription_id == old.provider_channel_id and set(body) == {"expirationDateTime"}
    [renewed] = channels(app)
    assert renewed.id == old.id and renewed.expires_at == graph.grants[-1]
    # Renewed at half of what Graph granted (an hour here), not of what was asked (a week).
    assert timedelta(minutes=29) < renewed.expires_at - renewed.renew_at <= timedelta(minutes=30)
    assert the_connection(app, "OUTLOOK").push_expires_at == renewed.expires_at
    assert len(graph.bodies) == 1 and graph.deleted == []

    with app.app_context():  # reauthorizationRequired: renew now, whatever renew_at says
        channel = find_channel(db.session(), old.provider_channel_id)
        assert channel is not None
        renew_now(db.session(), settings, channel)
        assert find_channel(db.session(), "not-ours") is None
    assert len(graph.patches) == 2

    with app.app_context():  # subscriptionRemoved: a new subscription replaces it
        reopen(db.session(), settings, connection_id)
    assert graph.deleted == [old.provider_channel_id] and len(graph.bodies) == 2
    [new] = channels(app)
    assert new.provider_channel_id != old.provider_channel_id


def test_disconnect_stops_the_channel_before_revoking(g: Harness) -> None:
    watch, channel = opened_google(g, timedelta(days=7))
    revoke = g.http.post(p.GOOGLE_REVOKE_URL, status=200, json={})
    response = g.client.delete(f"{BASE}/GOOGLE/disconnect", headers=g.auth)
    assert response.status_code == 204
    assert watch.stops == [{"id": channel.provider_channel_id, "resourceId": "resource-1"}]
    order = [call.request.url for call in g.http.calls][-2:]
    assert order == [STOP_URL, p.GOOGLE_REVOKE_URL] and len(revoke.calls) == 1
    assert channels(g.app) == []


def test_disconnect_goes_on_when_the_provider_cannot_stop_the_channel(
    client: FlaskClient,
    auth: dict[str, str],
    http: responses.RequestsMock,
    app: Flask,
    caplog: pytest.LogCaptureFixture,
) -> None:
    graph = GraphSubscriptions(http, timedelta(days=3))
    connect_outlook(client, auth, http)
    with app.app_context():
        open_channel(db.session(), get_settings(app), the_connection(app, "OUTLOOK").id)
    assert len(channels(app)) == 1
    graph.failing = True
    response = client.delete(f"{BASE}/OUTLOOK/disconnect", headers=auth)
    assert response.status_code == 204
    assert channels(app) == [] and "not stopped" in caplog.text
    state = outlook_status(client, auth)
    assert state["connected"] is False and state["pushActive"] is False


def test_push_renew_command_renews_due_channels(g: Harness) -> None:
    watch, channel = opened_google(g, timedelta(hours=2))
    move(g.app, channel, renew_at=utcnow() - timedelta(seconds=1))
    result = g.app.test_cli_runner().invoke(args=["calendar", "push-renew"])
    assert result.exit_code == 0, result.output
    assert "1 push channel(s) renewed." in result.output and len(watch.bodies) == 2


def move(app: Flask, channel: PushChannel, **values: datetime) -> None:
    with app.app_context():
        db.session.execute(
            sa.update(PushChannel).where(PushChannel.id == channel.id).values(**values)
        )
        db.session.commit()


def test_a_channel_that_ended_is_dropped_and_reopened_by_the_next_sync(g: Harness) -> None:
    watch, channel = opened_google(g, timedelta(hours=2))
    past = utcnow() - timedelta(minutes=1)
    move(g.app, channel, renew_at=past, expires_at=past)
    with g.app.app_context():
        assert renew_due_channels(db.session(), get_settings(g.app), utcnow()) == 0
    assert len(watch.bodies) == 1 and watch.stops == [] and channels(g.app) == []
    assert google_status(g.client, g.auth)["pushActive"] is False

    g.lists(page(token="s1"))
    g.sync(0, 0, 0, 0)
    assert len(watch.bodies) == 2 and len(channels(g.app)) == 1
    assert google_status(g.client, g.auth)["pushActive"] is True


def test_reconnecting_another_account_stops_the_old_accounts_channel(g: Harness) -> None:
    watch, channel = opened_google(g, timedelta(days=7))
    state = authorize(g.client, g.auth, GOOGLE)["state"]
    g.http.post(GOOGLE.token_url, json=GOOGLE.token(2))
    g.http.replace(responses.GET, p.GOOGLE_PRIMARY_URL, json=p.google_primary("bo@example.com"))
    callback = f"{BASE}/google/callback?code=code-2&state={state}"
    assert g.client.get(callback, headers=g.auth).status_code == 200

    assert watch.stops == [{"id": channel.provider_channel_id, "resourceId": "resource-1"}]
    stop = next(c.request for c in g.http.calls if c.request.url == STOP_URL)
    assert stop.headers["Authorization"] == "Bearer ya29.access-1"  # the old account's grant
    assert channels(g.app) == [] and google_status(g.client, g.auth)["pushActive"] is False


def test_a_locked_channel_is_skipped_not_waited_for(g: Harness) -> None:
    """PostgreSQL: a channel another renewer holds is skipped (SKIP LOCKED), not waited on."""
    _, channel = opened_google(g, timedelta(hours=2))
    due = channel.renew_at + timedelta(seconds=1)
    with g.app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("row locks: PostgreSQL only (SQLite locks the whole database)")
        holder, claimer = db.session.session_factory(), db.session.session_factory()
        try:
            holder.execute(
                sa.select(PushChannel.id).where(PushChannel.id == channel.id).with_for_update()
            )
            claimer.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
            assert claim_due_channels(claimer, now=due, hold=timedelta(minutes=2), limit=10) == []
            holder.rollback()
            assert claim_due_channels(claimer, now=due, hold=timedelta(minutes=2), limit=10) == [
                channel.id
            ]
        finally:
            holder.close()
            claimer.close()


def test_a_refused_channel_is_tried_again_only_after_sync_stale_after_push(
    g: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusal = p.google_error(403, "forbidden", "Unauthorized WebHook callback channel")
    refused = g.http.post(WATCH_URL, json=refusal, status=403)
    g.lists(page(token="s1"), page(token="s2"), page(token="s3"))
    g.sync(0, 0, 0, 0)
    g.sync(0, 0, 0, 0)  # refused a moment ago: the provider is not asked again
    assert len(refused.calls) == 1
    error = the_connection(g.app, "GOOGLE").push_error
    assert error and "Unauthorized WebHook callback channel" in error
    retry_at = instant(error.rsplit("tried again after ", 1)[1].rstrip(")"))
    wait = timedelta(seconds=get_settings(g.app).sync_stale_after_push)
    assert retry_at - utcnow() <= wait < retry_at - utcnow() + timedelta(minutes=1)

    g.http.remove(refused)
    watch = GoogleWatch(g.http, timedelta(days=7))
    later = utcnow() + wait + timedelta(seconds=1)
    monkeypatch.setattr(channel_functions, "utcnow", lambda: later)
    g.sync(0, 0, 0, 0)
    assert len(watch.bodies) == 1 and len(channels(g.app)) == 1
    assert the_connection(g.app, "GOOGLE").push_error is None


@pytest.mark.parametrize(
    ("status", "reason"), [(503, "backendError"), (429, "rateLimitExceeded")], ids=["503", "429"]
)
def test_an_outage_or_rate_limit_while_opening_is_tried_again_at_the_next_sync(
    g: Harness, status: int, reason: str
) -> None:
    outage = g.http.post(WATCH_URL, json=p.google_error(status, reason, "Later"), status=status)
    g.lists(page(token="s1"), page(token="s2"))
    g.sync(0, 0, 0, 0)
    calls = len(outage.calls)
    error = the_connection(g.app, "GOOGLE").push_error
    assert calls >= 1 and error and "tried again after" not in error
    g.sync(0, 0, 0, 0)
    assert len(outage.calls) > calls


def test_without_a_webhook_base_url_channels_are_stopped_not_renewed(g: Harness) -> None:
    watch, channel = opened_google(g, timedelta(hours=2))
    push_off = dataclasses.replace(get_settings(g.app), webhook_base_url=None)
    with g.app.app_context():
        # Long before the channel is due for renewal, and again once it is due.
        assert renew_due_channels(db.session(), push_off, utcnow()) == 0
        assert renew_due_channels(db.session(), push_off, channel.renew_at) == 0
    assert len(watch.bodies) == 1  # no new channel
    assert watch.stops == [{"id": channel.provider_channel_id, "resourceId": "resource-1"}]
    assert channels(g.app) == []
    state = google_status(g.client, g.auth)
    assert state["pushActive"] is False and state["pushExpiresAt"] is None
    connection = the_connection(g.app, "GOOGLE")
    assert connection.push_expires_at is None and connection.push_error is None


def test_connecting_again_tries_a_refused_channel_at_the_next_sync(g: Harness) -> None:
    refusal = p.google_error(403, "forbidden", "Unauthorized WebHook callback channel")
    refused = g.http.post(WATCH_URL, json=refusal, status=403)
    g.lists(page(token="s1"), page(token="s2"))
    g.sync(0, 0, 0, 0)
    assert len(refused.calls) == 1 and the_connection(g.app, "GOOGLE").push_error

    assert connect(g.client, g.auth, g.http, GOOGLE, n=2).status_code == 200
    assert the_connection(g.app, "GOOGLE").push_error is None
    g.sync(0, 0, 0, 0)
    assert len(refused.calls) == 2


def test_a_change_while_the_channel_opens_is_synced_by_the_next_round(g: Harness) -> None:
    watch = GoogleWatch(g.http, timedelta(days=7))
    g.lists(page(token="s1"))
    g.sync(0, 0, 0, 0)
    # Between the sync's listing and events.watch, a change is notified by no one: the
    # connection is due, and the next scheduler round syncs it though push is active.
    opened = the_connection(g.app, "GOOGLE")
    assert opened.push_due_at is not None and opened.push_expires_at is not None
    g.lists(page(p.google_event("evt-1", summary="Made while the channel opened"), token="s2"))
    round_ = run_round(g.app)
    assert round_.claimed == 1 and [r.events_created for r in round_.results] == [1]
    caught_up = the_connection(g.app, "GOOGLE")
    assert caught_up.push_due_at is None and caught_up.last_sync_status == "SUCCESS"
    assert len(watch.bodies) == 1  # the channel open stays the only one
    assert run_round(g.app).claimed == 0  # and nothing more is due


def test_push_renew_command_without_a_webhook_base_url_stops_the_channels(
    g: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch, _ = opened_google(g, timedelta(hours=2))
    push_off = dataclasses.replace(get_settings(g.app), webhook_base_url=None)
    monkeypatch.setitem(g.app.extensions, SETTINGS_KEY, push_off)
    result = g.app.test_cli_runner().invoke(args=["calendar", "push-renew"])
    assert result.exit_code == 0, result.output
    assert "not set: stopped the push channels of 1 connection(s)." in result.output
    assert len(watch.stops) == 1 and len(watch.bodies) == 1 and channels(g.app) == []
