"""Provider batch endpoints over ``responses`` mocks: each call inside a batch is sent on to the
mocks registered for it, as the provider runs it, so tests mock (and count) calls per event.

A test registers ``PATCH .../events/{id}`` and the like as before; the batch request itself is
in ``http.calls`` too, before the calls it relayed.
"""

from __future__ import annotations

import json
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from http import HTTPStatus
from typing import Any

import requests
import responses
from requests import PreparedRequest

GOOGLE_ORIGIN = "https://www.googleapis.com"
GOOGLE_BATCH_URL = f"{GOOGLE_ORIGIN}/batch/calendar/v3"
GRAPH = "https://graph.microsoft.com/v1.0"
GRAPH_BATCH_URL = f"{GRAPH}/$batch"


def _outer_auth(request: PreparedRequest) -> dict[str, str]:
    token = request.headers.get("Authorization")
    return {"Authorization": str(token)} if token else {}


def _google_call(part: Message, auth: dict[str, str]) -> requests.Response:
    raw = part.get_payload(decode=True)
    assert isinstance(raw, bytes)
    line, _, rest = raw.partition(b"\r\n")
    method, path, _version = line.decode().split(" ")
    inner = BytesParser(policy=policy.HTTP).parsebytes(rest)
    body = inner.get_payload(decode=True)
    headers = auth | {k: str(v) for k, v in inner.items()}
    data = body if isinstance(body, bytes) and body else None
    return requests.request(method, GOOGLE_ORIGIN + path, headers=headers, data=data, timeout=5)


def _google_part(response: requests.Response, content_id: str | None) -> EmailMessage:
    part = EmailMessage(policy=policy.HTTP)
    part["Content-Type"] = "application/http"
    if content_id:
        part["Content-ID"] = f"<response-{content_id.strip('<>')}>"
    status = response.status_code
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    lines += [f"{k}: {v}" for k, v in response.headers.items() if k.lower() != "content-length"]
    text = response.content.decode()
    part.set_payload("\r\n".join(lines) + "\r\n\r\n" + text)
    return part


def _google_batch(request: PreparedRequest) -> tuple[int, dict[str, str], bytes]:
    body = request.body if isinstance(request.body, bytes) else str(request.body).encode()
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    answer = EmailMessage(policy=policy.HTTP)
    answer["Content-Type"] = "multipart/mixed"
    answer.set_boundary("batch_relay")
    for part in message.iter_parts():
        answer.attach(_google_part(_google_call(part, _outer_auth(request)), part["Content-ID"]))
    _, _, payload = answer.as_bytes().partition(b"\r\n\r\n")
    return 200, {"Content-Type": "multipart/mixed; boundary=batch_relay"}, payload


def _graph_batch(request: PreparedRequest) -> tuple[int, dict[str, str], str]:
    batch = json.loads(request.body or b"{}")
    responses_: list[dict[str, Any]] = []
    for item in batch["requests"]:
        headers = _outer_auth(request) | dict(item.get("headers") or {})
        body = item.get("body")
        answer = requests.request(
            item["method"],
            GRAPH + item["url"],
            headers=headers,
            data=json.dumps(body) if body is not None else None,
            timeout=5,
        )
        result: dict[str, Any] = {
            "id": item["id"],
            "status": answer.status_code,
            "headers": {k: v for k, v in answer.headers.items() if k.lower() != "content-length"},
        }
        if answer.content:
            result["body"] = answer.json()
        responses_.append(result)
    # Graph answers in any order: so does the relay.
    answers = {"responses": list(reversed(responses_))}
    return 200, {"Content-Type": "application/json"}, json.dumps(answers)


def relay_batches(mock: responses.RequestsMock) -> None:
    """Serve both providers' batch endpoints on ``mock`` by relaying each call."""
    mock.add_callback("POST", GOOGLE_BATCH_URL, callback=_google_batch)
    mock.add_callback("POST", GRAPH_BATCH_URL, callback=_graph_batch)


def batch_requests(mock: responses.RequestsMock, url: str) -> int:
    """How many batch requests went to ``url``."""
    return sum(1 for call in mock.calls if call.request.url == url)
