"""The one table from domain errors to problems, and the 404 of a mistyped OAuth path.

Operations, the engine and the providers raise their own errors; this table alone says which
problem (status, type, title, detail) each one is. An error matches its nearest class here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import NotFound

from ..errors import Problem, handle_http_exception, handle_problem, problem_response
from ..idempotency import IdempotencyKeyReused
from ..operations.connections import (
    AuthorizationDenied,
    AuthorizationStateError,
    CalendarAccessNotGranted,
)
from ..operations.events import EventNotFound, InvalidEvent
from ..providers.errors import (
    ProviderError,
    ProviderGrantError,
    ProviderNotConfigured,
    ProviderUnavailable,
)
from ..schemas.connections import PROVIDER_VALUES
from ..sync.engine import SyncAlreadyRunning
from ..sync.service import NotConnected


def _denied(error: AuthorizationDenied) -> Problem:
    detail = (
        "The user declined access at the provider."
        if error.error == "access_denied"
        else f"The provider returned the error {error.error!r}."
    )
    if error.description:
        detail += f" ({error.description})"
    return Problem(400, detail, kind="oauth-denied", title="Authorization denied")


def _invalid_event(error: InvalidEvent) -> Problem:
    # The same body as a 422 from request validation: a sentence and a per-field map.
    return Problem(
        422,
        f"Invalid request. {error.field}: {error.message}",
        kind="validation",
        extra={"errors": {error.field: [error.message]}},
    )


PROBLEMS: dict[type[Exception], Callable[[Any], Problem]] = {
    AuthorizationStateError: lambda error: Problem(
        400, str(error), kind="invalid-oauth-state", title="Invalid state"
    ),
    AuthorizationDenied: _denied,
    CalendarAccessNotGranted: lambda error: Problem(
        400, str(error), kind="calendar-access-not-granted", title="Calendar access not granted"
    ),
    ProviderGrantError: lambda error: Problem(
        400, error.message, kind="invalid-grant", title="Invalid grant"
    ),
    ProviderNotConfigured: lambda error: Problem(
        503, error.message, kind="provider-not-configured", title="Provider not configured"
    ),
    ProviderUnavailable: lambda error: Problem(
        502, error.message, kind="provider-unavailable", title="Provider error"
    ),
    ProviderError: lambda error: Problem(
        502, error.message, kind="provider-error", title="Provider error"
    ),
    NotConnected: lambda error: Problem(
        404, str(error), kind="not-connected", title="Not connected"
    ),
    SyncAlreadyRunning: lambda error: Problem(
        409,
        "A sync of this connection is already running; try again when it has finished.",
        kind="sync-running",
        title="Sync already running",
    ),
    EventNotFound: lambda error: Problem(404, str(error)),
    InvalidEvent: _invalid_event,
    IdempotencyKeyReused: lambda error: Problem(422, str(error), kind="idempotency-key-reused"),
}


def domain_problem(error: Exception) -> Response:
    """The problem the table names for ``error``'s nearest class."""
    for cls in type(error).__mro__:
        if cls in PROBLEMS:
            return handle_problem(PROBLEMS[cls](error))
    raise error  # registered only for the table's classes: unreachable


# The seed's authorize and callback paths name their provider in lowercase.
_OAUTH_PATH = re.compile(
    r"^(?P<base>/api/v1/crm/calendar/connections/)(?P<slug>[^/]+)/(?P<step>authorize|callback)/?$"
)
_SLUGS = [provider.lower() for provider in PROVIDER_VALUES]


def not_found_problem(error: NotFound) -> Response:
    """A 404; on an OAuth path with a wrong provider, one that says which paths exist."""
    match = _OAUTH_PATH.match(request.path)
    if match is None or match["slug"] in _SLUGS:
        return handle_http_exception(error)
    slug, step = match["slug"], match["step"]
    if slug.lower() in _SLUGS:
        detail = (
            f"No resource at {request.path}: provider paths are lowercase, use "
            f"{match['base']}{slug.lower()}/{step}."
        )
    else:
        detail = (
            f"Unknown provider {slug!r} in {request.path}: use one of "
            f"{', '.join(_SLUGS)} (lowercase), as in {match['base']}{_SLUGS[0]}/{step}."
        )
    return problem_response(404, detail, kind="unknown-provider", extra={"allowedValues": _SLUGS})


def init_app(app: Flask) -> None:
    """Answer each domain error of the table, and a 404, with its problem."""
    for cls in PROBLEMS:
        app.register_error_handler(cls, domain_problem)
    app.register_error_handler(NotFound, not_found_problem)
