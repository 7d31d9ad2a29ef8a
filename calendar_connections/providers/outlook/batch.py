"""Graph JSON batching: up to 20 calls in one ``POST {graph}/$batch``.

``{"requests": [{id, method, url, headers, body}]}`` with URLs relative to the version root;
the answer ``{"responses": [{id, status, headers, body}]}`` may come in any order, so each is
matched to its call by id. Up to four batches go at once: Outlook throttles a mailbox beyond
four requests in flight (429 ``ApplicationThrottled``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..batch import CallAnswer

MAX_REQUESTS = 20  # Graph's limit per batch
MAX_IN_FLIGHT = 4  # Outlook's limit of concurrent requests per mailbox


@dataclass(frozen=True)
class GraphCall:
    """One call of a batch: method, URL relative to the version root, headers, JSON body."""

    method: str
    url: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def batch_body(calls: list[tuple[int, GraphCall]]) -> dict[str, Any]:
    """The JSON body of a batch request; each call's id is its index."""
    requests = []
    for index, call in calls:
        item: dict[str, Any] = {"id": str(index), "method": call.method, "url": call.url}
        headers = dict(call.headers)
        if call.body is not None:
            item["body"] = call.body
            headers["Content-Type"] = "application/json"
        if headers:
            item["headers"] = headers
        requests.append(item)
    return {"requests": requests}


def read_answers(body: Any) -> dict[int, CallAnswer]:
    """Each call's answer by its index (ids Graph did not send back are left out)."""
    responses = body.get("responses") if isinstance(body, dict) else None
    if not isinstance(responses, list):
        raise ValueError("the batch answer has no responses")
    answers: dict[int, CallAnswer] = {}
    for item in responses:
        ident = str(item.get("id", "")) if isinstance(item, dict) else ""
        if not ident.isdigit():
            continue
        headers = item.get("headers") or {}
        answers[int(ident)] = CallAnswer(
            int(item.get("status") or 502),
            {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
            item.get("body"),
        )
    return answers
