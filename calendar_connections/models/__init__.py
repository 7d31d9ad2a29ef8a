"""Typed SQLAlchemy models."""

from .base import Base, Provider, SyncStatus, utcnow
from .connection import CalendarConnection, OAuthState, OAuthToken
from .event import LINK_EVENT, LINK_OCCURRENCE, ORIGIN_CRM, CalendarEvent, EventLink, new_uid
from .idempotency import IdempotencyKey
from .push import PushChannel

__all__ = [
    "LINK_EVENT",
    "LINK_OCCURRENCE",
    "ORIGIN_CRM",
    "CalendarEvent",
    "EventLink",
    "IdempotencyKey",
    "new_uid",
    "Base",
    "CalendarConnection",
    "OAuthState",
    "OAuthToken",
    "PushChannel",
    "Provider",
    "SyncStatus",
    "utcnow",
]
