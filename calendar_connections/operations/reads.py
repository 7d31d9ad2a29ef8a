"""The connection a read-only request runs its statements on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection
from sqlalchemy.orm import Session


@contextmanager
def reading(session: Session) -> Iterator[Connection]:
    """A connection for statements that only read.

    Inside a transaction the session has begun, its connection, which sees what it flushed.
    Otherwise a connection of the session's engine, without the ORM session's transaction
    bookkeeping (a tenth of a millisecond per request): on PostgreSQL in autocommit, so no
    BEGIN and ROLLBACK round trips, and nothing lost, since READ COMMITTED gives each statement
    a snapshot of its own anyway; SQLite's driver begins no transaction for a SELECT.
    """
    bind = session.get_bind()
    if session.in_transaction() or isinstance(bind, Connection):
        yield session.connection()
        return
    with bind.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection
