"""Google Calendar API v3: events of the connected calendar, in our own terms."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import requests

from ..batch import (
    Answer,
    CallAnswer,
    answer_for,
    batch_answers,
    encode_each,
    read_round,
    write_in_rounds,
)
from ..errors import ProviderError
from ..session import ProviderSession, raise_for_status
from ..types import (
    KIND_EXCEPTION,
    KIND_MASTER,
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
from .batch import MAX_CALLS, Call, decode_answers, encode_batch

MAX_PAGE_SIZE = 2500  # the largest page events.list allows
TAG = "crmEventId"
# Every write: the people invited to an event get no mail because the CRM synced it.
WRITE_PARAMS = {"sendUpdates": "none"}


def _parse_instant(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def _parse_time(node: dict[str, Any] | None) -> tuple[datetime | None, date | None, str | None]:
    if not node:
        return None, None, None
    if "date" in node:
        return None, date.fromisoformat(node["date"]), None
    if "dateTime" in node:
        return _parse_instant(node["dateTime"]), None, node.get("timeZone")
    return None, None, None


def event_from_google(item: dict[str, Any], default_zone: str | None = None) -> RemoteEvent:
    """Translate a Google event resource."""
    start_at, start_date, zone = _parse_time(item.get("start"))
    end_at, end_date, _ = _parse_time(item.get("end"))
    original_at, original_date, _ = _parse_time(item.get("originalStartTime"))
    recurrence = item.get("recurrence")
    if item.get("recurringEventId"):
        kind = KIND_EXCEPTION
    elif recurrence:
        kind = KIND_MASTER
    else:
        kind = KIND_SINGLE
    private = (item.get("extendedProperties") or {}).get("private") or {}
    status = item.get("status", "confirmed")
    return RemoteEvent(
        external_id=str(item["id"]),
        fields=EventFields(
            title=item.get("summary") or "",
            description=item.get("description"),
            location=item.get("location"),
            all_day=start_date is not None,
            start_at=start_at,
            end_at=end_at,
            start_date=start_date,
            end_date=end_date,
            time_zone=zone or (default_zone if start_at else None),
            recurrence=list(recurrence) if recurrence else None,
            status="tentative" if status == "tentative" else "confirmed",
        ),
        kind=kind,
        cancelled=status == "cancelled",
        etag=item.get("etag"),
        updated=_parse_instant(item["updated"]) if item.get("updated") else None,
        series_external_id=item.get("recurringEventId"),
        original_start=original_date or original_at,
        crm_tag=private.get(TAG),
    )


def _time_node(moment: datetime | date | None, zone: str | None) -> dict[str, str]:
    if isinstance(moment, datetime):
        name = zone or "UTC"
        return {"dateTime": moment.astimezone(ZoneInfo(name)).isoformat(), "timeZone": name}
    if isinstance(moment, date):
        return {"date": moment.isoformat()}
    raise ValueError("an event needs a start and an end")


def event_to_google(payload: EventPayload) -> dict[str, Any]:
    """The Google event resource for a CRM event: on an update, only what changed (and the tag)."""
    fields = payload.fields
    body: dict[str, Any] = {"extendedProperties": {"private": {TAG: payload.tag}}}
    if wanted(payload, "title"):
        body["summary"] = fields.title
    if wanted(payload, "description"):
        body["description"] = fields.description
    if wanted(payload, "location"):
        body["location"] = fields.location
    if wanted(payload, "time"):
        body["start"] = _time_node(fields.start, fields.time_zone)
        body["end"] = _time_node(fields.end, fields.time_zone)
    if wanted(payload, "status"):
        body["status"] = fields.status
    if payload.series_external_id is None and wanted(payload, "recurrence"):
        body["recurrence"] = list(fields.recurrence or [])
    return body


def instance_id(series_id: str, original_start: datetime | date) -> str:
    """Google's id of one instance of a series."""
    if isinstance(original_start, datetime):
        return f"{series_id}_{original_start.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return f"{series_id}_{original_start:%Y%m%d}"


def _plain_insert(write: Write) -> bool:
    """An insert of a new event (not of a moved instance, which patches that instance)."""
    payload = write.payload
    return (
        write.action == "insert"
        and payload is not None
        and (payload.series_external_id is None or payload.original_start is None)
    )


class GoogleCalendarClient:
    """Reads and writes events of one Google calendar."""

    batch_size = MAX_CALLS

    def __init__(
        self, session: ProviderSession, api_base: str, calendar_id: str, batch_url: str
    ) -> None:
        self._session = session
        self._events_url = f"{api_base}/calendars/{quote(calendar_id, safe='')}/events"
        self._batch_url = batch_url

    def close(self) -> None:
        """Release connections."""
        self._session.close()

    def list_changes(
        self, cursor: str | None, window_start: datetime, window_end: datetime
    ) -> Iterator[Page]:
        """Incremental with the sync token, else a full listing from the window's start."""
        # showDeleted on both: a cancelled instance of a series is only visible that way, and
        # incremental requests must repeat the full listing's parameters.
        params: dict[str, Any] = {"maxResults": MAX_PAGE_SIZE, "showDeleted": "true"}
        if cursor:
            params["syncToken"] = cursor
        else:
            params["timeMin"] = window_start.astimezone(UTC).isoformat().replace("+00:00", "Z")
        zone: str | None = None
        while True:
            response = self._session.request("GET", self._events_url, params=params)
            if response.status_code == 410:
                raise SyncCursorExpired("Google asked for a full sync")
            raise_for_status(response, self._session.label, "list events")
            body = response.json()
            zone = body.get("timeZone") or zone
            items, unreadable = translate_items(
                body.get("items", []), partial(event_from_google, default_zone=zone)
            )
            token = body.get("nextPageToken")
            if not token:
                yield Page(items, body.get("nextSyncToken"), unreadable)
                return
            yield Page(items, None, unreadable)
            del response, body, items, unreadable  # one page at a time in memory
            params = {k: v for k, v in params.items() if k != "pageToken"} | {"pageToken": token}

    def get(self, external_id: str) -> RemoteEvent:
        """One event."""
        response = self._session.request("GET", f"{self._events_url}/{quote(external_id)}")
        if response.status_code in (404, 410):
            raise RemoteGone(external_id)
        raise_for_status(response, self._session.label, "read an event")
        return event_from_google(response.json())

    def insert(self, payload: EventPayload) -> RemoteEvent:
        """Create; the id derives from the CRM event, so a retried insert cannot duplicate."""
        if payload.series_external_id and payload.original_start is not None:
            target = instance_id(payload.series_external_id, payload.original_start)
            return self.update(target, payload, None)
        body = event_to_google(payload) | {"id": payload.uid}
        response = self._session.request("POST", self._events_url, params=WRITE_PARAMS, json=body)
        if response.status_code == 409:
            # Inserted before (a retry, or a sync that died before recording it): take it over.
            return self.update(payload.uid, payload, None)
        raise_for_status(response, self._session.label, "create an event")
        return event_from_google(response.json())

    def update(self, external_id: str, payload: EventPayload, etag: str | None) -> RemoteEvent:
        """Patch the event; ``etag`` guards against overwriting a newer version."""
        headers = {"If-Match": etag} if etag else {}
        response = self._session.request(
            "PATCH",
            f"{self._events_url}/{quote(external_id)}",
            params=WRITE_PARAMS,
            json=event_to_google(payload),
            headers=headers,
        )
        if response.status_code in (404, 410):
            raise RemoteGone(external_id)
        if response.status_code in (409, 412):
            raise WriteConflict(external_id)
        raise_for_status(response, self._session.label, "update an event")
        return event_from_google(response.json())

    def delete(self, external_id: str) -> None:
        """Delete; already deleted (404/410) is fine."""
        response = self._session.request(
            "DELETE", f"{self._events_url}/{quote(external_id)}", params=WRITE_PARAMS
        )
        if response.status_code in (404, 410):
            return
        raise_for_status(response, self._session.label, "delete an event")

    def write_batch(self, writes: Sequence[Write]) -> list[WriteResult]:
        """Make ``writes`` through the batch endpoint, 50 calls per request."""
        return write_in_rounds(writes, self._send_batch, MAX_CALLS, self._session.retry)

    def _call(self, write: Write) -> Call:
        """The call a write makes (an insert of a moved instance patches that instance)."""
        path = urlsplit(self._events_url).path
        query = "?" + urlencode(WRITE_PARAMS)
        payload = write.payload
        if write.action == "delete":
            return Call("DELETE", f"{path}/{quote(write.external_id or '')}{query}")
        assert payload is not None
        if _plain_insert(write):
            return Call("POST", path + query, event_to_google(payload) | {"id": payload.uid})
        target = write.external_id or ""
        if write.action == "insert" and payload.original_start is not None:
            target = instance_id(payload.series_external_id or "", payload.original_start)
        headers = {"If-Match": write.etag} if write.etag else {}
        return Call("PATCH", f"{path}/{quote(target)}{query}", event_to_google(payload), headers)

    def _send_batch(self, writes: list[Write]) -> list[Answer]:
        """One batch request; each call's answer read on its own."""
        label = self._session.label
        encoded, refused = encode_each(writes, lambda _, write: self._call(write))
        answers: dict[int, CallAnswer] = {}
        if encoded:
            body, content_type = encode_batch(encoded)
            response = self._session.request(
                "POST", self._batch_url, data=body, headers={"Content-Type": content_type}
            )
            answers = batch_answers(response, label, _decoded_batch)
        if any(answer.status == 401 for answer in answers.values()):
            self._session.refresh()  # the calls refused the token: refresh, then send again
        return read_round(writes, answers, refused, self._read_answer, label)

    def _read_answer(self, write: Write, answer: CallAnswer) -> Answer:
        if _plain_insert(write) and answer.status == 409:
            return self._take_over(write)
        return answer_for(
            write, answer, self._session.label, event_from_google, self._session.retry
        )

    def _take_over(self, write: Write) -> WriteResult:
        """Inserted before (a retry, or a sync that died before recording it): patch it."""
        assert write.payload is not None
        try:
            return WriteResult(remote=self.update(write.payload.uid, write.payload, None))
        except (WriteConflict, RemoteGone, ProviderError) as exc:
            return WriteResult(error=exc)


def _decoded_batch(response: requests.Response) -> dict[int, CallAnswer]:
    return decode_answers(response.headers.get("Content-Type", ""), response.content)
