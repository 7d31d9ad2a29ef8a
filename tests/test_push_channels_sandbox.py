"""Push channels against the provider sandbox (mounted in-process), whose notifications and
Graph's validation handshake reach a real receiver on loopback standing in for the service's
webhook endpoints: opened after a sync, renewed, stopped on disconnect, refused."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from calendar_connections.config import get_settings
from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, PushChannel
from calendar_connections.sync.channels import renew_due_channels

from .support.push_receiver import Receiver, receiver, settled
from .support.sandbox import (
    CONNECTIONS,
    SANDBOX,
    SIDES,
    Sandbox,
    Side,
    connect,
    sync,
)

__all__ = ["receiver"]  # a fixture used as an argument

HOOKS = "/api/v1/crm/calendar/webhooks"


@pytest.fixture
def pushing(
    make_app: Callable[..., Flask], sandbox: Sandbox, receiver: Receiver
) -> tuple[Flask, Sandbox, Receiver]:
    """The service on the sandbox, its WEBHOOK_BASE_URL the loopback receiver."""
    app = make_app(
        PROVIDER_SANDBOX_URL=SANDBOX, SYNC_RETRY_BACKOFF=0, WEBHOOK_BASE_URL=receiver.url
    )
    return app, sandbox, receiver


def channels(app: Flask) -> list[PushChannel]:
    with app.app_context():
        rows = list(db.session.execute(sa.select(PushChannel).order_by(PushChannel.id)).scalars())
        db.session.expunge_all()
        return rows


def status(client: FlaskClient, auth: dict[str, str], side: Side) -> dict[str, Any]:
    answer = client.get(f"{CONNECTIONS}/status", headers=auth)
    return next(s for s in answer.json if s["provider"] == side.name)  # type: ignore[union-attr]


def opened(view: dict[str, Any], side: Side) -> list[dict[str, Any]]:
    key = "googleChannels" if side.name == "GOOGLE" else "graphSubscriptions"
    return list(view[key])


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("side", SIDES, ids=[side.slug for side in SIDES])
def test_push_opens_after_a_sync_renews_and_stops_on_disconnect(
    pushing: tuple[Flask, Sandbox, Receiver], auth: dict[str, str], side: Side
) -> None:
    app, sandbox, receiver = pushing
    sandbox.call(
        "POST",
        "/push/lifetimes",
        json={"googleChannelSeconds": 600, "graphSubscriptionSeconds": 600},
    )
    client = app.test_client()
    connect(client, auth, side)
    sync(client, auth, side)

    [first] = opened(settled(sandbox.control), side)
    [channel] = channels(app)
    address = f"{receiver.url}{HOOKS}/{side.slug}"
    if side.name == "GOOGLE":
        assert first["address"] == address and first["id"] == channel.provider_channel_id
        assert first["resourceId"] == channel.resource_id
        # The channel's first message carries the token whose hash we keep.
        [message] = receiver.wait_for(f"{HOOKS}/google", 1)
        assert message.headers["X-Goog-Resource-State"] == "sync"
        token = message.headers["X-Goog-Channel-Token"]
        assert hashlib.sha256(token.encode()).hexdigest() == channel.secret_hash
    else:
        assert first["notificationUrl"] == address and first["id"] == channel.provider_channel_id
        assert len(receiver.at(f"{HOOKS}/outlook", validations=True)) == 2  # both URLs
    state = status(client, auth, side)
    assert state["pushActive"] is True
    # The sandbox caps the lifetime at 10 minutes: the grant, not the 7 days asked, counts.
    assert instant(state["pushExpiresAt"]) == channel.expires_at
    assert channel.expires_at - channel.created_at < timedelta(hours=1)

    with app.app_context():
        due = channel.renew_at + timedelta(seconds=1)
        assert renew_due_channels(db.session(), get_settings(app), due) == 1
    view = settled(sandbox.control)
    [renewed] = channels(app)
    if side.name == "GOOGLE":
        old, new = opened(view, side)
        assert old["stopped"] and not new["stopped"] and new["id"] == renewed.provider_channel_id
    else:
        [subscription] = opened(view, side)
        assert subscription["renewedAt"] and renewed.id == channel.id

    assert client.delete(f"{CONNECTIONS}/{side.name}/disconnect", headers=auth).status_code == 204
    view = settled(sandbox.control)
    if side.name == "GOOGLE":
        assert all(c["stopped"] for c in opened(view, side))
    else:
        assert all(s["deleted"] for s in opened(view, side))
    assert channels(app) == []


@pytest.mark.parametrize("side", SIDES, ids=[side.slug for side in SIDES])
def test_a_refused_channel_leaves_the_sync_successful_and_push_off(
    pushing: tuple[Flask, Sandbox, Receiver], auth: dict[str, str], side: Side
) -> None:
    app, sandbox, _ = pushing
    client = app.test_client()
    connect(client, auth, side)
    path = "/events/watch" if side.name == "GOOGLE" else "/subscriptions"
    sandbox.fault(method="POST", path=path, status=400, times=1)
    sync(client, auth, side)
    state = status(client, auth, side)
    assert state["pushActive"] is False and state["lastSyncStatus"] == "SUCCESS"
    assert channels(app) == []
    with app.app_context():
        errors = db.session.execute(sa.select(CalendarConnection.push_error)).scalars().all()
    assert len(errors) == 1 and errors[0] and "HTTP 400" in errors[0]
