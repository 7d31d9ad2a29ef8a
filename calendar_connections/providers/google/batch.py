"""Google's batch endpoint: up to 50 Calendar calls in one ``multipart/mixed`` request.

Each part is ``application/http`` holding one call (request line with a path-only URL, headers,
JSON body) and a ``Content-ID``; the answer has one ``application/http`` part per call, with
``Content-ID: <response-ID>``, holding that call's status line, headers and body. The stdlib
``email`` package writes and parses the MIME, as Google's own Python client does.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Any

from ..batch import CallAnswer

MAX_CALLS = 50  # Google allows 1000; it advises small batches, and 50 keeps each answer small
_PREFIX = "item"


@dataclass(frozen=True)
class Call:
    """One call of a batch: its method, path-only URL (with query), headers and JSON body."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def encode_batch(calls: list[tuple[int, Call]]) -> tuple[bytes, str]:
    """The body and Content-Type of a batch request; each part's Content-ID is its index."""
    batch = EmailMessage(policy=policy.HTTP)
    batch["Content-Type"] = "multipart/mixed"
    # A token of our own: the email package's default boundary holds "=", which a bare
    # (unquoted) boundary parameter cannot carry.
    batch.set_boundary(f"batch_{secrets.token_hex(16)}")
    for index, call in calls:
        part = EmailMessage(policy=policy.HTTP)
        part["Content-Type"] = "application/http"
        part["Content-ID"] = f"<{_PREFIX}{index}>"
        headers = dict(call.headers)
        payload = ""
        if call.body is not None:
            # ASCII JSON: the part travels as 7-bit text, whatever the event's language.
            payload = json.dumps(call.body, ensure_ascii=True)
            headers["Content-Type"] = "application/json"
        lines = [f"{call.method} {call.path} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        part.set_payload("\r\n".join(lines) + "\r\n\r\n" + payload)
        batch.attach(part)
    # The message's own headers are the HTTP request's: send only what follows them.
    _, _, body = batch.as_bytes().partition(b"\r\n\r\n")
    return body, f"multipart/mixed; boundary={batch.get_boundary()}"


def decode_answers(content_type: str, body: bytes) -> dict[int, CallAnswer]:
    """Each call's answer by the index its part was sent with (parts without a readable
    Content-ID are matched by their position)."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ValueError("the batch answer is not multipart")
    answers: dict[int, CallAnswer] = {}
    for position, part in enumerate(message.iter_parts()):
        index = _index(part.get("Content-ID"))
        answers[position if index is None else index] = _call_answer(part)
    return answers


def _index(content_id: object) -> int | None:
    text = str(content_id or "").strip().strip("<>")
    number = text.removeprefix("response-").removeprefix(_PREFIX)
    return int(number) if number.isdigit() and text != number else None


def _call_answer(part: Message) -> CallAnswer:
    raw = part.get_payload(decode=True)
    http = raw if isinstance(raw, bytes) else b""
    line, _, rest = http.lstrip(b"\r\n").partition(b"\n")
    words = line.decode("latin-1").split(" ", 2)
    status = int(words[1]) if len(words) > 1 and words[1].isdigit() else 502
    inner = BytesParser(policy=policy.HTTP).parsebytes(rest)
    data = inner.get_payload(decode=True)
    text = data if isinstance(data, bytes) else b""
    try:
        decoded = json.loads(text) if text.strip() else None
    except ValueError:
        decoded = None
    return CallAnswer(status, {k: str(v) for k, v in inner.items()}, decoded)
