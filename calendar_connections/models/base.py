"""Declarative base and column types shared by every model."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, MetaData, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A UTC instant: stored naive-UTC on every backend, always read back aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        result: datetime = value.replace(tzinfo=UTC)
        return result


class Provider(StrEnum):
    """A calendar provider the service connects to."""

    GOOGLE = "GOOGLE"
    OUTLOOK = "OUTLOOK"

    @classmethod
    def parse(cls, value: str) -> Provider | None:
        """The provider named ``value`` (any case), or None."""
        try:
            return cls(value.strip().upper())
        except ValueError:
            return None


class SyncStatus(StrEnum):
    """Where a connection's last sync stands."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


class Base(DeclarativeBase):
    """Declarative base with a naming convention Alembic can rely on."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
