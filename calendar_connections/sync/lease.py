"""The sync lease: one sync per connection at a time, across threads, workers and hosts.

A lease is two columns on the connection, claimed with one conditional UPDATE, which is atomic
on SQLite and PostgreSQL alike. It expires on its own, so a process that dies mid-sync blocks
the connection only until then; while a sync lives, a heartbeat thread renews it (see
``Heartbeat``), through provider calls and their retries alike.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, func, literal_column, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..models import CalendarConnection, utcnow
from ..models.base import UTCDateTime
from ..models.connection import NEVER_SYNCED_AT

log = logging.getLogger(__name__)


def new_owner() -> str:
    """A lease owner id that names the host and process, for operators reading the table."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def claim(session: Session, connection_id: int, owner: str, ttl: timedelta) -> bool:
    """Take the lease if it is free or expired; commits. True when taken."""
    now = utcnow()
    result = session.execute(
        update(CalendarConnection)
        .where(
            CalendarConnection.id == connection_id,
            or_(
                CalendarConnection.lease_owner.is_(None),
                CalendarConnection.lease_expires_at < now,
            ),
        )
        .values(lease_owner=owner, lease_expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def last_sync_key() -> ColumnElement[datetime]:
    """When the connection last synced, the epoch if never: the key of
    ``ix_calendar_connection_sync_order``."""
    return func.coalesce(
        CalendarConnection.last_sync_at, literal_column(NEVER_SYNCED_AT, UTCDateTime())
    )


def stale_since(cutoff: datetime) -> ColumnElement[bool]:
    """Never synced, or last synced before ``cutoff``."""
    return last_sync_key() < cutoff


# Never synced first, then the longest unsynced: the order of the index, so PostgreSQL walks
# it and stops after the first ``limit`` free rows instead of sorting every stale connection.
OLDEST_SYNC_FIRST = (last_sync_key(), CalendarConnection.id)


def claim_stale(
    session: Session,
    *,
    owner: str,
    ttl: timedelta,
    stale_before: datetime,
    limit: int,
) -> list[int]:
    """Claim up to ``limit`` stale connections, oldest first; commits. Their ids.

    One UPDATE over a subquery of candidates. Several schedulers (workers, hosts) call this at
    once: on PostgreSQL the candidates are read with FOR UPDATE SKIP LOCKED so each takes
    different rows; everywhere the UPDATE re-checks that the row is still free and still stale,
    so a connection another scheduler has just synced is not synced again in the same round.
    """
    now = utcnow()
    stale = stale_since(stale_before)
    free = or_(CalendarConnection.lease_owner.is_(None), CalendarConnection.lease_expires_at < now)
    # The bare column (not ``IS true``), so PostgreSQL matches the index's ``WHERE connected``.
    candidates = (
        select(CalendarConnection.id)
        .where(CalendarConnection.connected, stale, free)
        .order_by(*OLDEST_SYNC_FIRST)
        .limit(limit)
    )
    on_postgres = session.get_bind().dialect.name == "postgresql"
    if on_postgres:
        candidates = candidates.with_for_update(skip_locked=True)
    claim_them = (
        update(CalendarConnection)
        .where(CalendarConnection.id.in_(candidates.scalar_subquery()), stale, free)
        .values(lease_owner=owner, lease_expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    if on_postgres:
        claimed = list(session.execute(claim_them.returning(CalendarConnection.id)).scalars())
    else:
        # SQLite: no FOR UPDATE (one UPDATE over a subquery, so no read lock is upgraded to a
        # write lock: two processes doing that deadlock at once instead of waiting), and the
        # claimed rows are read back by owner rather than returned.
        session.execute(claim_them)
        claimed = list(
            session.execute(
                select(CalendarConnection.id).where(CalendarConnection.lease_owner == owner)
            ).scalars()
        )
    session.commit()
    return claimed


def holds(session: Session, connection_id: int, owner: str) -> bool:
    """Whether ``owner`` holds the connection's lease."""
    return (
        session.execute(
            select(CalendarConnection.lease_owner).where(CalendarConnection.id == connection_id)
        ).scalar_one_or_none()
        == owner
    )


def release(session: Session, connection_id: int, owner: str) -> None:
    """Give the lease back, if we still hold it; commits."""
    session.execute(
        update(CalendarConnection)
        .where(CalendarConnection.id == connection_id, CalendarConnection.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()


class LeaseLost(Exception):
    """Another process took over the connection's lease (ours had expired)."""


def _renew_on(engine: Engine, connection_id: int, owner: str, ttl: timedelta) -> bool:
    with engine.begin() as conn:
        result = conn.execute(
            update(CalendarConnection)
            .where(CalendarConnection.id == connection_id, CalendarConnection.lease_owner == owner)
            .values(lease_expires_at=utcnow() + ttl)
        )
    return bool(result.rowcount == 1)


class Heartbeat:
    """Keeps a held lease alive while its sync runs, from a thread of its own.

    It renews every third of the TTL on a connection of its own, so neither a slow provider
    call nor retries waiting out a 429 can let the lease lapse. The sync asks ``check()``
    before every provider write and every commit of pulled changes: once the lease is lost
    (taken over, or not renewed in time because the database was unreachable), the sync
    stops before its next write.
    """

    def __init__(self, engine: Engine, connection_id: int, owner: str, ttl: timedelta) -> None:
        self.engine = engine
        self.connection_id = connection_id
        self.owner = owner
        self.ttl = ttl
        # A margin for the clock between our check and the database's view of expiry.
        self._margin = min(ttl / 4, timedelta(seconds=5))
        self._valid_until = utcnow() + ttl
        self._lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"lease-{connection_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        interval = self.ttl.total_seconds() / 3
        while not self._stop.wait(interval):
            self.beat()

    def beat(self) -> None:
        """Renew now; a database error leaves the lease to expire unless a later beat works."""
        started = utcnow()
        try:
            renewed = _renew_on(self.engine, self.connection_id, self.owner, self.ttl)
        except SQLAlchemyError as exc:
            log.warning("lease of connection %s not renewed: %s", self.connection_id, exc)
            return
        if renewed:
            self._valid_until = started + self.ttl
        else:
            self._lost = True

    def check(self) -> None:
        """Raise LeaseLost unless the lease is surely still ours."""
        if self._lost or utcnow() >= self._valid_until - self._margin:
            raise LeaseLost(self.connection_id)
