"""Microsoft Graph v1.0: events of the connected Outlook calendar, in our own terms."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import requests

from ...ical.timezones import to_iana, to_windows
from ..batch import (
    Answer,
    CallAnswer,
    Throttled,
    answer_for,
    batch_answers,
    encode_each,
    read_round,
    write_in_rounds,
)
from ..http import require_same_origin
from ..session import ProviderSession, error_reason, raise_for_status
from ..types import (
    KIND_EXCEPTION,
    KIND_MASTER,
    KIND_OCCURRENCE,
    KIND_SINGLE,
    EventFields,
    EventPayload,
    Page,
    RemoteEvent,
    RemoteGone,
    SyncCursorExpired,
    Write,
    WriteConflict,
    WriteResult,
    translate_items,
    wanted,
)
from .batch import MAX_IN_FLIGHT, MAX_REQUESTS, GraphCall, batch_body, read_answers
from .recurrence import graph_to_rrule, rrule_to_graph

# Our single-value extended property: the CRM event's API id on events the CRM created.
TAG_PROPERTY = "String {a16b08cb-cb99-44db-824b-896982902cc5} Name crmEventId"
EXPAND_TAG = f"singleValueExtendedProperties($filter=id eq '{TAG_PROPERTY}')"
RESYNC_CODES = {"syncstatenotfound", "resyncrequired", "syncstateinvalid"}
_KINDS = {
    "singleInstance": KIND_SINGLE,
    "seriesMaster": KIND_MASTER,
    "exception": KIND_EXCEPTION,
    "occurrence": KIND_OCCURRENCE,
}


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_graph_time(node: dict[str, Any] | None) -> datetime | None:
    """A Graph dateTimeTimeZone as a UTC instant."""
    if not node or not node.get("dateTime"):
        return None
    moment = datetime.fromisoformat(node["dateTime"])
    if moment.tzinfo is None:
        if node.get("timeZone") == "UTC":  # as asked (`Prefer`): no zone lookup per event
            return moment.replace(tzinfo=UTC)
        zone = to_iana(node.get("timeZone")) or "UTC"
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(UTC)


def _crm_tag(item: dict[str, Any]) -> str | None:
    for prop in item.get("singleValueExtendedProperties") or []:
        if str(prop.get("id", "")).lower() == TAG_PROPERTY.lower():
            return str(prop.get("value"))
    uid = item.get("transactionId")
    return str(uid) if uid else None


def event_from_graph(item: dict[str, Any]) -> RemoteEvent:
    """Translate a Graph event (times asked in UTC with `Prefer: outlook.timezone`)."""
    if "@removed" in item:
        return RemoteEvent(external_id=str(item["id"]), cancelled=True)
    kind = _KINDS.get(str(item.get("type")), KIND_SINGLE)
    zone = to_iana(item.get("originalStartTimeZone")) or to_iana(
        (item.get("start") or {}).get("timeZone")
    )
    start_at = _parse_graph_time(item.get("start"))
    end_at = _parse_graph_time(item.get("end"))
    all_day = bool(item.get("isAllDay"))
    fields = EventFields(
        title=item.get("subject") or "",
        description=((item.get("body") or {}).get("content") or None),
        location=((item.get("location") or {}).get("displayName") or None),
        all_day=all_day,
        time_zone=None if all_day else (zone or "UTC"),
        status="tentative" if item.get("showAs") == "tentative" else "confirmed",
    )
    if all_day:
        # All-day events are floating: their date is the date Graph shows, whatever the zone.
        fields.start_date = _local_date(item.get("start"))
        fields.end_date = _local_date(item.get("end"))
    else:
        fields.start_at, fields.end_at = start_at, end_at
    original: datetime | date | None = None
    if kind == KIND_OCCURRENCE:
        original = fields.start_date if all_day else start_at
    elif kind == KIND_EXCEPTION and item.get("originalStart"):
        moment = datetime.fromisoformat(item["originalStart"]).astimezone(UTC)
        original = moment.date() if all_day else moment
    if kind == KIND_MASTER and item.get("recurrence"):
        start = fields.start_date if all_day else start_at
        assert start is not None
        fields.recurrence = graph_to_rrule(item["recurrence"], start, fields.time_zone)
    return RemoteEvent(
        external_id=str(item["id"]),
        fields=fields,
        kind=kind,
        cancelled=bool(item.get("isCancelled")),
        etag=item.get("changeKey"),
        updated=(
            datetime.fromisoformat(item["lastModifiedDateTime"]).astimezone(UTC)
            if item.get("lastModifiedDateTime")
            else None
        ),
        series_external_id=item.get("seriesMasterId"),
        original_start=original,
        crm_tag=_crm_tag(item),
    )


def _local_date(node: dict[str, Any] | None) -> date | None:
    if not node or not node.get("dateTime"):
        return None
    return datetime.fromisoformat(node["dateTime"]).date()


def _graph_time(moment: datetime | date | None, zone: str | None) -> dict[str, str]:
    if isinstance(moment, datetime):
        name = zone or "UTC"
        local = moment.astimezone(ZoneInfo(name)).replace(tzinfo=None)
        return {"dateTime": local.isoformat(), "timeZone": to_windows(name) or name}
    if isinstance(moment, date):
        return {"dateTime": f"{moment.isoformat()}T00:00:00", "timeZone": "UTC"}
    raise ValueError("an event needs a start and an end")


def event_to_graph(payload: EventPayload, *, create: bool) -> dict[str, Any]:
    """The Graph event body for a CRM event: on an update, only what changed.

    Leaving the body out unless the description changed matters: writing the body of an
    online meeting replaces the join information Outlook keeps in it.
    """
    fields = payload.fields
    body: dict[str, Any] = {}
    if wanted(payload, "title"):
        body["subject"] = fields.title
    if wanted(payload, "description"):
        body["body"] = {"contentType": "text", "content": fields.description or ""}
    if wanted(payload, "location"):
        body["location"] = {"displayName": fields.location or ""}
    if wanted(payload, "time"):
        body["start"] = _graph_time(fields.start, fields.time_zone)
        body["end"] = _graph_time(fields.end, fields.time_zone)
        body["isAllDay"] = fields.all_day
    if wanted(payload, "status"):
        body["showAs"] = "tentative" if fields.status == "tentative" else "busy"
    # A series' pattern starts on its first day: it goes with a change of times too.
    if payload.series_external_id is None and wanted(payload, "recurrence", "time"):
        start = fields.start
        assert start is not None
        body["recurrence"] = (
            rrule_to_graph(fields.recurrence, start, fields.time_zone)
            if fields.recurrence
            else None
        )
    if create:
        # transactionId makes a retried create return the first event instead of a copy.
        body["transactionId"] = payload.uid
        body["singleValueExtendedProperties"] = [{"id": TAG_PROPERTY, "value": payload.tag}]
    return body


class GraphCalendarClient:
    """Reads and writes events of one Outlook calendar through Microsoft Graph."""

    # What the engine hands ``write_batch`` at once: four batch requests, sent together.
    batch_size = MAX_REQUESTS * MAX_IN_FLIGHT

    def __init__(
        self, session: ProviderSession, graph_base: str, calendar_id: str, page_size: int = 200
    ) -> None:
        self._session = session
        self._base = graph_base
        self._calendar = f"{graph_base}/me/calendars/{quote(calendar_id, safe='')}"
        self._headers = {
            "Prefer": f'odata.maxpagesize={page_size}, outlook.timezone="UTC", '
            'outlook.body-content-type="text"'
        }

    def close(self) -> None:
        """Release connections."""
        self._session.close()

    def _get(self, url: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        # Paging and delta links come from the response: follow them to Graph's host only.
        require_same_origin(url, self._base, self._session.label)
        response = self._session.request("GET", url, params=params, headers=self._headers)
        status = response.status_code
        # An expired delta link: 410, or any 4xx (400, 404...) whose code asks for a resync.
        if status == 410 or (
            400 <= status < 500 and (error_reason(response) or "").lower() in RESYNC_CODES
        ):
            raise SyncCursorExpired("Graph asked for a full resync")
        if status == 404:
            raise RemoteGone(url)
        raise_for_status(response, self._session.label, "read events")
        body: dict[str, Any] = response.json()
        return body

    def list_changes(
        self, cursor: str | None, window_start: datetime, window_end: datetime
    ) -> Iterator[Page]:
        """Delta pages of the calendar view: everything in the window, or changes since."""
        if cursor:
            url, params = cursor, None
        else:
            url = f"{self._calendar}/calendarView/delta"
            params = {
                "startDateTime": _utc_text(window_start),
                "endDateTime": _utc_text(window_end),
            }
        while True:
            body = self._get(url, params)
            items, unreadable = translate_items(body.get("value", []), event_from_graph)
            next_link = body.get("@odata.nextLink")
            if not next_link:
                yield Page(items, body.get("@odata.deltaLink"), unreadable)
                return
            yield Page(items, None, unreadable)
            url, params = next_link, None

    def get(self, external_id: str) -> RemoteEvent:
        """One event (a series master comes with its recurrence)."""
        body = self._get(f"{self._base}/me/events/{quote(external_id)}", {"$expand": EXPAND_TAG})
        return event_from_graph(body)

    def instances(self, master_id: str, start: datetime, end: datetime) -> list[RemoteEvent]:
        """Occurrences and exceptions of a series within [start, end)."""
        url: str | None = f"{self._base}/me/events/{quote(master_id)}/instances"
        params: dict[str, Any] | None = {
            "startDateTime": _utc_text(start),
            "endDateTime": _utc_text(end),
        }
        found: list[RemoteEvent] = []
        while url:
            body = self._get(url, params)
            found.extend(event_from_graph(item) for item in body.get("value", []))
            url, params = body.get("@odata.nextLink"), None
        return found

    def insert(self, payload: EventPayload) -> RemoteEvent:
        """Create (a retried create with the same transactionId returns the same event)."""
        response = self._session.request(
            "POST",
            f"{self._calendar}/events",
            json=event_to_graph(payload, create=True),
            headers=self._headers,
        )
        raise_for_status(response, self._session.label, "create an event")
        return event_from_graph(response.json())

    def update(self, external_id: str, payload: EventPayload, etag: str | None) -> RemoteEvent:
        """Patch the event (an occurrence patched becomes an exception)."""
        headers = dict(self._headers)
        if etag:
            # Only if Graph still has the version we know (its @odata.etag is W/"changeKey"):
            # otherwise a 412 lets the caller re-read and resolve instead of overwriting.
            headers["If-Match"] = f'W/"{etag}"'
        response = self._session.request(
            "PATCH",
            f"{self._base}/me/events/{quote(external_id)}",
            json=event_to_graph(payload, create=False),
            headers=headers,
        )
        if response.status_code == 404:
            raise RemoteGone(external_id)
        if response.status_code in (409, 412):
            raise WriteConflict(external_id)
        raise_for_status(response, self._session.label, "update an event")
        return event_from_graph(response.json())

    def delete(self, external_id: str) -> None:
        """Delete; an already deleted one (404) is fine."""
        response = self._session.request("DELETE", f"{self._base}/me/events/{quote(external_id)}")
        if response.status_code in (404, 410):
            return
        raise_for_status(response, self._session.label, "delete an event")

    def write_batch(self, writes: Sequence[Write]) -> list[WriteResult]:
        """Make ``writes`` through JSON batching: 20 calls per request, up to four requests
        in flight at once."""
        return write_in_rounds(writes, self._send_batches, self.batch_size, self._session.retry)

    def _call(self, write: Write) -> GraphCall:
        headers = dict(self._headers)
        if write.action == "delete":
            return GraphCall("DELETE", f"/me/events/{quote(write.external_id or '')}")
        assert write.payload is not None
        if write.action == "insert":
            calendar = self._calendar.removeprefix(self._base)
            body = event_to_graph(write.payload, create=True)
            return GraphCall("POST", f"{calendar}/events", body, headers)
        if write.etag:
            headers["If-Match"] = f'W/"{write.etag}"'
        body = event_to_graph(write.payload, create=False)
        return GraphCall("PATCH", f"/me/events/{quote(write.external_id or '')}", body, headers)

    def _send_batches(self, writes: list[Write]) -> list[Answer]:
        """One ``$batch`` request per 20 writes, sent together; each call's answer, matched by
        id, read on its own. Calls are encoded and answers read on this thread."""
        chunks = [writes[i : i + MAX_REQUESTS] for i in range(0, len(writes), MAX_REQUESTS)]
        encoded = [encode_each(chunk, lambda _, write: self._call(write)) for chunk in chunks]
        sent = self._post_batches([calls for calls, _ in encoded])
        label = self._session.label
        results: list[Answer] = []
        for chunk, (_, refused), response in zip(chunks, encoded, sent, strict=True):
            answers: dict[int, CallAnswer] = {}
            if response is not None:
                answers = batch_answers(response, label, lambda sent: read_answers(sent.json()))
            results.extend(read_round(chunk, answers, refused, self._read_answer, label))
        if any(isinstance(r, Throttled) and r.error.status == 401 for r in results):
            self._session.refresh()  # calls refused the token: refresh, then send them again
        return results

    def _post_batches(
        self, batches: list[list[tuple[int, GraphCall]]]
    ) -> list[requests.Response | None]:
        """Each batch's answer (None for one with nothing to send). Several go from a pool of
        at most four threads sharing the session, with the token made fresh beforehand: a
        refresh (after a 401) happens here, on the calling thread."""
        url = f"{self._base}/$batch"
        bodies = [batch_body(calls) if calls else None for calls in batches]
        if sum(body is not None for body in bodies) <= 1:
            return [
                None if body is None else self._session.request("POST", url, json=body)
                for body in bodies
            ]
        auth = self._session.fixed_auth()

        def post(body: dict[str, Any] | None) -> requests.Response | None:
            if body is None:
                return None
            return self._session.send_unrefreshed("POST", url, auth, json=body)

        with ThreadPoolExecutor(max_workers=MAX_IN_FLIGHT) as pool:
            sent = list(pool.map(post, bodies))
        refused = [
            n for n, answer in enumerate(sent) if answer is not None and answer.status_code == 401
        ]
        if refused:
            self._session.refresh()
            for n in refused:
                sent[n] = self._session.request("POST", url, json=bodies[n])
        return sent

    def _read_answer(self, write: Write, answer: CallAnswer) -> Answer:
        return answer_for(write, answer, self._session.label, event_from_graph, self._session.retry)
