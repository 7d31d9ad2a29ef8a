"""Graph JSON batching: ``POST /$batch`` with ``{"requests": [...]}``, at most 20 of them.

Each request (``id``, ``method``, a ``url`` relative to the version root, ``headers``, ``body``,
``dependsOn``) is dispatched as if sent alone (auth, faults and the request log apply per
request) and answered in ``{"responses": [{"id", "status", "headers", "body"}]}``. Requests run
in the order given; one whose dependency failed gets 424 without being run.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request

from .batch import dispatch, unlocked
from .errors import GRAPH_JSON, graph_error, graph_error_body, json_response

bp = Blueprint("sandbox_graph_batch", __name__, url_prefix="/graph/v1.0")

MAX_REQUESTS = 20
GRAPH_ROOT = "/graph/v1.0"
# Response headers a sub-response leaves out: they describe the transport, not the result.
_DROPPED_HEADERS = ("content-length", "request-id", "client-request-id")


def _invalid(message: str) -> Exception:
    return graph_error(400, "BadRequest", message)


def _requests() -> list[dict[str, Any]]:
    data = request.get_json(silent=True)
    items = data.get("requests") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise _invalid("Invalid batch payload format.")
    if len(items) > MAX_REQUESTS:
        raise _invalid(f"The batch request exceeds the maximum of {MAX_REQUESTS} requests.")
    seen: set[str] = set()
    for item in items:
        ident, method, url = item.get("id"), item.get("method"), item.get("url")
        if not all(isinstance(value, str) and value for value in (ident, method, url)):
            raise _invalid("Each batch request needs a string id, method and url.")
        key = str(ident).lower()  # ids are compared case-insensitively
        if key in seen:
            raise _invalid(f"Batch request ids must be unique: '{ident}' is repeated.")
        seen.add(key)
        if "body" in item and not _content_type(item):
            raise _invalid("A batch request with a body needs a Content-Type header.")
        depends = item.get("dependsOn") or []
        if not isinstance(depends, list) or any(
            str(d).lower() not in seen - {key} for d in depends
        ):
            raise _invalid("dependsOn must name requests placed earlier in the batch.")
    return items


def _content_type(item: dict[str, Any]) -> str | None:
    headers = item.get("headers") or {}
    if not isinstance(headers, dict):
        raise _invalid("Batch request headers must be an object.")
    return next((str(v) for k, v in headers.items() if k.lower() == "content-type"), None)


def _target(url: str) -> str:
    if url.lower().startswith(("http://", "https://")):
        raise _invalid("Batch request urls must be relative, e.g. /me/events.")
    return GRAPH_ROOT + "/" + url.lstrip("/")


def _encoded(item: dict[str, Any]) -> bytes:
    body = item.get("body")
    if body is None:
        return b""
    return (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")


def _sub_response(ident: str, response: Response) -> dict[str, Any]:
    headers = {
        name: value
        for name, value in response.headers.items()
        if name.lower() not in _DROPPED_HEADERS
    }
    result: dict[str, Any] = {"id": ident, "status": response.status_code, "headers": headers}
    data = response.get_data()
    if data:
        is_json = (response.mimetype or "").endswith("json")
        result["body"] = json.loads(data) if is_json else data.decode("utf-8", "replace")
    return result


def _failed_dependency(ident: str) -> dict[str, Any]:
    body = graph_error_body("FailedDependency", "The dependent request failed.")
    return {"id": ident, "status": 424, "headers": {"Content-Type": GRAPH_JSON}, "body": body}


@bp.post("/$batch")
@unlocked
def json_batch() -> Response:
    """Run each request in order; answer 200 with one sub-response per request."""
    items = _requests()
    statuses: dict[str, int] = {}
    responses = []
    for item in items:
        ident = str(item["id"])
        if any(statuses.get(str(dep).lower(), 200) >= 400 for dep in item.get("dependsOn") or []):
            answer = _failed_dependency(ident)
        else:
            headers = {str(k): str(v) for k, v in (item.get("headers") or {}).items()}
            response = dispatch(
                str(item["method"]), _target(str(item["url"])), headers, _encoded(item)
            )
            answer = _sub_response(ident, response)
        statuses[ident.lower()] = int(answer["status"])
        responses.append(answer)
    return json_response({"responses": responses}, content_type=GRAPH_JSON)
