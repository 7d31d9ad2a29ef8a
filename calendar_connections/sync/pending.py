"""What a connection must push, and forgetting tombstones no provider holds any more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import ScalarSelect, and_, case, delete, exists, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from ..models import LINK_EVENT, ORIGIN_CRM, CalendarConnection, CalendarEvent, EventLink, utcnow

# How long a deleted CRM event that no provider holds is kept: long enough that a provider
# copy pushed by a sync that died before recording it is still recognised by its tag (and
# deleted), instead of coming back as a new event.
TOMBSTONE_RETENTION = timedelta(days=30)


def pending_events(
    session: Session, connection: CalendarConnection, window_start: datetime
) -> list[tuple[int, int | None]]:
    """CRM events this connection must write: new, changed, or deleted since the last sync;
    the ids of each event and of its link.

    Events pulled from another provider are never pushed here (no sync loops).
    """

    # Each event's link with this connection, read by a correlated subquery rather than a
    # join: PostgreSQL never turns a scalar subquery into a join, so every event costs one
    # probe of ix_event_link_event_id_connection_id_kind whatever the statistics say (with
    # stale ones, the outer join it replaces became a nested loop over every link, per event).
    def link_column(column: InstrumentedAttribute[int]) -> ScalarSelect[int]:
        return (
            select(column)
            .where(
                EventLink.event_id == CalendarEvent.id,
                # ``+ 0``: no index can serve this column alone, so the unique index on
                # (connection_id, external_id), which would walk all the connection's links
                # per event, is never a candidate, whatever the statistics say.
                EventLink.connection_id + 0 == connection.id,
                EventLink.kind == LINK_EVENT,
            )
            # There is at most one (``Puller.link_for_event`` relies on it too). No ORDER BY:
            # ordered by id, the primary key's index (scanned whole, filtered) looks as cheap
            # as the probe to a planner that believes event_link empty.
            .limit(1)
            .scalar_subquery()
        )

    window_date = window_start.astimezone(UTC).date()
    new_here = and_(
        CalendarEvent.deleted_at.is_(None),
        # New to this calendar: only what has not ended before the sync window.
        or_(
            CalendarEvent.recurrence.is_not(None),
            CalendarEvent.end_at >= window_start,
            CalendarEvent.end_date > window_date,
        ),
    )
    # Without a link, an event is pending when it is new here (-1 is below every version);
    # with one, when the link holds an older version than the event's.
    pushed_version = func.coalesce(
        link_column(EventLink.synced_version),
        case((new_here, -1), else_=CalendarEvent.version),
    )
    rows = session.execute(
        select(CalendarEvent.id, link_column(EventLink.id))
        .where(
            CalendarEvent.user_id == connection.user_id,
            CalendarEvent.origin.in_([ORIGIN_CRM, connection.provider]),
            pushed_version < CalendarEvent.version,
        )
        # A series before its moved instances: they need its provider id.
        .order_by(CalendarEvent.series_id.is_not(None), CalendarEvent.id)
    ).all()
    return [(event_id, link_id) for event_id, link_id in rows]


def purge_tombstones(session: Session, connection: CalendarConnection) -> None:
    """Forget the user's deleted events that no provider holds any more, once old."""
    linked = exists().where(EventLink.event_id == CalendarEvent.id)
    session.execute(
        delete(CalendarEvent)
        .where(
            CalendarEvent.user_id == connection.user_id,
            CalendarEvent.deleted_at < utcnow() - TOMBSTONE_RETENTION,
            ~linked,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
