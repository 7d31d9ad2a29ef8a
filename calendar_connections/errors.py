"""Problem details (RFC 9457): the one error body of every layer of the service."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from flask import Flask, Response, current_app, g, has_request_context, json, request
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:problem-type:calendar-connections:"
# Seconds a client waits before retrying when the database does not answer.
DATABASE_RETRY_AFTER = 5
# Database errors that mean "not reachable now" (network, restart, failover, pool exhausted).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)


class ProblemSchema(ma.Schema):
    """An error: RFC 9457 problem details."""

    type = ma.fields.String(
        required=True,
        metadata={"description": "URI naming the kind of problem", "example": "about:blank"},
    )
    title = ma.fields.String(required=True, metadata={"description": "Short summary"})
    status = ma.fields.Integer(required=True, metadata={"description": "HTTP status code"})
    detail = ma.fields.String(
        required=True, metadata={"description": "What went wrong, for a person to read"}
    )
    instance = ma.fields.String(
        required=True, metadata={"description": "Path of the request that failed"}
    )
    time = ma.fields.DateTime(
        required=True, metadata={"description": "When it happened (UTC, ISO 8601)"}
    )
    errors = ma.fields.Dict(
        metadata={"description": "Per-field validation messages (422 only)"},
    )
    allowedValues = ma.fields.List(
        ma.fields.String(), metadata={"description": "The values a path segment may take"}
    )
    requestId = ma.fields.String(
        metadata={"description": "The request's X-Request-ID, to quote when reporting it"}
    )


class Problem(Exception):
    """An error the service answers with a problem-details body."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}
        self.extra = extra or {}


def utc_now_iso() -> str:
    """The current time as ISO 8601 with a `Z` offset, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def problem_response(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """Build an ``application/problem+json`` response."""
    body: dict[str, Any] = {
        "type": f"{PROBLEM_TYPE_PREFIX}{kind}" if kind else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.path if request else "",
        "time": utc_now_iso(),
    }
    if has_request_context() and "request_id" in g:
        body["requestId"] = g.request_id
    body.update(extra or {})
    response = current_app.response_class(
        json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _describe_validation(messages: Any) -> tuple[str, dict[str, Any]]:
    """Turn webargs' ``{location: {field: [msg]}}`` into one sentence and a flat map."""
    flat: dict[str, Any] = {}
    if isinstance(messages, dict):
        for location, fields in messages.items():
            if isinstance(fields, dict):
                for field, field_messages in fields.items():
                    key = field if location == "json" else f"{location}.{field}"
                    flat[key] = field_messages
            else:
                flat[str(location)] = fields
    parts = []
    for key, value in flat.items():
        text = "; ".join(_flatten(value))
        parts.append(f"{key}: {text}")
    detail = "Invalid request. " + " | ".join(parts) if parts else "Invalid request."
    return detail, flat


def _flatten(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in _flatten(item)]
    if isinstance(value, dict):
        return [f"{k}: {t}" for k, v in value.items() for t in _flatten(v)]
    return [str(value)]


def handle_http_exception(error: HTTPException) -> Response:
    """Werkzeug and flask-smorest HTTP errors (404, 405, 422, ...) as problems."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    headers: dict[str, str] = dict(data.get("headers") or {})
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    messages = data.get("errors") or data.get("messages")
    if status == 422 and messages:
        detail, flat = _describe_validation(messages)
        return problem_response(
            status, detail, kind="validation", headers=headers, extra={"errors": flat}
        )
    if status == 404:
        detail = f"No resource at {request.path}."
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.path}."
    elif isinstance(error, RequestEntityTooLarge):
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        detail = f"The body is larger than {limit} bytes (MAX_CONTENT_LENGTH)."
        return problem_response(status, detail, kind="body-too-large", headers=headers)
    elif status >= 500:
        detail = "The service failed to handle the request."
    else:
        detail = data.get("message") or error.description or HTTPStatus(status).phrase
    return problem_response(status, detail, headers=headers)


def handle_problem(error: Problem) -> Response:
    """Our own errors."""
    return problem_response(
        error.status,
        error.detail,
        kind=error.kind,
        title=error.title,
        headers=error.headers,
        extra=error.extra,
    )


def handle_database_unavailable(error: Exception) -> Response:
    """The database did not answer: a 503 the client may retry; this request stored nothing."""
    from .extensions import db  # the extensions import this module

    try:
        db.session.rollback()
    except Exception:  # the connection is gone: dropping the session is all that is left
        pass
    cause = getattr(error, "orig", None) or error
    # The class name only: the message of a database error may quote calendar data.
    log.warning(
        "database unavailable on %s %s: %s", request.method, request.path, type(cause).__name__
    )
    return problem_response(
        503,
        "The database is not reachable; nothing was stored. Try again shortly.",
        kind="database-unavailable",
        title="Database unavailable",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


def handle_unexpected(error: Exception) -> Response:
    """Anything else: log it whole, tell the client nothing of the internals."""
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return handle_database_unavailable(error)
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem_response(500, "The service failed to handle the request.", kind="internal")


def init_app(app: Flask) -> None:
    """Register the problem-details handlers for every error."""
    app.register_error_handler(Problem, handle_problem)
    app.register_error_handler(HTTPException, handle_http_exception)
    for database_error in DATABASE_UNAVAILABLE:
        app.register_error_handler(database_error, handle_database_unavailable)
    # Registered for Exception (not for 500), so it also answers when TESTING propagates.
    app.register_error_handler(Exception, handle_unexpected)
