"""The HTTP API under /api/v1: blueprints and the mapping of domain errors to problems."""

from __future__ import annotations

import re

from flask import Flask, Response, request
from werkzeug.exceptions import NotFound

from ..connections import AuthorizationDenied, AuthorizationStateError, CalendarAccessNotGranted
from ..errors import handle_http_exception, problem_response
from ..extensions import api
from ..providers.errors import (
    ProviderError,
    ProviderGrantError,
    ProviderNotConfigured,
    ProviderUnavailable,
)
from ..schemas import PROVIDER_VALUES
from ..sync.engine import SyncAlreadyRunning
from ..sync.service import NotConnected
from .common import ProviderConverter, provider_param_schema
from .connections import blp as connections_blp
from .events import blp as events_blp

# The seed's authorize and callback paths name their provider in lowercase.
_OAUTH_PATH = re.compile(
    r"^(?P<base>/api/v1/crm/calendar/connections/)(?P<slug>[^/]+)/(?P<step>authorize|callback)/?$"
)
_SLUGS = [provider.lower() for provider in PROVIDER_VALUES]


def _not_found_problem(error: NotFound) -> Response:
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


def _scope_problem(error: CalendarAccessNotGranted) -> Response:
    return problem_response(
        400, str(error), kind="calendar-access-not-granted", title="Calendar access not granted"
    )


def _state_problem(error: AuthorizationStateError) -> Response:
    return problem_response(400, str(error), kind="invalid-oauth-state", title="Invalid state")


def _denied_problem(error: AuthorizationDenied) -> Response:
    detail = (
        "The user declined access at the provider."
        if error.error == "access_denied"
        else f"The provider returned the error {error.error!r}."
    )
    if error.description:
        detail += f" ({error.description})"
    return problem_response(400, detail, kind="oauth-denied", title="Authorization denied")


def _provider_problem(error: ProviderError) -> Response:
    if isinstance(error, ProviderGrantError):
        return problem_response(400, error.message, kind="invalid-grant", title="Invalid grant")
    if isinstance(error, ProviderNotConfigured):
        return problem_response(
            503, error.message, kind="provider-not-configured", title="Provider not configured"
        )
    kind = "provider-unavailable" if isinstance(error, ProviderUnavailable) else "provider-error"
    return problem_response(502, error.message, kind=kind, title="Provider error")


def _not_connected_problem(error: NotConnected) -> Response:
    return problem_response(404, str(error), kind="not-connected", title="Not connected")


def _running_problem(error: SyncAlreadyRunning) -> Response:
    return problem_response(
        409,
        "A sync of this connection is already running; try again when it has finished.",
        kind="sync-running",
        title="Sync already running",
    )


def init_app(app: Flask) -> None:
    """Register the blueprints and the problems for domain errors."""
    app.url_map.converters["provider"] = ProviderConverter
    api.register_converter(ProviderConverter, provider_param_schema)
    api.register_blueprint(connections_blp)
    api.register_blueprint(events_blp)
    app.register_error_handler(AuthorizationStateError, _state_problem)
    app.register_error_handler(AuthorizationDenied, _denied_problem)
    app.register_error_handler(ProviderError, _provider_problem)
    app.register_error_handler(NotConnected, _not_connected_problem)
    app.register_error_handler(SyncAlreadyRunning, _running_problem)
    app.register_error_handler(CalendarAccessNotGranted, _scope_problem)
    app.register_error_handler(NotFound, _not_found_problem)
