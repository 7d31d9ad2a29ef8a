"""Batch bodies as the providers take them, and their answers read back.

Google's batch is ``multipart/mixed`` with one ``application/http`` part per call; the stdlib
``email`` package writes and parses it. Graph's is JSON and needs no help.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Any


@dataclass(frozen=True)
class Call:
    """One call of a Google batch."""

    method: str
    path: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_id: str | None = None


@dataclass(frozen=True)
class PartAnswer:
    """One part of a Google batch answer: its Content-ID and the HTTP response inside."""

    content_id: str | None
    status: int
    reason: str
    headers: dict[str, str]
    body: Any


def google_batch(calls: list[Call]) -> tuple[bytes, str]:
    """The body and Content-Type of a Google batch request making ``calls``."""
    batch = EmailMessage(policy=policy.HTTP)
    batch["Content-Type"] = "multipart/mixed"
    batch.set_boundary("batch_test_boundary")
    for index, call in enumerate(calls, start=1):
        part = EmailMessage(policy=policy.HTTP)
        part["Content-Type"] = "application/http"
        content_id = call.content_id if call.content_id is not None else f"item{index}"
        if content_id:
            part["Content-ID"] = f"<{content_id}>"
        headers = dict(call.headers)
        payload = b""
        if call.body is not None:
            payload = json.dumps(call.body).encode()
            headers.setdefault("Content-Type", "application/json")
        lines = [f"{call.method} {call.path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
        part.set_payload("\r\n".join(lines) + "\r\n\r\n" + payload.decode())
        batch.attach(part)
    _, _, body = batch.as_bytes().partition(b"\r\n\r\n")
    return body, f"multipart/mixed; boundary={batch.get_boundary()}"


def _message(content_type: str, body: bytes) -> Message:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    return BytesParser(policy=policy.HTTP).parsebytes(head + body)


def google_answers(content_type: str, body: bytes) -> list[PartAnswer]:
    """The parts of a Google batch answer, in order."""
    message = _message(content_type, body)
    assert message.get_content_type() == "multipart/mixed"
    answers = []
    for part in message.get_payload():
        assert isinstance(part, Message)
        assert part.get_content_type() == "application/http"
        raw = part.get_payload(decode=True)
        assert isinstance(raw, bytes)
        line, _, rest = raw.partition(b"\r\n")
        version, status, reason = line.decode().split(" ", 2)
        assert version == "HTTP/1.1"
        inner = BytesParser(policy=policy.HTTP).parsebytes(rest)
        data = inner.get_payload(decode=True)
        assert isinstance(data, bytes)
        content_id = part.get("Content-ID")
        answers.append(
            PartAnswer(
                content_id=str(content_id) if content_id else None,
                status=int(status),
                reason=reason,
                headers={k: str(v) for k, v in inner.items()},
                body=json.loads(data) if data else None,
            )
        )
    return answers


def graph_request(
    ident: str, method: str, url: str, body: Any = None, **extra: Any
) -> dict[str, Any]:
    """One request of a Graph JSON batch (a body gets its Content-Type header)."""
    item: dict[str, Any] = {"id": ident, "method": method, "url": url, **extra}
    if body is not None:
        item["body"] = body
        item.setdefault("headers", {}).setdefault("Content-Type", "application/json")
    return item


@dataclass(frozen=True)
class SentCall:
    """One provider call the service made, alone or inside a batch."""

    method: str
    url: str
    body: Any
    batched: bool


def sent_calls(calls: Any) -> list[SentCall]:
    """The provider calls among ``calls`` (a ``responses`` call list), batches unpacked into
    the calls they carried (path-only URLs for Google's, version-relative for Graph's)."""
    found: list[SentCall] = []
    for call in calls:
        request = call.request
        url, method = str(request.url), str(request.method)
        raw = request.body
        data = raw if isinstance(raw, bytes) else (raw or "").encode()
        if url.endswith("/$batch"):
            for item in json.loads(data)["requests"]:
                found.append(SentCall(item["method"], item["url"], item.get("body"), True))
        elif "/batch/" in url:
            found += google_calls(request.headers["Content-Type"], data)
        else:
            body = json.loads(data) if data and data.lstrip()[:1] in (b"{", b"[") else None
            found.append(SentCall(method, url, body, False))
    return found


def google_calls(content_type: str, data: bytes) -> list[SentCall]:
    """The calls a Google batch request body carries (path-only URLs)."""
    found = []
    for part in _message(content_type, data).iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        line, _, rest = payload.partition(b"\r\n")
        verb, path, _ = line.decode().split(" ")
        inner = BytesParser(policy=policy.HTTP).parsebytes(rest)
        text = inner.get_payload(decode=True)
        body = json.loads(text) if isinstance(text, bytes) and text.strip() else None
        found.append(SentCall(verb, path, body, True))
    return found
