"""Google's batch endpoint: ``multipart/mixed`` in, one ``application/http`` part per call out.

Each part's body is an HTTP request (request line, headers, body) with a path-only URL. The
calls run in order, each as if sent alone (auth, faults and the request log apply per call);
the answer has one part per call, in the same order, each a full HTTP response, with
``Content-ID: <response-ID>`` for a part sent with ``Content-ID: <ID>``.
"""

from __future__ import annotations

import secrets
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from http import HTTPStatus
from urllib.parse import urlsplit

from flask import Blueprint, Response, request

from .batch import dispatch, unlocked
from .errors import google_error

bp = Blueprint("sandbox_google_batch", __name__, url_prefix="/google")

MAX_CALLS = 1000
# Where the sandbox serves Calendar v3: a part may name it or Google's own ``/calendar/v3``.
CALENDAR_ROOT = "/google"


def _bad_batch(message: str) -> Exception:
    return google_error(400, "badRequest", message)


def _parts() -> list[Message]:
    content_type = request.headers.get("Content-Type", "")
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + request.get_data())
    if not message.is_multipart() or message.get_content_type() != "multipart/mixed":
        raise _bad_batch("Batch requests must be sent as multipart/mixed with a boundary.")
    return [part for part in message.get_payload() if isinstance(part, Message)]


def _target(url: str) -> str | None:
    """The sandbox path of a part's request URL (None for a full URL, which Google refuses)."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    path = parts.path
    if request.script_root and path.startswith(request.script_root + "/"):
        path = path[len(request.script_root) :]
    if not path.startswith(CALENDAR_ROOT + "/"):
        path = CALENDAR_ROOT + path
    return path + (f"?{parts.query}" if parts.query else "")


def _call(part: Message) -> Response:
    raw = part.get_payload(decode=True)
    text = raw if isinstance(raw, bytes) else b""
    line, _, rest = text.lstrip(b"\r\n").partition(b"\n")
    words = line.decode("latin-1").split()
    if len(words) not in (2, 3) or (target := _target(words[1])) is None:
        return google_error(400, "badRequest", "Invalid request line in batch part.").response
    inner = BytesParser(policy=policy.HTTP).parsebytes(rest)
    body = inner.get_payload(decode=True)
    headers = {k: str(v) for k, v in inner.items() if k.lower() != "content-length"}
    return dispatch(words[0], target, headers, body if isinstance(body, bytes) else b"")


def _status_line(code: int) -> str:
    """``200 OK``: the reason phrase as HTTP spells it (Werkzeug's own is upper case)."""
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def _answer_part(response: Response, content_id: str | None) -> EmailMessage:
    part = EmailMessage(policy=policy.HTTP)
    part["Content-Type"] = "application/http"
    if content_id:
        part["Content-ID"] = f"<response-{content_id.strip().strip('<>')}>"
    lines = [f"HTTP/1.1 {_status_line(response.status_code)}"]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    http = "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + response.get_data()
    # Bytes kept as they are: undecodable ones travel as surrogates the generator writes back.
    part.set_payload(http.decode("ascii", "surrogateescape"))
    return part


@bp.post("/batch/calendar/v3")
@unlocked
def calendar_batch() -> Response:
    """Run each part's call in order; answer 200 with one response part per call."""
    parts = _parts()
    if len(parts) > MAX_CALLS:
        raise _bad_batch(f"Exceeded max batch size of {MAX_CALLS}.")
    answer = EmailMessage(policy=policy.HTTP)
    answer["Content-Type"] = "multipart/mixed"
    answer.set_boundary(f"batch_{secrets.token_urlsafe(18)}")
    for part in parts:
        answer.attach(_answer_part(_call(part), part.get("Content-ID")))
    boundary = answer.get_boundary()
    # The generated message's headers are the HTTP response's: send only what follows them.
    _, _, body = answer.as_bytes().partition(b"\r\n\r\n")
    return Response(body, status=200, content_type=f"multipart/mixed; boundary={boundary}")
