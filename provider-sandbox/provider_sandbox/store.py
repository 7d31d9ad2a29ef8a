"""The sandbox's in-memory state: accounts, OAuth grants, events, sync states, log, faults,
push channels and subscriptions."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask import current_app

from .push_delivery import Deliverer
from .push_state import PushState

if TYPE_CHECKING:
    from .faults import Fault
    from .google_events import GoogleEvent
    from .graph_delta import DeltaRound, DeltaState
    from .graph_model import GraphEvent

GOOGLE = "google"
MICROSOFT = "microsoft"
DEFAULT_EMAILS = {GOOGLE: "sandbox.user@gmail.test", MICROSOFT: "sandbox.user@outlook.test"}


@dataclass
class Account:
    """One provider account (a Google or Microsoft user) and its default calendar."""

    provider: str
    email: str
    display_name: str
    user_id: str
    calendar_id: str
    time_zone: str


@dataclass
class AuthCode:
    """An authorization code handed to the redirect URI, redeemable once."""

    code: str
    provider: str
    email: str
    client_id: str
    redirect_uri: str
    scope: str
    challenge: str | None
    challenge_method: str
    offline: bool
    expires_at: datetime
    used: bool = False


@dataclass
class Grant:
    """A user's consent to a client: owns one refresh token and its access tokens."""

    id: str
    provider: str
    email: str
    client_id: str
    scope: str
    refresh_token: str | None
    revoked: bool = False
    retired_refresh_tokens: set[str] = field(default_factory=set)


@dataclass
class AccessToken:
    """A bearer token of a grant."""

    token: str
    grant_id: str
    expires_at: datetime


@dataclass
class LogEntry:
    """One provider request the sandbox answered."""

    method: str
    path: str
    query: str
    status: int
    fault: bool
    params: dict[str, list[str]] = field(default_factory=dict)  # the query, parsed
    batched: bool = False  # one call of a batch request (the batch itself is logged too)

    def as_json(self) -> dict[str, Any]:
        """This entry as JSON."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "params": {name: list(values) for name, values in self.params.items()},
            "status": self.status,
            "fault": self.fault,
            "batched": self.batched,
        }


class SandboxStore:
    """Everything the sandbox knows, guarded by one re-entrant lock."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.lock = threading.RLock()
        self.config = config
        self.epoch = 0
        self.deliverer = Deliverer(self)  # outlives resets: it drops what an older epoch queued
        self.reset()

    def reset(self) -> None:
        """Forget everything; tokens issued before stay invalid (the epoch moves on)."""
        with self.lock:
            self.epoch += 1
            self.seq = 0
            self.ordinal = 0
            self.accounts: dict[str, dict[str, Account]] = {GOOGLE: {}, MICROSOFT: {}}
            self.codes: dict[str, AuthCode] = {}
            self.grants: dict[str, Grant] = {}
            self.refresh_tokens: dict[str, str] = {}
            self.access_tokens: dict[str, AccessToken] = {}
            self.google_events: dict[str, dict[str, GoogleEvent]] = {}
            self.graph_events: dict[str, dict[str, GraphEvent]] = {}
            self.graph_transactions: dict[str, dict[str, str]] = {}
            self.delta_states: dict[str, DeltaState] = {}
            self.delta_rounds: dict[str, DeltaRound] = {}
            self.log: list[LogEntry] = []
            self.counts: Counter[str] = Counter()
            self.faults: list[Fault] = []
            self.in_flight: Counter[str] = Counter()  # Graph requests being answered, per mailbox
            self.peak_in_flight: dict[str, int] = {}  # the most at once, per mailbox
            self.push = PushState(self.config)  # channels, subscriptions, lifetimes, deliveries

    def next_seq(self) -> int:
        """Bump and return the global change sequence (every write calls this)."""
        self.seq += 1
        return self.seq

    def next_ordinal(self) -> int:
        """A creation order number for listing events stably."""
        self.ordinal += 1
        return self.ordinal

    def account(self, provider: str, email: str | None = None) -> Account:
        """The account ``email`` of ``provider``, created on first use."""
        address = (email or DEFAULT_EMAILS[provider]).strip().lower()
        known = self.accounts[provider].get(address)
        if known is not None:
            return known
        local = address.split("@", 1)[0]
        name = " ".join(part.capitalize() for part in local.replace("_", ".").split(".") if part)
        user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox:{provider}:{address}"))
        calendar_id = address
        if provider == MICROSOFT:
            from .graph_model import calendar_id_for

            calendar_id = calendar_id_for(address)
        account = Account(
            provider=provider,
            email=address,
            display_name=name or address,
            user_id=user_id,
            calendar_id=calendar_id,
            time_zone=str(self.config.get("SANDBOX_TIME_ZONE", "UTC")),
        )
        self.accounts[provider][address] = account
        return account

    def find_account(self, provider: str, email: str) -> Account | None:
        """The account ``email`` of ``provider`` if it exists."""
        return self.accounts[provider].get(email.strip().lower())

    def record(self, entry: LogEntry) -> None:
        """Append a provider request to the log and the per-path counts."""
        with self.lock:
            self.log.append(entry)
            self.counts[f"{entry.method} {entry.path}"] += 1


def current_store() -> SandboxStore:
    """The store of the sandbox app handling this request."""
    store: SandboxStore = current_app.extensions["sandbox"]
    return store
