"""The sync lease: one sync per connection at a time, across threads, workers and hosts.

A lease is two columns on the connection, claimed with one conditional UPDATE, which is atomic
on SQLite and PostgreSQL alike. It expires on its own, so a process that dies mid-sync blocks
the connection only until then; a running sync renews it after every page.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from ..models import CalendarConnection, utcnow


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
