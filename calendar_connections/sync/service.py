"""Entry points the API, the CLI and the scheduler share to run syncs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import Settings
from ..crypto import TokenCipher
from ..models import CalendarConnection, Provider, utcnow
from ..providers.registry import label
from .engine import PageHook, SyncResult, provider_client, sync_connection
from .lease import OLDEST_SYNC_FIRST, stale_since


class NotConnected(Exception):
    """The user has no working connection to that provider."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(f"{label(provider)} is not connected: connect it first.")
        self.provider = provider


def run_sync(
    session: Session,
    connection: CalendarConnection,
    settings: Settings,
    cipher: TokenCipher,
    *,
    on_page: PageHook | None = None,
    lease_owner: str | None = None,
) -> SyncResult:
    """Sync one connection with the provider clients built from ``settings``."""
    return sync_connection(
        session,
        connection,
        lambda db, conn: provider_client(db, conn, settings, cipher),
        settings,
        on_page=on_page,
        lease_owner=lease_owner,
    )


def sync_provider(
    session: Session,
    user_id: str,
    provider: Provider,
    settings: Settings,
    cipher: TokenCipher,
) -> SyncResult:
    """Sync the user's connection to ``provider`` now (raises NotConnected, SyncAlreadyRunning)."""
    connection = session.execute(
        select(CalendarConnection).where(
            CalendarConnection.user_id == user_id,
            CalendarConnection.provider == provider.value,
            CalendarConnection.connected.is_(True),
        )
    ).scalar_one_or_none()
    if connection is None:
        raise NotConnected(provider)
    return run_sync(session, connection, settings, cipher)


def stale_connections(
    session: Session, stale_after: timedelta, user_id: str | None = None
) -> list[CalendarConnection]:
    """Connected connections never synced or last synced longer ago than ``stale_after``,
    oldest first."""
    query = select(CalendarConnection).where(
        CalendarConnection.connected.is_(True), stale_since(utcnow() - stale_after)
    )
    if user_id is not None:
        query = query.where(CalendarConnection.user_id == user_id)
    return list(session.execute(query.order_by(*OLDEST_SYNC_FIRST)).scalars())


def stale_after(settings: Settings) -> timedelta:
    """``SYNC_STALE_AFTER`` as a duration."""
    return timedelta(seconds=settings.sync_stale_after)
