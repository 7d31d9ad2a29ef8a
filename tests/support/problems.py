"""Problem details as the API serves them, and signed test tokens."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import jwt as pyjwt

from .app import JWT_SECRET

PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "time"}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.json
    assert PROBLEM_FIELDS <= set(body)
    assert body["status"] == status
    assert body["instance"] == response.request.path
    assert datetime.fromisoformat(body["time"]).tzinfo is not None
    return body


def encode(claims: dict[str, Any], key: str = JWT_SECRET, algorithm: str = "HS256") -> str:
    """A signed token; it expires in five minutes unless ``claims`` say otherwise."""
    return pyjwt.encode({"exp": int(time.time()) + 300, **claims}, key, algorithm=algorithm)
