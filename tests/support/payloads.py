"""Canned provider payloads, shaped like the providers' real answers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GOOGLE_REVOKE_URL = "https://oauth2.googleapis.com/revoke"
GOOGLE_API = "https://www.googleapis.com/calendar/v3"
GOOGLE_PRIMARY_URL = f"{GOOGLE_API}/users/me/calendarList/primary"
OUTLOOK_TOKEN_URL = "https://login.microsoftonline.com/common/oauth2/v2.0/token"
GRAPH = "https://graph.microsoft.com/v1.0"

GOOGLE_EMAIL = "ada@example.com"
OUTLOOK_CALENDAR_ID = "AAMkAGI2TGuLAAA="
OUTLOOK_EMAIL = "grace@contoso.example"

# Every date in the canned payloads is relative to the run, never fixed: the sync reads a
# window around *now* (30 days back, 365 ahead by default) and would miss fixed dates later.
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime.now(UTC).replace(microsecond=0)  # once per run: the builders' output is stable
TODAY = NOW.date()
# The Monday two to three weeks ahead: inside the window whenever the tests run, and a Monday
# for the weekly series. Tests place their events on days after it (see `day` and `local`).
MONDAY = TODAY + timedelta(days=14 + (7 - TODAY.weekday()) % 7)


def day(offset: int = 0) -> date:
    """The date `offset` days after MONDAY."""
    return MONDAY + timedelta(days=offset)


def local(offset: int, hour: int, minute: int = 0, zone: ZoneInfo = BERLIN) -> datetime:
    """`hour:minute` wall-clock time in `zone` (Europe/Berlin by default) on `day(offset)`.

    The UTC offset comes from the zone (CET or CEST, ...): compare instants, not offsets."""
    return datetime.combine(day(offset), time(hour, minute), zone)


def graph_utc(moment: datetime) -> str:
    """A Graph `dateTime` in UTC (as asked with `outlook.timezone="UTC"`), without zone."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000")


def graph_stamp(moment: datetime) -> str:
    """A Graph `createdDateTime`/`lastModifiedDateTime`."""
    return f"{graph_utc(moment)}Z"


def google_stamp(moment: datetime) -> str:
    """A Google `created`/`updated`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


CREATED_AT = NOW - timedelta(days=23)  # when the canned provider events were created
UPDATED_AT = NOW - timedelta(days=4)  # and last changed: before anything a test does


def google_token(
    access: str = "ya29.access-1", refresh: str | None = "1//refresh-1"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": access,
        "expires_in": 3599,
        "scope": "https://www.googleapis.com/auth/calendar.events "
        "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
        "token_type": "Bearer",
    }
    if refresh:
        body["refresh_token"] = refresh
    return body


def google_primary(email: str = GOOGLE_EMAIL) -> dict[str, Any]:
    return {
        "kind": "calendar#calendarListEntry",
        "etag": '"1700000000000000"',
        "id": email,
        "summary": email,
        "timeZone": "Europe/Berlin",
        "accessRole": "owner",
        "primary": True,
    }


def outlook_token(
    access: str = "eyJ0eXAi.access-1", refresh: str = "M.R3_BAY.refresh-1"
) -> dict[str, Any]:
    return {
        "token_type": "Bearer",
        "scope": "https://graph.microsoft.com/Calendars.ReadWrite "
        "https://graph.microsoft.com/User.Read",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": access,
        "refresh_token": refresh,
    }


def outlook_calendar(calendar_id: str = OUTLOOK_CALENDAR_ID) -> dict[str, Any]:
    return {
        "@odata.context": f"{GRAPH}/$metadata#users('me')/calendar/$entity",
        "id": calendar_id,
        "name": "Calendar",
        "color": "auto",
        "canEdit": True,
        "owner": {"name": "Grace Hopper", "address": OUTLOOK_EMAIL},
    }


def outlook_me(email: str = OUTLOOK_EMAIL) -> dict[str, Any]:
    return {
        "@odata.context": f"{GRAPH}/$metadata#users/$entity",
        "id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd",
        "displayName": "Grace Hopper",
        "mail": email,
        "userPrincipalName": email,
    }


def oauth_error(error: str, description: str) -> dict[str, Any]:
    return {"error": error, "error_description": description}


MICROSOFT_INVALID_GRANT = {
    "error": "invalid_grant",
    "error_description": "AADSTS70008: The provided authorization code or refresh token has "
    "expired due to inactivity. Send a new interactive authorization request for this user "
    "and resource.",
    "error_codes": [70008],
    "timestamp": f"{NOW:%Y-%m-%d %H:%M:%S}Z",
    "trace_id": "0000aaaa-11bb-cccc-dd22-eeeeee333333",
    "correlation_id": "aaaa0000-bb11-2222-33cc-444444dddddd",
}


GOOGLE_EVENTS_URL = f"{GOOGLE_API}/calendars/ada%40example.com/events"


def google_event(
    event_id: str,
    summary: str = "Meeting",
    start: str = local(0, 10).isoformat(),
    end: str = local(0, 11).isoformat(),
    *,
    zone: str = "Europe/Berlin",
    updated: str = google_stamp(UPDATED_AT),
    etag: str | None = None,
    status: str = "confirmed",
    all_day: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A Google Calendar event resource as events.list returns it (by default on MONDAY,
    10:00-11:00 in Berlin)."""
    when: tuple[dict[str, str], dict[str, str]]
    if all_day:
        when = ({"date": start}, {"date": end})
    else:
        when = ({"dateTime": start, "timeZone": zone}, {"dateTime": end, "timeZone": zone})
    body: dict[str, Any] = {
        "kind": "calendar#event",
        "etag": etag or f'"{abs(hash((event_id, summary, start, updated))) % 10**16}"',
        "id": event_id,
        "status": status,
        "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
        "created": google_stamp(CREATED_AT),
        "updated": updated,
        "summary": summary,
        "creator": {"email": GOOGLE_EMAIL, "self": True},
        "organizer": {"email": GOOGLE_EMAIL, "self": True},
        "start": when[0],
        "end": when[1],
        "iCalUID": f"{event_id}@google.com",
        "sequence": 0,
        "reminders": {"useDefault": True},
        "eventType": "default",
    }
    body.update(extra)
    return body


def google_cancelled(event_id: str, **extra: Any) -> dict[str, Any]:
    """A deleted event as an incremental events.list returns it."""
    return {
        "kind": "calendar#event",
        "etag": '"3181161784712000"',
        "id": event_id,
        "status": "cancelled",
        **extra,
    }


def google_list(
    items: list[dict[str, Any]], *, next_page: str | None = None, sync_token: str | None = None
) -> dict[str, Any]:
    """An events.list page: nextSyncToken only on the last one."""
    body: dict[str, Any] = {
        "kind": "calendar#events",
        "etag": '"p33c9lb0tq7bf80g"',
        "summary": GOOGLE_EMAIL,
        "updated": google_stamp(NOW),
        "timeZone": "Europe/Berlin",
        "accessRole": "owner",
        "defaultReminders": [{"method": "popup", "minutes": 10}],
        "items": items,
    }
    if next_page:
        body["nextPageToken"] = next_page
    else:
        body["nextSyncToken"] = sync_token or "CPDAlvWDx70CEPDAlvWDx70CGAU="
    return body


GRAPH_CALENDAR_URL = f"{GRAPH}/me/calendars/{OUTLOOK_CALENDAR_ID.replace('=', '%3D')}"


def graph_event(
    event_id: str,
    subject: str = "Meeting",
    start: str = graph_utc(local(0, 10)),
    end: str = graph_utc(local(0, 11)),
    *,
    original_zone: str = "W. Europe Standard Time",
    modified: str = graph_stamp(UPDATED_AT),
    change_key: str | None = None,
    kind: str = "singleInstance",
    all_day: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A Graph event as a calendarView delta returns it with `outlook.timezone="UTC"` (by
    default on MONDAY, 10:00-11:00 in Berlin)."""
    body: dict[str, Any] = {
        "@odata.etag": f'W/"{change_key or event_id}"',
        "id": event_id,
        "createdDateTime": graph_stamp(CREATED_AT),
        "lastModifiedDateTime": modified,
        "changeKey": change_key or f"ck-{abs(hash((event_id, subject, start, modified))) % 10**8}",
        "categories": [],
        "originalStartTimeZone": original_zone,
        "originalEndTimeZone": original_zone,
        "iCalUId": f"040000008200E00074C5B7101A82E008{event_id}",
        "reminderMinutesBeforeStart": 15,
        "isReminderOn": True,
        "subject": subject,
        "bodyPreview": "",
        "importance": "normal",
        "sensitivity": "normal",
        "isAllDay": all_day,
        "isCancelled": False,
        "isOrganizer": True,
        "showAs": "busy",
        "type": kind,
        "seriesMasterId": None,
        "body": {"contentType": "text", "content": ""},
        "start": {"dateTime": start, "timeZone": "UTC"},
        "end": {"dateTime": end, "timeZone": "UTC"},
        "location": {"displayName": "", "locationType": "default"},
        "recurrence": None,
        "organizer": {"emailAddress": {"name": "Grace Hopper", "address": OUTLOOK_EMAIL}},
    }
    body.update(extra)
    return body


def graph_removed(event_id: str) -> dict[str, Any]:
    """A delta entry for an event gone from the view."""
    return {
        "@odata.type": "#microsoft.graph.event",
        "id": event_id,
        "@removed": {"reason": "deleted"},
    }


def graph_page(
    items: list[dict[str, Any]], *, next_link: str | None = None, delta_link: str | None = None
) -> dict[str, Any]:
    """A calendarView delta page: deltaLink only on the last one."""
    body: dict[str, Any] = {
        "@odata.context": f"{GRAPH}/$metadata#Collection(event)",
        "value": items,
    }
    if next_link:
        body["@odata.nextLink"] = next_link
    else:
        body["@odata.deltaLink"] = (
            delta_link or f"{GRAPH_CALENDAR_URL}/calendarView/delta?$deltatoken=D1"
        )
    return body


def google_error(code: int, reason: str, message: str) -> dict[str, Any]:
    """A Google API error body (`{"error": {"code", "message", "errors": [...]}}`)."""
    domain = "usageLimits" if "RateLimit" in reason else "global"
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"domain": domain, "reason": reason, "message": message}],
        }
    }


def google_instance(
    series_id: str, original: dict[str, str], instance_key: str, **fields: Any
) -> dict[str, Any]:
    """An instance of a Google series: an exception (with ``fields``) or, with
    ``status="cancelled"``, the minimal item Google lists for a cancelled instance."""
    item_id = f"{series_id}_{instance_key}"
    if fields.get("status") == "cancelled":
        fields.pop("status")
        return google_cancelled(
            item_id, recurringEventId=series_id, originalStartTime=original, **fields
        )
    return google_event(
        item_id,
        recurringEventId=series_id,
        originalStartTime=original,
        iCalUID=f"{series_id}@google.com",
        **fields,
    )


# Microsoft Graph builders for the Outlook sync tests.

GRAPH_DELTA_URL = f"{GRAPH_CALENDAR_URL}/calendarView/delta"


def graph_error(code: str, message: str) -> dict[str, Any]:
    """A Graph error body."""
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": f"{NOW:%Y-%m-%dT%H:%M:%S}",
                "request-id": "b2c6f6b0-4f8e-4a36-9d0e-3c1f0a7d7c11",
                "client-request-id": "b2c6f6b0-4f8e-4a36-9d0e-3c1f0a7d7c11",
            },
        }
    }


def graph_weekly(
    days: list[str],
    start_date: str,
    *,
    count: int | None = None,
    zone: str = "W. Europe Standard Time",
) -> dict[str, Any]:
    """A Graph `recurrence`: weekly on `days`, `count` times or without end."""
    series: dict[str, Any] = {
        "type": "numbered" if count else "noEnd",
        "startDate": start_date,
        "endDate": "0001-01-01",
        "recurrenceTimeZone": zone,
        "numberOfOccurrences": count or 0,
    }
    return {
        "pattern": {
            "type": "weekly",
            "interval": 1,
            "month": 0,
            "dayOfMonth": 0,
            "daysOfWeek": days,
            "firstDayOfWeek": "sunday",
            "index": "first",
        },
        "range": series,
    }


def graph_master(
    event_id: str, recurrence: dict[str, Any], start: str, end: str, **extra: Any
) -> dict[str, Any]:
    """A series master as `GET /me/events/{id}` returns it (never listed by a calendar view)."""
    return graph_event(
        event_id, start=start, end=end, kind="seriesMaster", recurrence=recurrence, **extra
    )


def graph_occurrence(
    event_id: str, master_id: str, start: str, end: str, **extra: Any
) -> dict[str, Any]:
    """An unchanged occurrence of a series as a calendar view lists it."""
    return graph_event(
        event_id,
        start=start,
        end=end,
        kind="occurrence",
        seriesMasterId=master_id,
        originalStart=f"{start[:19]}Z",
        **extra,
    )


def graph_exception(
    event_id: str, master_id: str, original_start: str, start: str, end: str, **extra: Any
) -> dict[str, Any]:
    """A moved or changed instance of a series; `original_start` is its slot in the series."""
    return graph_event(
        event_id,
        start=start,
        end=end,
        kind="exception",
        seriesMasterId=master_id,
        originalStart=original_start,
        **extra,
    )
