"""Provider sandbox: a local emulator of the Google and Microsoft APIs the service uses.

Google OAuth under ``/google/o/oauth2/v2/auth``, ``/google/token``, ``/google/revoke``;
Calendar v3 under ``/google/calendar/v3``, its batch endpoint at ``/google/batch/calendar/v3``;
the Microsoft identity platform under ``/microsoft/{tenant}/oauth2/v2.0``; Graph under
``/graph/v1.0``, JSON batching at ``/graph/v1.0/$batch``; the control API under ``/sandbox``.
Push: Google ``events/watch`` and ``channels/stop``, Graph ``/subscriptions``; notifications go
out from one background thread per app. Everything lives in memory behind one lock.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request
from flask.typing import ResponseReturnValue

from . import (
    concurrency,
    control,
    faults,
    google_auth,
    google_batch,
    google_calendar,
    google_push,
    graph,
    graph_batch,
    graph_subscriptions,
    microsoft_auth,
    push_control,
)
from .batch import UNLOCKED
from .errors import SandboxError
from .store import SandboxStore

__all__ = ["DEFAULT_CONFIG", "SandboxStore", "create_sandbox_app"]

DEFAULT_CONFIG: dict[str, Any] = {
    "SANDBOX_CLIENT_ID": None,
    "SANDBOX_CLIENT_SECRET": None,
    "SANDBOX_TIME_ZONE": "UTC",
    "SANDBOX_GRAPH_PAGE_SIZE": 10,
    # Graph requests a mailbox may have in flight at once (Outlook: 4); None counts, never refuses.
    "SANDBOX_GRAPH_MAILBOX_CONCURRENCY": None,
    # Lifetime caps (seconds) of Google channels and Graph subscriptions; settable at runtime.
    "SANDBOX_GOOGLE_CHANNEL_SECONDS": 604800,
    "SANDBOX_GRAPH_SUBSCRIPTION_SECONDS": 4230 * 60,
    "SANDBOX_GRAPH_MAILBOX_SUBSCRIPTIONS": 1000,  # live subscriptions per mailbox (Outlook)
    "SANDBOX_PUSH_TIMEOUT": 5.0,  # seconds a notification URL has to answer a POST
    # A notification answered 5xx (or not at all) is sent again, with exponential backoff.
    "SANDBOX_PUSH_RETRIES": 3,
    "SANDBOX_PUSH_RETRY_SECONDS": 1.0,
}


class SandboxApp(Flask):
    """A Flask app whose views run one at a time under the store's lock."""

    def dispatch_request(self) -> ResponseReturnValue:
        """Run the view holding the lock (faults and logging run outside it)."""
        rule = request.url_rule
        if rule is not None and getattr(self.view_functions.get(rule.endpoint), UNLOCKED, False):
            return super().dispatch_request()
        store: SandboxStore = self.extensions["sandbox"]
        with store.lock:
            return super().dispatch_request()


def _sandbox_error(error: SandboxError) -> Response:
    return error.response


def create_sandbox_app(config: dict[str, Any] | None = None) -> Flask:
    """A standalone Flask app emulating Google Calendar, Microsoft Graph and their OAuth."""
    app = SandboxApp("provider_sandbox")
    settings = {**DEFAULT_CONFIG, **(config or {})}
    app.config.update(settings)
    app.extensions["sandbox"] = SandboxStore(settings)
    app.register_error_handler(SandboxError, _sandbox_error)
    concurrency.install(app)  # first: a request waiting on a fault's delay is in flight
    faults.install(app)
    for blueprint in (
        google_auth.bp,
        google_calendar.bp,
        google_push.bp,
        google_batch.bp,
        microsoft_auth.bp,
        graph.bp,
        graph_subscriptions.bp,
        graph_batch.bp,
        control.bp,
        push_control.bp,
    ):
        app.register_blueprint(blueprint)
    return app
