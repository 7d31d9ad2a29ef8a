"""Typed SQLAlchemy models."""

from .base import Base, Provider, SyncStatus, utcnow
from .connection import CalendarConnection, OAuthState, OAuthToken

__all__ = [
    "Base",
    "CalendarConnection",
    "OAuthState",
    "OAuthToken",
    "Provider",
    "SyncStatus",
    "utcnow",
]
