"""Inner calls of a batch: each one dispatched through the app as if it had come alone."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from flask import Response, current_app, request
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder

# The WSGI environ key that marks a request as one call of a batch (the request log says so).
BATCHED = "provider_sandbox.batched"
# The attribute that marks a view as taking the store's lock call by call, not for its whole run.
UNLOCKED = "sandbox_unlocked"
View = TypeVar("View", bound=Callable[..., object])
# Outer headers an inner call never inherits: they describe the batch's own body and transport.
_NOT_INHERITED = ("content-", "host", "transfer-encoding", "connection")


def unlocked(view: View) -> View:
    """Run ``view`` without the store's lock: each call it dispatches takes the lock itself, so
    a delayed call (a fault's ``delay``) does not hold up every other request."""
    setattr(view, UNLOCKED, True)
    return view


def inherited_headers() -> Headers:
    """The batch request's headers that apply to each of its calls (Authorization and the like)."""
    return Headers(
        [
            (name, value)
            for name, value in request.headers.items()
            if not name.lower().startswith(_NOT_INHERITED)
        ]
    )


def dispatch(method: str, target: str, headers: Mapping[str, str], body: bytes) -> Response:
    """Answer one call of a batch: same routing, auth, queued faults and request log."""
    merged = inherited_headers()
    for name, value in headers.items():
        merged.set(name, value)
    path, _, query = target.partition("?")
    builder = EnvironBuilder(
        path=path,
        base_url=request.url_root,
        query_string=query,
        method=method.upper(),
        headers=merged,
        data=body,
    )
    try:
        environ = builder.get_environ()
    finally:
        builder.close()
    environ[BATCHED] = True
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy
    with app.request_context(environ):
        response: Response = app.full_dispatch_request()
    return response
