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

from sqlalchemy import (
    ColumnElement,
    Engine,
    and_,
    func,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..models import CalendarConnection, utcnow
from ..models.base import UTCDateTime
from ..models.connection import NEVER_SYNCED_AT

log = logging.getLogger(__name__)


def new_owner() -> str:
    """A lease owner id that names the host and process, for operators reading the table."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def is_free(now: datetime) -> ColumnElement[bool]:
    """Nobody holds the lease, or its holder let it expire."""
    return or_(CalendarConnection.lease_owner.is_(None), CalendarConnection.lease_expires_at < now)


def claim(
    session: Session,
    connection_id: int,
    owner: str,
    ttl: timedelta,
    *,
    only_if_due: bool = False,
) -> bool:
    """Take the lease if it is free or expired; commits. True when taken.

    Taking it clears ``push_due_at`` in the same statement: whatever starts a sync, a
    notification that arrives once it has started makes the connection due again. With
    ``only_if_due``, a connection no longer due (another process synced it meanwhile) or no
    longer connected is left alone.
    """
    now = utcnow()
    conditions: list[ColumnElement[bool]] = [CalendarConnection.id == connection_id, is_free(now)]
    if only_if_due:
        conditions += [
            CalendarConnection.connected.is_(True),
            CalendarConnection.push_due_at.is_not(None),
        ]
    result = session.execute(
        update(CalendarConnection)
        .where(*conditions)
        .values(lease_owner=owner, lease_expires_at=now + ttl, push_due_at=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def is_due(session: Session, connection_id: int) -> bool:
    """Whether a trusted notification made the connection due and no sync has started since."""
    due_at = session.execute(
        select(CalendarConnection.push_due_at).where(
            CalendarConnection.id == connection_id, CalendarConnection.connected
        )
    ).scalar_one_or_none()
    return due_at is not None


def last_sync_key() -> ColumnElement[datetime]:
    """When the connection last synced, the epoch if never: the key of
    ``ix_calendar_connection_sync_order``."""
    return func.coalesce(
        CalendarConnection.last_sync_at, literal_column(NEVER_SYNCED_AT, UTCDateTime())
    )


def push_active(now: datetime) -> ColumnElement[bool]:
    """A push channel is open: the provider tells us of changes."""
    return CalendarConnection.push_expires_at > now


def stale_since(
    cutoff: datetime, *, push_cutoff: datetime | None = None, now: datetime | None = None
) -> ColumnElement[bool]:
    """Never synced, or last synced before ``cutoff``; with ``push_cutoff``, a connection
    whose push is active at ``now`` is stale only once last synced before ``push_cutoff``."""
    key = last_sync_key()
    if push_cutoff is None:
        return key < cutoff
    active = push_active(now or utcnow())
    return and_(
        # The range of the sync-order index first, for PostgreSQL to walk.
        key < max(cutoff, push_cutoff),
        or_(
            and_(key < cutoff, or_(CalendarConnection.push_expires_at.is_(None), ~active)),
            and_(key < push_cutoff, active),
        ),
    )


def due_by_push(now: datetime) -> ColumnElement[bool]:
    """A trusted notification made the connection due (see ``operations.webhooks``)."""
    return CalendarConnection.push_due_at <= now


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
    stale_before_push: datetime | None = None,
) -> list[int]:
    """Claim up to ``limit`` connections due by a notification (first) or stale (oldest
    first); commits. Their ids. Claiming clears their ``push_due_at``.

    Stale is last synced before ``stale_before``, or, given ``stale_before_push``, before
    that for connections whose push is active (``stale_since``). One UPDATE over a subquery
    of candidates: the due ones (on the ``push_due_at`` index) then the stale ones (walking
    the sync-order index), each branch limited. Several schedulers (workers, hosts) call this
    at once: on PostgreSQL the candidates are read with FOR UPDATE SKIP LOCKED so each takes
    different rows; everywhere the UPDATE re-checks that the row is still free and still due
    or stale, so a connection another scheduler has just synced is not synced again in the
    same round.
    """
    now = utcnow()
    stale = stale_since(stale_before, push_cutoff=stale_before_push, now=now)
    due = due_by_push(now)
    free = is_free(now)
    on_postgres = session.get_bind().dialect.name == "postgresql"
    # The bare column (not ``IS true``), so PostgreSQL matches the indexes' ``WHERE connected``.
    branches = [
        select(CalendarConnection.id)
        .where(CalendarConnection.connected, due, free)
        .order_by(CalendarConnection.push_due_at, CalendarConnection.id)
        .limit(limit),
        select(CalendarConnection.id)
        .where(CalendarConnection.connected, stale, free)
        .order_by(*OLDEST_SYNC_FIRST)
        .limit(limit),
    ]
    if on_postgres:
        branches = [branch.with_for_update(skip_locked=True) for branch in branches]
    # Each branch in a subquery of its own: PostgreSQL takes no row locks directly under a
    # UNION, and SQLite no LIMIT on a member of one.
    both = union_all(*(select(branch.subquery().c.id) for branch in branches)).subquery()
    candidates = select(both.c.id).limit(limit)
    claim_them = (
        update(CalendarConnection)
        .where(
            CalendarConnection.id.in_(candidates.scalar_subquery()),
            CalendarConnection.connected,
            or_(due, stale),
            free,
        )
        .values(lease_owner=owner, lease_expires_at=now + ttl, push_due_at=None)
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
