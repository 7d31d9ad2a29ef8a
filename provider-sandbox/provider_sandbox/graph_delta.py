"""Graph calendarView delta: rounds of pages, skip/delta tokens, and view snapshots."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import graph_error
from .graph_model import GraphEvent, render
from .graph_view import calendar_view
from .store import SandboxStore
from .timezones import parse_instant


@dataclass
class DeltaState:
    """What a client has seen of a window when it got a delta link."""

    id: str
    email: str
    window: tuple[datetime, datetime]
    snapshot: dict[str, str]
    expand: str | None


@dataclass
class DeltaRound:
    """One delta round being paged through: entries are (id, removed)."""

    id: str
    email: str
    window: tuple[datetime, datetime]
    entries: list[tuple[str, bool]]
    snapshot: dict[str, str]
    expand: str | None


def sync_state_gone() -> Exception:
    """Graph's 410 for an unknown or expired delta/skip token."""
    return graph_error(
        410,
        "SyncStateNotFound",
        "The sync state generation is not found; a full synchronization is required.",
    )


def encode_token(
    store: SandboxStore, kind: str, ident: str, window: tuple[datetime, datetime], offset: int = 0
) -> str:
    """An opaque token carrying the round/state id, the window and the sandbox epoch."""
    data = {
        "k": kind,
        "i": ident,
        "o": offset,
        "e": store.epoch,
        "w": [window[0].isoformat(), window[1].isoformat()],
    }
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_token(
    store: SandboxStore, kind: str, token: str
) -> tuple[str, int, tuple[datetime, datetime]]:
    """The id, offset and window of a token of ``kind``; 410 when unknown or expired."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        low, high = parse_instant(data["w"][0]), parse_instant(data["w"][1])
        if data["k"] == kind and data["e"] == store.epoch and low and high:
            return str(data["i"]), int(data["o"]), (low, high)
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error):
        pass
    raise sync_state_gone()


def version(event: GraphEvent) -> str:
    """A fingerprint of everything a client would see of ``event``."""
    text = json.dumps(render(event, expand=[]), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def start_round(
    store: SandboxStore,
    email: str,
    window: tuple[datetime, datetime],
    previous: dict[str, str] | None,
    expand: str | None,
) -> DeltaRound:
    """A new round: everything in the window, or what changed since ``previous``."""
    current = {event.id: version(event) for event in calendar_view(store, email, *window)}
    if previous is None:
        entries = [(event_id, False) for event_id in current]
    else:
        entries = [(i, False) for i, v in current.items() if previous.get(i) != v]
        entries += [(i, True) for i in previous if i not in current]
    delta_round = DeltaRound(
        id=str(uuid.uuid4()),
        email=email,
        window=window,
        entries=entries,
        snapshot=current,
        expand=expand,
    )
    store.delta_rounds[delta_round.id] = delta_round
    return delta_round


def finish_round(store: SandboxStore, delta_round: DeltaRound) -> DeltaState:
    """The state a delta link of a finished round stands for."""
    state = DeltaState(
        id=str(uuid.uuid4()),
        email=delta_round.email,
        window=delta_round.window,
        snapshot=delta_round.snapshot,
        expand=delta_round.expand,
    )
    store.delta_states[state.id] = state
    return state


def removed(event_id: str) -> dict[str, Any]:
    """How a delta page reports an item gone from the view."""
    return {
        "@odata.type": "#microsoft.graph.event",
        "id": event_id,
        "@removed": {"reason": "deleted"},
    }


def expire(store: SandboxStore) -> int:
    """Invalidate every delta and skip token issued so far; the number dropped."""
    count = len(store.delta_states) + len(store.delta_rounds)
    store.delta_states.clear()
    store.delta_rounds.clear()
    store.epoch += 1
    return count
