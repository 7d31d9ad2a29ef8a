"""Idempotency keys: the same ``POST`` retried with the same key gets the first answer.

Plain functions over a session: they flush, the request commits. The unique constraint on
(user, key) settles races between workers and hosts; nothing here checks-then-inserts alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .models import IdempotencyKey, utcnow

REPLAY_WINDOW = timedelta(hours=24)


class IdempotencyKeyReused(Exception):
    """The key was already used by this user for a request with another body."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"The Idempotency-Key {key!r} was already used for a different request in the "
            "last 24 hours: use a new key for a new request."
        )


@dataclass(frozen=True)
class StoredAnswer:
    """What the first request with a key was answered."""

    status: int
    body: str
    location: str | None


def request_fingerprint(document: Any) -> str:
    """SHA-256 of a JSON document in canonical form (sorted keys, no spaces)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_answer(session: Session, user_id: str, key: str, fingerprint: str) -> StoredAnswer | None:
    """The answer stored for ``key`` in the last 24 hours, if any; ``IdempotencyKeyReused``
    when it answered another request."""
    row = session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at >= utcnow() - REPLAY_WINDOW,
        )
    )
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise IdempotencyKeyReused(key)
    return StoredAnswer(status=row.status, body=row.body, location=row.location)


def remember_answer(
    session: Session, user_id: str, key: str, fingerprint: str, answer: StoredAnswer
) -> None:
    """Store the answer of ``key``; an ``IntegrityError`` at flush means a twin stored first."""
    now = utcnow()
    # Keys older than the window are free again: drop this user's expired ones first.
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.created_at < now - REPLAY_WINDOW,
        )
    )
    session.add(
        IdempotencyKey(
            user_id=user_id,
            key=key,
            request_hash=fingerprint,
            status=answer.status,
            body=answer.body,
            location=answer.location,
            created_at=now,
        )
    )
    session.flush()
