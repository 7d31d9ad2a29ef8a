"""Running one sync of one connection: lease, pull, push, status. No Flask globals here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ..config import Settings
from ..crypto import TokenCipher
from ..models import CalendarConnection, SyncStatus, utcnow
from ..providers.errors import ProviderError, ProviderGrantError, TokenUnreadable
from ..providers.registry import provider_spec
from ..providers.spec import Capabilities, ClientContext
from ..providers.types import CalendarClient, SyncCursorExpired
from ..token_store import load_token, save_token
from . import lease
from .apply import Puller, apply_page
from .channels import open_channel
from .counts import Counts
from .push import Pusher
from .reconcile import UnconfirmedLinks, remove_unlisted
from .series import SeriesMasters

log = logging.getLogger(__name__)

LEASE_LOST_MESSAGE = "The sync lost its lease (it ran too long unrenewed); it will be retried."
RECONNECT_MESSAGE = (
    "{label} no longer accepts this connection's authorization (it was revoked or expired): "
    "reconnect the calendar."
)


class SyncAlreadyRunning(Exception):
    """Another sync of this connection holds the lease."""


@dataclass
class SyncResult:
    """The outcome of one sync (the API shows it through SyncResultSchema)."""

    provider: str
    success: bool
    error: str | None = None
    events_created: int = 0
    events_updated: int = 0
    events_deleted: int = 0
    events_pushed: int = 0


ClientFactory = Callable[[Session, CalendarConnection], CalendarClient]
PageHook = Callable[[int], None]


def provider_client(
    session: Session, connection: CalendarConnection, settings: Settings, cipher: TokenCipher
) -> CalendarClient:
    """The calendar client of a connection, persisting refreshed tokens as they come."""
    spec = provider_spec(connection.provider)
    token = load_token(connection, cipher)
    if token is None:
        raise ProviderGrantError(RECONNECT_MESSAGE.format(label=spec.label))

    def persist(new_token: dict[str, Any]) -> None:
        save_token(connection, new_token, cipher)
        session.commit()

    calendar_id = connection.calendar_id or "primary"
    return spec.client(ClientContext(settings, token, persist, calendar_id))


def sync_connection(
    session: Session,
    connection: CalendarConnection,
    client_factory: ClientFactory,
    settings: Settings,
    *,
    on_page: PageHook | None = None,
    lease_owner: str | None = None,
) -> SyncResult:
    """Sync one connection now: pull the provider's changes, push the CRM's.

    Takes the connection's lease, or uses the one ``lease_owner`` already claimed for it (the
    scheduler claims in bulk). Raises SyncAlreadyRunning when another sync holds the lease.
    Provider failures do not raise: they end in ``success: false`` with an error the user can
    act on.
    """
    connection_id = connection.id
    owner = lease_owner or lease.new_owner()
    if lease_owner is not None:
        if not lease.holds(session, connection_id, owner):
            raise SyncAlreadyRunning(connection_id)
    elif not lease.claim(session, connection_id, owner, lease_ttl(settings)):
        raise SyncAlreadyRunning(connection_id)
    result = SyncResult(provider=connection.provider, success=False)
    counts = Counts()
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    heartbeat = lease.Heartbeat(engine, connection_id, owner, lease_ttl(settings))
    with heartbeat:
        try:
            session.refresh(connection)
            connection.last_sync_status = SyncStatus.IN_PROGRESS.value
            session.commit()
            client = client_factory(session, connection)
            try:
                _run(session, connection, client, settings, heartbeat, counts, on_page)
            finally:
                client.close()
            connection.last_sync_status = SyncStatus.SUCCESS.value
            connection.last_sync_error = counts.skipped_summary()
            connection.last_sync_at = utcnow()
            result.success = True
            result.error = connection.last_sync_error
        except ProviderGrantError as exc:
            session.rollback()
            connection.connected = False
            connection.last_sync_status = SyncStatus.FAILED.value
            label = provider_spec(connection.provider).label
            connection.last_sync_error = (
                exc.message
                if isinstance(exc, TokenUnreadable)
                else RECONNECT_MESSAGE.format(label=label)
            )
            result.error = connection.last_sync_error
        except (ProviderError, lease.LeaseLost) as exc:
            session.rollback()
            message = exc.message if isinstance(exc, ProviderError) else LEASE_LOST_MESSAGE
            connection.last_sync_status = SyncStatus.FAILED.value
            connection.last_sync_error = message
            result.error = message
            log.warning("sync of connection %s failed: %s", connection_id, message)
        except Exception:
            session.rollback()
            log.exception("sync of connection %s failed unexpectedly", connection_id)
            connection.last_sync_status = SyncStatus.FAILED.value
            connection.last_sync_error = "The sync failed unexpectedly; it will be retried."
            result.error = connection.last_sync_error
        finally:
            _finish(session, connection)
    lease.release(session, connection_id, owner)
    if result.success:
        _open_push_channel(session, settings, connection_id)
    result.events_created = counts.created
    result.events_updated = counts.updated
    result.events_deleted = counts.deleted
    result.events_pushed = counts.pushed
    return result


def _open_push_channel(session: Session, settings: Settings, connection_id: int) -> None:
    """Open a push channel after a successful sync when none is open; never fails the sync."""
    try:
        open_channel(session, settings, connection_id)
    except Exception:
        session.rollback()
        log.exception("push channel of connection %s: opening failed unexpectedly", connection_id)


def _finish(session: Session, connection: CalendarConnection) -> None:
    """Save the outcome, unless the connection was removed (disconnected) meanwhile."""
    try:
        session.commit()
    except StaleDataError:
        session.rollback()
        log.info("connection %s was disconnected during its sync", connection.id)


def _run(
    session: Session,
    connection: CalendarConnection,
    client: CalendarClient,
    settings: Settings,
    heartbeat: lease.Heartbeat,
    counts: Counts,
    on_page: PageHook | None,
) -> None:
    now = utcnow()
    _ensure_window(connection, settings, now)
    capabilities = provider_spec(connection.provider).capabilities
    try:
        _pull(session, connection, client, capabilities, heartbeat, counts, on_page)
    except SyncCursorExpired:
        log.info("connection %s: sync cursor expired, full resync", connection.id)
        session.rollback()
        connection.sync_cursor = None
        _pull(session, connection, client, capabilities, heartbeat, counts, on_page)
    assert connection.window_start is not None
    puller = Puller(session, connection, connection.full_round, counts, guard=heartbeat.check)
    Pusher(puller, client, capabilities).push_all(connection.window_start)


def lease_ttl(settings: Settings) -> timedelta:
    """How long a sync lease lasts without renewal."""
    return timedelta(seconds=settings.sync_lease_ttl)


def _ensure_window(connection: CalendarConnection, settings: Settings, now: datetime) -> None:
    """A new window (and so a full, reconciling listing) first, and when it grows old."""
    past = timedelta(seconds=settings.sync_window_past)
    shift = timedelta(seconds=settings.sync_window_shift)
    stale = connection.window_start is None or (connection.window_start + past + shift <= now)
    if stale:
        connection.window_start = now - past
        connection.window_end = now + timedelta(seconds=settings.sync_window_future)
        connection.sync_cursor = None


def _pull(
    session: Session,
    connection: CalendarConnection,
    client: CalendarClient,
    capabilities: Capabilities,
    heartbeat: lease.Heartbeat,
    counts: Counts,
    on_page: PageHook | None,
) -> None:
    assert connection.window_start is not None and connection.window_end is not None
    start, end = connection.window_start, connection.window_end
    full = connection.sync_cursor is None
    if full:
        connection.full_round += 1
    session.commit()
    puller = Puller(session, connection, connection.full_round, counts, guard=heartbeat.check)
    series = SeriesMasters(puller, client) if capabilities.lists_occurrences else None
    # Some incremental listings report no removal of an item they never listed.
    confirm = not full and not capabilities.reports_unlisted_removals
    unlisted = UnconfirmedLinks.load(puller) if confirm else None
    cursor: str | None = None
    skipped_before = len(counts.skipped)
    for number, page in enumerate(client.list_changes(connection.sync_cursor, start, end)):
        for unreadable in page.unreadable:
            counts.skip(f"provider event {unreadable.external_id}", unreadable.reason)
        if series is None:
            apply_page(puller, page.items)
        else:
            apply_page(puller, page.items, series.before, series.fetched.clear)
        heartbeat.check()
        session.commit()  # each page's changes are durable before the next page is read
        if on_page is not None:
            on_page(number)
        cursor = page.cursor
        del page  # not held while the next one is read
    puller.apply_deferred()
    if len(counts.skipped) > skipped_before:
        # The cursor stays where it was: the next sync lists the skipped events again.
        log.warning("connection %s: %s", connection.id, counts.skipped_summary())
        cursor = None if full else connection.sync_cursor
    if full:
        if series is not None:
            series.after_full_listing(start, end)
        remove_unlisted(puller, start, end)
    elif unlisted is not None:
        unlisted.check(client)
    # Saved last: a sync that dies before this point lists the same changes again.
    connection.sync_cursor = cursor
    session.commit()
