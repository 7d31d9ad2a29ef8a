"""Graph event writes: create (``transactionId`` dedupe), patch, delete (series-aware)."""

from __future__ import annotations

import copy
from typing import Any

from .errors import graph_not_found
from .graph_model import (
    EXCEPTION,
    MASTER,
    OCCURRENCE,
    SINGLE,
    GraphEvent,
    as_exception,
    build_event,
    patch_fields,
)
from .graph_view import find_event, find_master
from .push_state import graph_changed
from .store import Account, SandboxStore


def create_event(store: SandboxStore, account: Account, body: dict[str, Any]) -> GraphEvent:
    """Create an event; a repeated ``transactionId`` returns the event made the first time."""
    events = store.graph_events.setdefault(account.email, {})
    transactions = store.graph_transactions.setdefault(account.email, {})
    known = transactions.get(str(body.get("transactionId") or ""))
    if known is not None and known in events:
        return events[known]
    event = build_event(account.email, body)
    store.next_seq()
    events[event.id] = event
    if event.transaction_id:
        transactions[event.transaction_id] = event.id
    graph_changed(store, account, event.id, "created", event.change_key)
    return event


def update_event(
    store: SandboxStore, account: Account, event_id: str, body: dict[str, Any]
) -> GraphEvent:
    """Patch an event; an occurrence patched becomes an exception of its series."""
    event = find_event(store, account.email, event_id)
    if event is None:
        raise graph_not_found()
    events = store.graph_events[account.email]
    if event.kind in (OCCURRENCE, EXCEPTION):
        master = find_master(store, account.email, event_id)
        assert master is not None
        changed = as_exception(event) if event.kind == OCCURRENCE else copy.deepcopy(event)
        patch_fields(changed, body)
        master.exceptions[changed.id] = changed
    else:
        changed = copy.deepcopy(event)
        if patch_fields(changed, body):
            changed.exceptions.clear()
            changed.deleted.clear()
        events[changed.id] = changed
    store.next_seq()
    graph_changed(store, account, changed.id, "updated", changed.change_key)
    return changed


def delete_event(store: SandboxStore, account: Account, event_id: str) -> None:
    """Delete an event: a series with its instances, or one occurrence of a series."""
    event = find_event(store, account.email, event_id)
    if event is None:
        raise graph_not_found()
    if event.kind in (SINGLE, MASTER):
        del store.graph_events[account.email][event.id]
        transactions = store.graph_transactions.get(account.email, {})
        if event.transaction_id:
            transactions.pop(event.transaction_id, None)
    else:
        master = find_master(store, account.email, event_id)
        assert master is not None
        master.exceptions.pop(event.id, None)
        master.deleted.add(event.id)
    store.next_seq()
    graph_changed(store, account, event.id, "deleted", event.change_key)
