"""Google Calendar and Microsoft Graph listings served from memory on loopback.

Each page is built once and JSON-encoded per request, as a provider's server does: the floor
(fetching and decoding the same pages in a plain loop) is the provider's I/O, encoding and
transfer included, with no database.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

GOOGLE_PAGE = 2500
GRAPH_PAGE = 200


def _when(n: int) -> tuple[datetime, datetime]:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=n)
    return start, start + timedelta(hours=1)


def google_item(n: int) -> dict[str, Any]:
    start, end = _when(n)
    return {
        "kind": "calendar#event",
        "id": f"ev{n:08d}",
        "etag": f'"{n}"',
        "status": "confirmed",
        "summary": f"Event {n}",
        "description": "Agenda " * 8,
        "location": f"Room {n % 40}",
        "updated": "2026-11-01T10:00:00.000Z",
        "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Berlin"},
        "end": {"dateTime": end.isoformat(), "timeZone": "Europe/Berlin"},
    }


def graph_item(n: int) -> dict[str, Any]:
    start, end = _when(n)
    return {
        "id": f"AAMk{n:08d}=",
        "changeKey": f"ck{n}",
        "type": "singleInstance",
        "subject": f"Event {n}",
        "body": {"contentType": "text", "content": "Agenda " * 8},
        "location": {"displayName": f"Room {n % 40}"},
        "isAllDay": False,
        "isCancelled": False,
        "showAs": "busy",
        "lastModifiedDateTime": "2026-11-01T10:00:00Z",
        "originalStartTimeZone": "W. Europe Standard Time",
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"},
    }


@dataclass
class FakeProviders:
    """Serves ``events`` Google events and as many Graph events, in provider-sized pages."""

    events: int
    base: str = ""

    def __post_init__(self) -> None:
        self.google_pages: list[dict[str, Any]] = []
        self.graph_pages: list[dict[str, Any]] = []
        self.empty = False  # list no events (to measure a push alone)
        self.writes = 0  # provider writes answered (each call of a batch counts)
        self.requests = 0  # provider write requests answered (a batch counts once)
        self._lock = threading.Lock()

    def build(self) -> None:
        """Encode every page once."""
        google = [google_item(n) for n in range(self.events)]
        chunks = [google[i : i + GOOGLE_PAGE] for i in range(0, len(google), GOOGLE_PAGE)] or [[]]
        for number, items in enumerate(chunks):
            body: dict[str, Any] = {"kind": "calendar#events", "items": items}
            body["timeZone"] = "Europe/Berlin"
            if number + 1 < len(chunks):
                body["nextPageToken"] = f"p{number + 1}"
            else:
                body["nextSyncToken"] = "sync-1"
            self.google_pages.append(body)
        graph = [graph_item(n) for n in range(self.events)]
        chunks = [graph[i : i + GRAPH_PAGE] for i in range(0, len(graph), GRAPH_PAGE)] or [[]]
        for number, items in enumerate(chunks):
            body = {"value": items}
            if number + 1 < len(chunks):
                body["@odata.nextLink"] = f"{self.graph_base}/delta-pages/{number + 1}"
            else:
                body["@odata.deltaLink"] = f"{self.graph_base}/delta-pages/done"
            self.graph_pages.append(body)

    @property
    def google_base(self) -> str:
        return f"{self.base}/calendar/v3"

    @property
    def graph_base(self) -> str:
        return f"{self.base}/v1.0"

    def google_listing(self) -> str:
        return f"{self.google_base}/calendars/primary/events"

    def graph_listing(self) -> str:
        return f"{self.graph_base}/me/calendars/cal-1/calendarView/delta"

    @property
    def google_batch(self) -> str:
        return f"{self.base}/batch/calendar/v3"

    @property
    def graph_batch(self) -> str:
        return f"{self.graph_base}/$batch"

    def _created(self, sent: dict[str, Any], graph: bool) -> dict[str, Any]:
        with self._lock:
            self.writes += 1
            number = self.writes
        item = dict(sent)
        if graph:
            item |= {"id": f"AAMkNew{number:08d}=", "changeKey": f"new{number}"}
            item |= {"type": "singleInstance", "lastModifiedDateTime": "2026-11-02T10:00:00Z"}
        else:
            item.setdefault("id", f"new{number:08d}")
            item |= {"etag": f'"new{number}"', "updated": "2026-11-02T10:00:00.000Z"}
        return item

    def _counted(self) -> None:
        with self._lock:
            self.requests += 1

    def _google_batch_answer(self, request: Request) -> Response:
        """Each part's call answered as an insert (the push of new events is all inserts)."""
        self._counted()
        head = f"Content-Type: {request.content_type}\r\n\r\n".encode()
        message = BytesParser(policy=policy.HTTP).parsebytes(head + request.get_data())
        answer = EmailMessage(policy=policy.HTTP)
        answer["Content-Type"] = "multipart/mixed"
        answer.set_boundary(f"batch_{secrets.token_hex(8)}")
        for part in message.iter_parts():
            raw = part.get_payload(decode=True)
            text = raw if isinstance(raw, bytes) else b""
            body = BytesParser(policy=policy.HTTP).parsebytes(text.partition(b"\n")[2])
            payload = body.get_payload(decode=True)
            sent = json.loads(payload) if isinstance(payload, bytes) and payload else {}
            created = json.dumps(self._created(sent, graph=False))
            reply = EmailMessage(policy=policy.HTTP)
            reply["Content-Type"] = "application/http"
            reply["Content-ID"] = f"<response-{str(part['Content-ID']).strip('<>')}>"
            http = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{created}"
            reply.set_payload(http)
            answer.attach(reply)
        _, _, data = answer.as_bytes().partition(b"\r\n\r\n")
        content_type = f"multipart/mixed; boundary={answer.get_boundary()}"
        return Response(data, 200, content_type=content_type)

    def _graph_batch_answer(self, request: Request) -> Response:
        self._counted()
        answers = [
            {
                "id": call["id"],
                "status": 201,
                "headers": {"Content-Type": "application/json"},
                "body": self._created(call.get("body") or {}, graph=True),
            }
            for call in request.get_json()["requests"]
        ]
        body = json.dumps({"responses": answers[::-1]})  # Graph answers in any order
        return Response(body, 200, content_type="application/json")

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        path = request.path
        if request.method == "POST" and path.endswith("/batch/calendar/v3"):
            return self._google_batch_answer(request)(environ, start_response)
        if request.method == "POST" and path.endswith("/$batch"):
            return self._graph_batch_answer(request)(environ, start_response)
        if request.method == "POST" and path.endswith("/events"):
            self._counted()
            graph = "/v1.0/" in request.path
            body = json.dumps(self._created(request.get_json(), graph)).encode()
        elif self.empty and request.method == "GET":
            key = "nextSyncToken" if "/calendar/v3/" in path else "@odata.deltaLink"
            done = f"{self.graph_base}/delta-pages/done"
            items = "items" if key == "nextSyncToken" else "value"
            body = json.dumps({items: [], key: done}).encode()
        elif path.endswith("/calendars/primary/events") and request.method == "GET":
            if "syncToken" in request.args:
                body = json.dumps({"items": [], "nextSyncToken": "sync-2"}).encode()
            else:
                token = request.args.get("pageToken", "p0")
                body = json.dumps(self.google_pages[int(token[1:])]).encode()
        elif path.endswith("/calendarView/delta"):
            body = json.dumps(self.graph_pages[0]).encode()
        elif "/delta-pages/" in path:
            page = path.rsplit("/", 1)[1]
            if page == "done":
                body = json.dumps(
                    {"value": [], "@odata.deltaLink": f"{self.graph_base}/delta-pages/done"}
                ).encode()
            else:
                body = json.dumps(self.graph_pages[int(page)]).encode()
        else:
            body, status = b'{"error": {"code": "notFound", "message": "no such path"}}', 404
            return Response(body, status, content_type="application/json")(environ, start_response)
        return Response(body, 200, content_type="application/json")(environ, start_response)


@contextmanager
def serving(events: int) -> Iterator[FakeProviders]:
    """The fake providers, listening on a free loopback port until the block ends."""
    app = FakeProviders(events)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.base = f"http://127.0.0.1:{server.server_port}"
    app.build()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app
    finally:
        server.shutdown()
        thread.join()
