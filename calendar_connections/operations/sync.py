"""Syncs the API asks for: every stale connection of a user, one after the other."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..config import Settings
from ..crypto import TokenCipher
from ..sync.engine import SyncAlreadyRunning, SyncResult
from ..sync.service import run_sync, stale_after, stale_connections


def sync_if_stale(
    session: Session, user_id: str, settings: Settings, cipher: TokenCipher
) -> list[SyncResult]:
    """Sync each of the user's stale connections; one already syncing is skipped."""
    results = []
    for connection in stale_connections(session, stale_after(settings), user_id):
        try:
            results.append(run_sync(session, connection, settings, cipher))
        except SyncAlreadyRunning:
            continue
    return results
