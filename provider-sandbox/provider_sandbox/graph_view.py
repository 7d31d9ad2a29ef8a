"""Graph calendar views: series expansion, instances in a window, lookup by any id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .graph_model import (
    MASTER,
    GraphEvent,
    occurrence_of,
    parse_occurrence_id,
    window_margin,
)
from .graph_recurrence import starts_between
from .store import SandboxStore
from .timezones import localize, to_wall, zone_or_utc


def overlaps(event: GraphEvent, low: datetime, high: datetime) -> bool:
    """Whether ``event`` overlaps the window ``[low, high)`` (a zero-length one inside it)."""
    start, end = event.start_instant(), event.end_instant()
    if start == end:
        return low <= start < high
    return start < high and end > low


def _occurrences(master: GraphEvent, low: datetime, high: datetime) -> list[GraphEvent]:
    assert master.recurrence is not None
    zone = zone_or_utc(master.start_zone)
    wall_low = to_wall(low, zone) - window_margin(master)
    wall_high = to_wall(high, zone) + timedelta(days=1)
    starts = starts_between(master.recurrence, master.start, wall_low, wall_high)
    return [occurrence_of(master, wall) for wall in starts]


def instances(master: GraphEvent, low: datetime, high: datetime) -> list[GraphEvent]:
    """Occurrences and exceptions of a series overlapping ``[low, high)``, by start."""
    if master.kind != MASTER or master.recurrence is None:
        return []
    found = [
        occurrence
        for occurrence in _occurrences(master, low, high)
        if occurrence.id not in master.deleted
        and occurrence.id not in master.exceptions
        and overlaps(occurrence, low, high)
    ]
    found += [e for e in master.exceptions.values() if overlaps(e, low, high)]
    return sorted(found, key=lambda e: (e.start_instant(), e.id))


def calendar_view(
    store: SandboxStore, email: str, low: datetime, high: datetime
) -> list[GraphEvent]:
    """The calendar view of ``[low, high)``: single events, occurrences and exceptions."""
    found: list[GraphEvent] = []
    for event in store.graph_events.get(email, {}).values():
        if event.kind == MASTER:
            found += instances(event, low, high)
        elif overlaps(event, low, high):
            found.append(event)
    return sorted(found, key=lambda e: (e.start_instant(), e.id))


def find_master(store: SandboxStore, email: str, event_id: str) -> GraphEvent | None:
    """The series master owning the exception or occurrence ``event_id``."""
    events = store.graph_events.get(email, {})
    for event in events.values():
        if event_id in event.exceptions:
            return event
    parsed = parse_occurrence_id(event_id)
    master = events.get(parsed[0]) if parsed else None
    return master if master is not None and master.kind == MASTER else None


def find_event(store: SandboxStore, email: str, event_id: str) -> GraphEvent | None:
    """Any event by id: single, master, exception, or a (live) computed occurrence."""
    events = store.graph_events.get(email, {})
    if event_id in events:
        return events[event_id]
    master = find_master(store, email, event_id)
    if master is None or event_id in master.deleted:
        return None
    if event_id in master.exceptions:
        return master.exceptions[event_id]
    parsed = parse_occurrence_id(event_id)
    assert parsed is not None
    try:
        day = datetime.strptime(parsed[1], "%Y%m%d")
    except ValueError:
        return None
    low = localize(day, zone_or_utc(master.start_zone)).astimezone(UTC)
    for occurrence in _occurrences(master, low, low + timedelta(days=1)):
        if occurrence.id == event_id:
            return occurrence
    return None
