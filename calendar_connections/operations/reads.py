"""The connection a read-only request runs its statements on."""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.orm import Session


def read_connection(session: Session) -> Connection:
    """The session's connection for statements that only read.

    On PostgreSQL, in autocommit when the session has begun nothing yet: no BEGIN and ROLLBACK
    round trips per request, and nothing lost, since READ COMMITTED gives each statement a
    snapshot of its own anyway. SQLite's driver begins no transaction for a SELECT: there the
    plain connection is cheaper than switching modes. Inside a transaction already begun, its
    connection, which sees what the transaction has flushed.
    """
    if session.in_transaction() or session.get_bind().dialect.name != "postgresql":
        return session.connection()
    return session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
