"""Push channels: open after a sync, renew before they end, stop on disconnect.

Plain functions over a session and the settings; provider calls go through the provider's
channel client (``ProviderSpec.channels``). A channel's secret (Google's channel token,
Graph's clientState) is generated here, sent to the provider once and stored only as its
SHA-256. Push is an optimisation: when a channel cannot be opened or renewed, the reason goes
to ``push_error`` and polling stays in charge; a sync never fails because of push.

Several schedulers (workers, hosts) renew at once: each claims the channels it renews by
moving their ``renew_at`` forward in one guarded UPDATE (FOR UPDATE SKIP LOCKED on
PostgreSQL), so no channel is renewed twice; a renewer that dies leaves its claim to lapse.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ..config import Settings
from ..crypto import TokenCipher
from ..models import CalendarConnection, PushChannel, utcnow
from ..providers.channels import ChannelClient, OpenedChannel
from ..providers.errors import ProviderError, ProviderRejected
from ..providers.registry import provider_spec
from ..providers.spec import ClientContext
from ..token_store import load_token, save_token

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/v1/crm/calendar/webhooks/"
NO_TOKEN_MESSAGE = "no stored authorization to open a push channel with"
# A provider that refuses to open a channel (a 4xx that is no rate limit: an address it will
# not call, a calendar it will not watch) refuses again at the next sync: opening is tried
# again only after SYNC_STALE_AFTER_PUSH (``push_retry_at``), not at every sync of every such
# connection.


def hash_secret(secret: str) -> str:
    """The SHA-256 hex stored in place of a channel's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(channel: PushChannel, given: str | None) -> bool:
    """Whether ``given`` (a notification's token or clientState) is the channel's secret."""
    if not given:
        return False
    return hmac.compare_digest(hash_secret(given), channel.secret_hash)


def find_channel(session: Session, provider_channel_id: str) -> PushChannel | None:
    """The channel the provider calls ``provider_channel_id``, if it is ours."""
    return session.execute(
        select(PushChannel).where(PushChannel.provider_channel_id == provider_channel_id)
    ).scalar_one_or_none()


def find_channels(
    session: Session, provider_channel_ids: Collection[str]
) -> dict[str, PushChannel]:
    """Those of ``provider_channel_ids`` that are our channels, by id (one query)."""
    if not provider_channel_ids:
        return {}
    found = session.execute(
        select(PushChannel).where(PushChannel.provider_channel_id.in_(provider_channel_ids))
    ).scalars()
    return {channel.provider_channel_id: channel for channel in found}


def webhook_address(settings: Settings, slug: str) -> str:
    """Where a provider POSTs its notifications: ``{WEBHOOK_BASE_URL}/api/v1/.../{slug}``."""
    assert settings.webhook_base_url
    return settings.webhook_base_url.rstrip("/") + WEBHOOK_PATH + slug


def renew_at(opened_at: datetime, expires_at: datetime) -> datetime:
    """When to renew a channel: half of the lifetime granted."""
    return opened_at + max(expires_at - opened_at, timedelta(0)) / 2


class PushUnavailable(Exception):
    """The connection cannot have push (no provider support, no token, not configured)."""


@contextmanager
def channel_client(
    session: Session, settings: Settings, connection: CalendarConnection, *, commit_tokens: bool
) -> Iterator[ChannelClient]:
    """The provider's channel client of a connection; refreshed tokens are saved as they come
    (committed at once when ``commit_tokens``: Microsoft rotates refresh tokens)."""
    spec = provider_spec(connection.provider)
    if spec.channels is None or not spec.webhook_slug:
        raise PushUnavailable(f"{spec.label} has no push notifications")
    cipher = TokenCipher(settings.token_encryption_keys)
    token = load_token(connection, cipher)
    if token is None:
        raise PushUnavailable(NO_TOKEN_MESSAGE)

    def persist(new_token: dict[str, Any]) -> None:
        save_token(connection, new_token, cipher)
        if commit_tokens:
            session.commit()
        else:
            session.flush()

    client = spec.channels(ClientContext(settings, token, persist, connection.calendar_id or ""))
    try:
        yield client
    finally:
        client.close()


def _address(settings: Settings, connection: CalendarConnection) -> str:
    slug = provider_spec(connection.provider).webhook_slug
    assert slug
    return webhook_address(settings, slug)


def _open_with(
    session: Session, settings: Settings, connection: CalendarConnection, client: ChannelClient
) -> PushChannel:
    """Open a channel at the provider and record it (flushed, not committed)."""
    secret = secrets.token_urlsafe(48)  # 64 characters: within Google's 256 and Graph's 128
    opened_at = utcnow()
    opened: OpenedChannel = client.open(
        address=_address(settings, connection),
        secret=secret,
        ttl_seconds=settings.push_channel_ttl,
    )
    channel = PushChannel(
        connection_id=connection.id,
        provider_channel_id=opened.provider_channel_id,
        resource_id=opened.resource_id,
        secret_hash=hash_secret(secret),
        expires_at=opened.expires_at,
        renew_at=renew_at(opened_at, opened.expires_at),
        created_at=opened_at,
    )
    session.add(channel)
    session.flush()
    return channel


def refresh_push_expiry(session: Session, connection: CalendarConnection) -> None:
    """Set ``push_expires_at`` to the latest expiry of the connection's live channels."""
    session.flush()
    connection.push_expires_at = session.execute(
        select(func.max(PushChannel.expires_at)).where(
            PushChannel.connection_id == connection.id, PushChannel.expires_at > utcnow()
        )
    ).scalar_one_or_none()


def _drop_expired(session: Session, connection_id: int) -> None:
    session.execute(
        delete(PushChannel).where(
            PushChannel.connection_id == connection_id, PushChannel.expires_at <= utcnow()
        )
    )


def _record_failure(
    session: Session,
    connection_id: int,
    action: str,
    message: str,
    *,
    retry_at: datetime | None = None,
) -> CalendarConnection | None:
    """Keep ``push_error`` (and the true ``push_expires_at``) after a failed channel call;
    with ``retry_at``, opening is not tried again before then."""
    session.rollback()
    connection = session.get(CalendarConnection, connection_id)
    if connection is None:
        return None
    log.warning("push channel of connection %s: %s failed: %s", connection_id, action, message)
    connection.push_error = f"Push notifications: {action} failed: {message}"
    if retry_at is not None:
        connection.push_error += f" (tried again after {retry_at.isoformat(timespec='seconds')})"
    connection.push_retry_at = retry_at
    refresh_push_expiry(session, connection)
    session.commit()
    return connection


def open_channel(session: Session, settings: Settings, connection_id: int) -> None:
    """Open a channel for a synced connection unless push is off or one is open; commits.

    A failure is recorded in ``push_error`` and never raised: polling stays in charge.
    """
    if not settings.webhook_base_url:
        return
    connection = session.get(CalendarConnection, connection_id)
    if connection is None or not connection.connected:
        return
    now = utcnow()
    live = session.execute(
        select(func.count(PushChannel.id)).where(
            PushChannel.connection_id == connection_id, PushChannel.expires_at > now
        )
    ).scalar_one()
    retry_at = connection.push_retry_at
    if live or (retry_at is not None and retry_at > now):
        return
    try:
        with channel_client(session, settings, connection, commit_tokens=True) as client:
            _drop_expired(session, connection_id)
            _open_with(session, settings, connection, client)
    except PushUnavailable as exc:
        session.rollback()
        log.info("connection %s has no push: %s", connection_id, exc)
        return
    except ProviderError as exc:
        # A refusal (a 4xx that is no rate limit), not an outage: asking again soon is futile.
        refused = isinstance(exc, ProviderRejected)
        retry_at = now + timedelta(seconds=settings.sync_stale_after_push) if refused else None
        _record_failure(session, connection_id, "opening a channel", exc.message, retry_at=retry_at)
        return
    connection.push_error = None
    connection.push_retry_at = None
    refresh_push_expiry(session, connection)
    session.commit()
    mark_due_after_opening(session, connection_id, now)


def mark_due_after_opening(session: Session, connection_id: int, since: datetime) -> None:
    """Make the connection due once more (a scheduler round syncs it); commits.

    A change made after the last sync listed the calendar and before the new channel
    existed is notified by no one; with push active the next poll would be an hour away.
    """
    session.execute(
        update(CalendarConnection)
        .where(CalendarConnection.id == connection_id)
        .values(push_due_at=func.coalesce(CalendarConnection.push_due_at, since))
        .execution_options(synchronize_session=False)
    )
    session.commit()


def claim_due_channels(
    session: Session, *, now: datetime, hold: timedelta, limit: int
) -> list[int]:
    """Claim up to ``limit`` channels whose ``renew_at`` has come; commits. Their ids.

    The claim moves ``renew_at`` to ``now + hold``: another scheduler no longer sees them as
    due, and if this one dies they are due again when the hold ends.
    """
    due = PushChannel.renew_at <= now
    candidates = select(PushChannel.id).where(due).order_by(PushChannel.renew_at).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        claimed = list(
            session.execute(
                update(PushChannel)
                .where(
                    PushChannel.id.in_(
                        candidates.with_for_update(skip_locked=True).scalar_subquery()
                    ),
                    due,
                )
                .values(renew_at=now + hold)
                .returning(PushChannel.id)
                .execution_options(synchronize_session=False)
            ).scalars()
        )
    else:
        # SQLite: one guarded UPDATE per candidate; the database lock makes each atomic, and a
        # row another scheduler claimed first no longer matches.
        claimed = []
        for channel_id in list(session.execute(candidates).scalars()):
            result = session.execute(
                update(PushChannel)
                .where(PushChannel.id == channel_id, due)
                .values(renew_at=now + hold)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(channel_id)
    session.commit()
    return claimed


def renew_due_channels(session: Session, settings: Settings, now: datetime) -> int:
    """Renew the channels due at ``now`` (the scheduler's job); commits. How many renewed.

    Without ``WEBHOOK_BASE_URL`` (push turned off after channels were opened) nothing is
    renewed: the channels left are stopped instead, so that no status says push is active
    while the scheduler, trusting it, polls only every ``SYNC_STALE_AFTER_PUSH``.
    """
    if not settings.webhook_base_url:
        retire_channels(session, settings, limit=settings.sync_batch_size)
        return 0
    claimed = claim_due_channels(
        session,
        now=now,
        hold=timedelta(seconds=settings.sync_lease_ttl),
        limit=settings.sync_batch_size,
    )
    renewed = 0
    for channel_id in claimed:
        try:
            channel = session.get(PushChannel, channel_id)
            if channel is not None and _renew(session, settings, channel):
                renewed += 1
        except Exception:  # one channel's failure must not cost the others their turn
            session.rollback()
            log.exception("push channel %s: renewal failed unexpectedly", channel_id)
    return renewed


def renew_now(session: Session, settings: Settings, channel: PushChannel) -> None:
    """Renew one channel at once (Graph asked for reauthorization); commits."""
    _renew(session, settings, channel)


def _renew(session: Session, settings: Settings, channel: PushChannel) -> bool:
    """Extend a channel in place, or replace it (open the new one, then stop the old)."""
    connection_id = channel.connection_id
    connection = session.get(CalendarConnection, connection_id)
    if connection is None:
        return False
    if not connection.connected or channel.expires_at <= utcnow():
        # Nothing to renew with, or nothing left to renew: the next successful sync of the
        # connection opens a new channel (open_channel), polling meanwhile.
        session.delete(channel)
        refresh_push_expiry(session, connection)
        session.commit()
        return False
    action = "renewing the channel"
    try:
        with channel_client(session, settings, connection, commit_tokens=True) as client:
            if client.renews_in_place:
                _extend(session, settings, channel, client)
            else:
                action = "replacing the channel"
                _replace(session, settings, connection, channel, client)
    except PushUnavailable as exc:
        _record_failure(session, connection_id, action, str(exc))
        return False
    except ProviderError as exc:
        _record_failure(session, connection_id, action, exc.message)
        return False
    connection.push_error = None
    refresh_push_expiry(session, connection)
    session.commit()
    return True


def _extend(
    session: Session, settings: Settings, channel: PushChannel, client: ChannelClient
) -> None:
    renewed_at = utcnow()
    try:
        expires_at = client.renew(
            channel.provider_channel_id, ttl_seconds=settings.push_channel_ttl
        )
    except ProviderError as exc:
        if exc.status != 404:
            raise
        # The provider no longer has it (removed or expired): open a new one instead.
        connection = session.get(CalendarConnection, channel.connection_id)
        assert connection is not None
        session.delete(channel)
        _open_with(session, settings, connection, client)
        # Changes made while it was gone were notified by no one.
        connection.push_due_at = connection.push_due_at or renewed_at
        return
    channel.expires_at = expires_at
    channel.renew_at = renew_at(renewed_at, expires_at)


def _replace(
    session: Session,
    settings: Settings,
    connection: CalendarConnection,
    old: PushChannel,
    client: ChannelClient,
) -> None:
    """Open the new channel first, so that no change goes unnotified; then stop the old one.

    At most two channels exist at once: any other channel of the connection is stopped too.
    """
    _open_with(session, settings, connection, client)
    session.commit()  # the new channel is recorded before the old one goes
    for stale in [old, *_others(session, connection.id, keep={old.id})]:
        if stale.expires_at > utcnow():
            _stop_quietly(client, stale)
        session.delete(stale)


def _others(session: Session, connection_id: int, keep: set[int]) -> list[PushChannel]:
    channels = session.execute(
        select(PushChannel)
        .where(PushChannel.connection_id == connection_id)
        .order_by(PushChannel.created_at.desc(), PushChannel.id.desc())
    ).scalars()
    # The newest is the one just opened: it stays.
    return [channel for index, channel in enumerate(channels) if index and channel.id not in keep]


def _stop_quietly(client: ChannelClient, channel: PushChannel) -> None:
    try:
        client.stop(channel.provider_channel_id, channel.resource_id)
    except ProviderError as exc:
        log.warning(
            "push channel %s of connection %s not stopped: %s",
            channel.id,
            channel.connection_id,
            exc.message,
        )


def reopen(session: Session, settings: Settings, connection_id: int) -> None:
    """Replace the connection's channels with a new one (Graph removed its subscription);
    commits. The old ones are stopped where the provider still has them."""
    connection = session.get(CalendarConnection, connection_id)
    if connection is None:
        return
    stop_channels(session, settings, connection)
    session.commit()
    open_channel(session, settings, connection_id)


def stop_channels(session: Session, settings: Settings, connection: CalendarConnection) -> None:
    """Stop every channel of the connection at the provider (best effort), delete their rows;
    flushes. A provider failure is logged and never raised (disconnect must go on)."""
    channels = list(
        session.execute(
            select(PushChannel).where(PushChannel.connection_id == connection.id)
        ).scalars()
    )
    if channels:
        try:
            with channel_client(session, settings, connection, commit_tokens=False) as client:
                for channel in channels:
                    if channel.expires_at > utcnow():
                        _stop_quietly(client, channel)
        except (PushUnavailable, ProviderError) as exc:
            message = exc.message if isinstance(exc, ProviderError) else str(exc)
            log.warning("push channels of connection %s not stopped: %s", connection.id, message)
        for channel in channels:
            session.delete(channel)
    connection.push_expires_at = None
    session.flush()


def retire_channels(session: Session, settings: Settings, *, limit: int) -> int:
    """Stop the channels of up to ``limit`` connections (push is off); commits. How many
    connections had channels stopped."""
    connection_ids = list(
        session.execute(
            select(PushChannel.connection_id)
            .group_by(PushChannel.connection_id)
            .order_by(PushChannel.connection_id)
            .limit(limit)
        ).scalars()
    )
    for connection_id in connection_ids:
        connection = session.get(CalendarConnection, connection_id)
        if connection is None:  # gone meanwhile (its channels with it): nothing to stop
            session.execute(delete(PushChannel).where(PushChannel.connection_id == connection_id))
            session.commit()
            continue
        log.info("push is off (no WEBHOOK_BASE_URL): stopping the channels of %s", connection_id)
        stop_channels(session, settings, connection)
        connection.push_error = None
        session.commit()
    return len(connection_ids)
