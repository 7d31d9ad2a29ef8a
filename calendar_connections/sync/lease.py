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

from sqlalchemy import ColumnElement, Engine, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..models import CalendarConnection, utcnow

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


def stale_since(cutoff: datetime) -> ColumnElement[bool]:
    """Never synced, or last synced before ``cutoff``."""
    return or_(
        CalendarConnection.last_sync_at.is_(None),
        CalendarConnection.last_sync_at < cutoff,
    )


# Never synced first, then the longest unsynced.
OLDEST_SYNC_FIRST = (
    CalendarConnection.last_sync_at.is_not(None),
    CalendarConnection.last_sync_at,
    CalendarConnection.id,
)


def claim_stale(
    session: Session,
    *,
    owner: str,
    ttl: timedelta,
    stale_before: datetime,
    limit: int,
) -> list[int]:
    """Claim up to ``limit`` stale connections, oldest first; commits. Their ids.

    Several schedulers (workers, hosts) call this at once: on PostgreSQL the candidates are
    read with FOR UPDATE SKIP LOCKED so each takes different rows; everywhere the claim itself
    re-checks, in one UPDATE, that the row is still free and still stale, so a connection
    another scheduler has just synced is not synced again in the same round.
    """
    now = utcnow()
    stale = stale_since(stale_before)
    free = or_(CalendarConnection.lease_owner.is_(None), CalendarConnection.lease_expires_at < now)
    candidates = (
        select(CalendarConnection.id)
        .where(CalendarConnection.connected.is_(True), stale, free)
        .order_by(*OLDEST_SYNC_FIRST)
        .limit(limit)
    )
    if session.get_bind().dialect.name != "postgresql":
        # SQLite: one UPDATE over a subquery, so no read lock is upgraded to a write lock
        # (two processes doing that deadlock at once instead of waiting).
        session.execute(
            update(CalendarConnection)
            .where(CalendarConnection.id.in_(candidates.scalar_subquery()), stale, free)
            .values(lease_owner=owner, lease_expires_at=now + ttl)
            .execution_options(synchronize_session=False)
        )
        mine = list(
            session.execute(
                select(CalendarConnection.id).where(CalendarConnection.lease_owner == owner)
            ).scalars()
        )
        session.commit()
        return mine
    claimed: list[int] = []
    locked = candidates.with_for_update(skip_locked=True)
    for connection_id in list(session.execute(locked).scalars()):
        result = session.execute(
            update(CalendarConnection)
            .where(CalendarConnection.id == connection_id, stale, free)
            .values(lease_owner=owner, lease_expires_at=now + ttl)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(connection_id)
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


def renew(session: Session, connection_id: int, owner: str, ttl: timedelta) -> bool:
    """Extend a lease we hold; commits. False when it was lost (expired and taken)."""
    result = session.execute(
        update(CalendarConnection)
        .where(CalendarConnection.id == connection_id, CalendarConnection.lease_owner == owner)
        .values(lease_expires_at=utcnow() + ttl)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


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
