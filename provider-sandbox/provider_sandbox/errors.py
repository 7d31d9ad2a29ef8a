"""Provider-shaped error answers: Google API, Graph, and both OAuth token endpoints."""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Response

from .timezones import now

GOOGLE_JSON = "application/json; charset=UTF-8"
GRAPH_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)


class SandboxError(Exception):
    """An error answer ready to send: raised anywhere, returned by the app's error handler."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def json_response(
    body: Any,
    status: int = 200,
    *,
    content_type: str = GOOGLE_JSON,
    headers: dict[str, str] | None = None,
) -> Response:
    """A JSON response with the given status, content type and headers."""
    response = Response(json.dumps(body), status=status, content_type=content_type)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def google_error(
    status: int,
    reason: str,
    message: str,
    *,
    domain: str = "global",
    location: str | None = None,
    location_type: str | None = None,
    top_message: str | None = None,
    grpc_status: str | None = None,
    headers: dict[str, str] | None = None,
) -> SandboxError:
    """A Google API error: ``{"error": {"code", "message", "errors": [...]}}``."""
    detail: dict[str, str] = {"domain": domain, "reason": reason, "message": message}
    if location_type:
        detail["locationType"] = location_type
    if location:
        detail["location"] = location
    error: dict[str, Any] = {
        "code": status,
        "message": top_message or message,
        "errors": [detail],
    }
    if grpc_status:
        error["status"] = grpc_status
    return SandboxError(json_response({"error": error}, status, headers=headers))


def google_auth_error() -> SandboxError:
    """Google's 401 for a missing, unknown or expired access token."""
    return google_error(
        401,
        "authError",
        "Invalid Credentials",
        location="Authorization",
        location_type="header",
        top_message=(
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential. "
            "See https://developers.google.com/identity/sign-in/web/devconsole-project."
        ),
        grpc_status="UNAUTHENTICATED",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )


def graph_error_body(code: str, message: str) -> dict[str, Any]:
    """Graph's error body with its ``innerError`` block."""
    request_id = str(uuid.uuid4())
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": now().strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": request_id,
            },
        }
    }


def graph_error(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None
) -> SandboxError:
    """A Graph error: ``{"error": {"code", "message", "innerError"}}``."""
    body = graph_error_body(code, message)
    request_id = body["error"]["innerError"]["request-id"]
    merged = {"request-id": request_id, "client-request-id": request_id, **(headers or {})}
    return SandboxError(json_response(body, status, content_type=GRAPH_JSON, headers=merged))


def graph_not_found() -> SandboxError:
    """Graph's 404 for an unknown item id."""
    return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def google_oauth_error(status: int, error: str, description: str) -> SandboxError:
    """Google's token-endpoint error: ``{"error", "error_description"}``."""
    body = {"error": error, "error_description": description}
    return SandboxError(json_response(body, status, content_type="application/json; charset=utf-8"))


def microsoft_oauth_error(status: int, error: str, code: int, text: str) -> SandboxError:
    """The identity platform's token error with ``AADSTS`` code, trace and correlation ids."""
    stamp = now()
    trace_id = str(uuid.uuid4())
    correlation_id = str(uuid.uuid4())
    body = {
        "error": error,
        "error_description": (
            f"AADSTS{code}: {text} Trace ID: {trace_id} Correlation ID: {correlation_id} "
            f"Timestamp: {stamp:%Y-%m-%d %H:%M:%S}Z"
        ),
        "error_codes": [code],
        "timestamp": f"{stamp:%Y-%m-%d %H:%M:%S}Z",
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    return SandboxError(json_response(body, status, content_type="application/json; charset=utf-8"))
