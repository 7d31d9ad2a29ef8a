"""Migration 0006: the push channel table and the connection's push columns, both ways."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from flask_migrate import downgrade, upgrade

from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, PushChannel, utcnow

PUSH_COLUMNS = {"push_expires_at", "push_due_at", "push_error", "push_retry_at"}


def _schema() -> tuple[set[str], set[str], set[str]]:
    inspector = sa.inspect(db.engine)
    tables = set(inspector.get_table_names())
    columns = {column["name"] for column in inspector.get_columns("calendar_connection")}
    return tables, columns, _index_names()


def _index_names() -> set[str]:
    # Read from the catalogue: reflection skips (and warns about) expression indexes.
    if db.engine.dialect.name == "postgresql":
        query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'index'"
    with db.engine.connect() as conn:
        return set(conn.execute(sa.text(query)).scalars())


def test_0006_downgrades_and_upgrades_again(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    with app.app_context():
        tables, columns, indexes = _schema()
        assert "push_channel" in tables and PUSH_COLUMNS <= columns
        assert {
            "ix_push_channel_renew_at",
            "ix_push_channel_connection_id",
            "ix_calendar_connection_push_due_at",
            "ix_calendar_connection_sync_order",
        } <= indexes
        db.session.remove()

        downgrade(revision="0005_push_and_claim_indexes")
        tables, columns, indexes = _schema()
        assert "push_channel" not in tables and not PUSH_COLUMNS & columns
        # The batch copy of the table on SQLite keeps the claim's expression index.
        assert "ix_calendar_connection_sync_order" in indexes
        assert "ix_calendar_connection_push_due_at" not in indexes

        upgrade()
        tables, columns, indexes = _schema()
        assert "push_channel" in tables and PUSH_COLUMNS <= columns
        assert "ix_calendar_connection_push_due_at" in indexes


def test_channels_go_with_their_connection(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    with app.app_context():
        connection = CalendarConnection(user_id="u-1", provider="GOOGLE", connected=True)
        db.session.add(connection)
        db.session.flush()
        now = utcnow()
        db.session.add(
            PushChannel(
                connection_id=connection.id,
                provider_channel_id="9f6c1d9e-channel",
                resource_id="resource-1",
                secret_hash="0" * 64,
                expires_at=now + timedelta(days=7),
                renew_at=now + timedelta(days=3, hours=12),
            )
        )
        connection.push_expires_at = now + timedelta(days=7)
        db.session.commit()
        stored = db.session.execute(sa.select(PushChannel)).scalar_one()
        assert stored.expires_at == now + timedelta(days=7)
        assert "0" * 64 not in repr(stored)

        db.session.execute(sa.delete(CalendarConnection))
        db.session.commit()
        assert db.session.execute(sa.select(sa.func.count(PushChannel.id))).scalar_one() == 0
