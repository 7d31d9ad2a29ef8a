"""Graph requests in flight per mailbox: counted, their peak kept, optionally capped.

Outlook lets an app have a few requests in flight per mailbox at once (four) and answers the
rest 429 ``ApplicationThrottled``. The sandbox counts each Graph request (a ``$batch`` once,
not its calls) from before its faults until its answer, keeps the peak per mailbox for tests
and ``GET /sandbox/state``, and refuses beyond ``SANDBOX_GRAPH_MAILBOX_CONCURRENCY`` when set.
"""

from __future__ import annotations

from flask import Flask, Response, g, request

from .batch import BATCHED
from .errors import graph_error
from .oauth import authenticate
from .store import MICROSOFT, Account, current_store

GRAPH_PREFIX = "/graph/"


def _enter() -> Response | None:
    if not request.path.startswith(GRAPH_PREFIX) or request.environ.get(BATCHED):
        return None
    store = current_store()
    limit = store.config.get("SANDBOX_GRAPH_MAILBOX_CONCURRENCY")
    with store.lock:
        account = authenticate(store, MICROSOFT)
        if not isinstance(account, Account):
            return None  # the view answers 401
        if limit is not None and store.in_flight[account.email] >= int(limit):
            raise graph_error(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                headers={"Retry-After": "1"},
            )
        store.in_flight[account.email] += 1
        store.peak_in_flight[account.email] = max(
            store.peak_in_flight.get(account.email, 0), store.in_flight[account.email]
        )
    g.sandbox_mailbox = account.email
    return None


def _leave(_: BaseException | None) -> None:
    email = g.pop("sandbox_mailbox", None)
    if email is not None:
        store = current_store()
        with store.lock:
            store.in_flight[email] -= 1


def install(app: Flask) -> None:
    """Count Graph requests in flight per mailbox (install before the faults: a delay counts)."""
    app.before_request(_enter)
    app.teardown_request(_leave)
