"""Queued faults (status, headers, body, delay) and the provider request log."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, g, request

from .batch import BATCHED
from .errors import GOOGLE_JSON, GRAPH_JSON, graph_error_body
from .store import LogEntry, SandboxStore, current_store

CONTROL_PREFIX = "/sandbox"
AUTHORIZE_PATHS = ("/o/oauth2/v2/auth", "/oauth2/v2.0/authorize")


@dataclass
class Fault:
    """A queued fault: the next ``times`` matching requests get this answer."""

    method: str | None
    path: str | None
    status: int | None
    headers: dict[str, str]
    body: Any
    delay: float
    times: int
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def matches(self, method: str, path: str) -> bool:
        """Whether a request with ``method`` and ``path`` gets this fault."""
        return (self.method is None or self.method.upper() == method.upper()) and (
            self.path is None or self.path in path
        )

    def as_json(self) -> dict[str, Any]:
        """This fault as JSON."""
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "headers": self.headers,
            "body": self.body,
            "delay": self.delay,
            "times": self.times,
        }


def parse_fault(data: Any) -> Fault:
    """A fault from its JSON description (``ValueError`` when malformed)."""
    if not isinstance(data, dict):
        raise ValueError("a fault is a JSON object")
    status = data.get("status")
    if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
        raise ValueError("status must be an HTTP status code or null")
    headers = data.get("headers") or {}
    if not isinstance(headers, dict):
        raise ValueError("headers must be an object")
    delay = float(data.get("delay") or 0.0)
    times = int(data.get("times", 1))
    if delay < 0 or times < 1:
        raise ValueError("delay must be >= 0 and times >= 1")
    if status is None and delay == 0:
        raise ValueError("a fault needs a status, a delay, or both")
    method = data.get("method")
    path = data.get("path")
    return Fault(
        method=str(method) if method else None,
        path=str(path) if path else None,
        status=status,
        headers={str(k): str(v) for k, v in headers.items()},
        body=data.get("body"),
        delay=delay,
        times=times,
    )


def take_fault(store: SandboxStore, method: str, path: str) -> Fault | None:
    """The first queued fault matching the request, counted down (dropped when used up)."""
    with store.lock:
        for fault in store.faults:
            if fault.matches(method, path):
                fault.times -= 1
                if fault.times <= 0:
                    store.faults.remove(fault)
                return fault
    return None


def default_body(path: str, status: int) -> tuple[Any, str]:
    """The provider-shaped body (and content type) of a fault that gave none."""
    if path.startswith("/graph/"):
        codes = {429: "TooManyRequests", 503: "ServiceNotAvailable", 504: "GatewayTimeout"}
        code = codes.get(status, "generalException" if status >= 500 else "BadRequest")
        return graph_error_body(code, f"Sandbox fault: HTTP {status}."), GRAPH_JSON
    if path.endswith("/token") or path.endswith("/revoke"):
        error = "temporarily_unavailable" if status in (429, 503) else "server_error"
        return {"error": error, "error_description": f"Sandbox fault: HTTP {status}."}, GOOGLE_JSON
    reasons = {
        403: ("usageLimits", "rateLimitExceeded", "Rate Limit Exceeded"),
        429: ("usageLimits", "rateLimitExceeded", "Rate Limit Exceeded"),
        503: ("global", "backendError", "Backend Error"),
    }
    domain, reason, message = reasons.get(status, ("global", "backendError", "Backend Error"))
    detail = {
        "code": status,
        "message": message,
        "errors": [{"domain": domain, "reason": reason, "message": message}],
    }
    return {"error": detail}, GOOGLE_JSON


def fault_response(fault: Fault, path: str) -> Response:
    """The answer a fault with a status gives."""
    assert fault.status is not None
    body = fault.body
    if body is None:
        body, content_type = default_body(path, fault.status)
    else:
        content_type = GRAPH_JSON if path.startswith("/graph/") else GOOGLE_JSON
    text = body if isinstance(body, str) else json.dumps(body)
    response = Response(text, status=fault.status, content_type=content_type)
    for name, value in fault.headers.items():
        response.headers[name] = value
    return response


def _before() -> Response | None:
    if request.path.startswith(CONTROL_PREFIX):
        return None
    fault = take_fault(current_store(), request.method, request.path)
    if fault is None:
        return None
    g.sandbox_fault = True
    if fault.delay:
        time.sleep(fault.delay)
    if fault.status == 302 and request.path.endswith(AUTHORIZE_PATHS):
        # On an authorize endpoint a 302 fault means "the user refused": the view redirects.
        error = fault.body.get("error") if isinstance(fault.body, dict) else None
        g.sandbox_authorize_error = error or "access_denied"
        return None
    if fault.status is None:
        return None
    return fault_response(fault, request.path)


def _after(response: Response) -> Response:
    if not request.path.startswith(CONTROL_PREFIX):
        entry = LogEntry(
            method=request.method,
            path=request.path,
            query=request.query_string.decode("latin-1"),
            params=request.args.to_dict(flat=False),
            status=response.status_code,
            fault=bool(g.get("sandbox_fault", False)),
            batched=bool(request.environ.get(BATCHED, False)),
        )
        current_store().record(entry)
    return response


def install(app: Flask) -> None:
    """Apply queued faults before each provider request and log each answer."""
    app.before_request(_before)
    app.after_request(_after)
