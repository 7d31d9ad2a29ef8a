"""The CRM's calendar events: list, create, read, change and delete a user's events."""

from __future__ import annotations

from typing import Any, cast

from flask import Response, current_app, request, url_for
from flask.views import MethodView
from sqlalchemy.exc import IntegrityError

from ..auth import current_user_id
from ..extensions import db
from ..idempotency import (
    StoredAnswer,
    find_answer,
    remember_answer,
    request_fingerprint,
)
from ..operations import events
from ..operations.events import EventView
from ..schemas.events import (
    ALL_DAY_EXAMPLE,
    EVENT_EXAMPLE,
    EVENT_PATCH_EXAMPLE,
    EventPatchSchema,
    EventSchema,
    EventWindowSchema,
    IdempotencyHeaderSchema,
    listed_event_json,
)
from .bodies import decode_json_body
from .common import ApiBlueprint, authenticated

blp = ApiBlueprint(
    "events",
    __name__,
    url_prefix="/api/v1/crm/calendar/events",
    description="The CRM user's calendar events, synced with the connected calendars",
)

# Dumps a created event's stored answer (one schema for the process, not one per request).
_EVENT = EventSchema()
# Event ids are 32-bit on PostgreSQL: a larger id is a 404, not a database error.
EVENT_PATH = "/<int(max=2147483647):id>"


def _answer_response(answer: StoredAnswer, *, replayed: bool = False) -> Response:
    response = current_app.response_class(
        answer.body, status=answer.status, mimetype="application/json"
    )
    if answer.location:
        response.headers["Location"] = answer.location
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _create(data: dict[str, Any]) -> StoredAnswer:
    """Create the event and its answer; flushed, not committed."""
    session = db.session()
    event = events.create_event(session, current_user_id(), data)
    # The whole answer is built before the commit: once committed, nothing can fail.
    body = _EVENT.dump(events.describe(session, [event])[0])
    location = url_for("events.EventById", id=event.id)
    return StoredAnswer(201, current_app.json.dumps(body), location)


def create_once(data: dict[str, Any], key: str | None) -> Response:
    """Create an event; with an idempotency key, at most once per key and user in 24 hours."""
    session = db.session()
    if key is None:
        answer = _create(data)
        session.commit()
        return _answer_response(answer)
    user_id = current_user_id()
    fingerprint = request_fingerprint(decode_json_body(request.get_data(cache=True)))
    stored = find_answer(session, user_id, key, fingerprint)
    if stored is not None:
        return _answer_response(stored, replayed=True)
    answer = _create(data)
    try:
        remember_answer(session, user_id, key, fingerprint, answer)
    except IntegrityError:
        # A twin request with this key committed first: undo ours and answer as it did.
        session.rollback()
        stored = find_answer(session, user_id, key, fingerprint)
        if stored is None:
            raise
        return _answer_response(stored, replayed=True)
    session.commit()
    return _answer_response(answer)


# `authenticated` is the outermost decorator: a request without a valid token is a 401,
# whatever its query or body.
@blp.route("")
class Events(MethodView):
    @authenticated(blp, 422)
    @blp.doc(operationId="listEvents")
    @blp.arguments(EventWindowSchema, location="query")
    @blp.response(200, EventSchema(many=True))
    @blp.paginate(page_size=50, max_page_size=100)
    def get(self, window: dict[str, Any], pagination_parameters: Any) -> Response:
        """List events overlapping [from, to), ordered by start"""
        page = events.list_events(
            db.session(),
            current_user_id(),
            **window,
            offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = page.total
        # Dumped here as EventSchema would (the response's documented schema), without it.
        return cast(
            Response,
            current_app.json.response(
                [listed_event_json(row, page.sources[row.id]) for row in page.rows]
            ),
        )

    @authenticated(blp, body=True)
    @blp.doc(operationId="createEvent")
    @blp.arguments(IdempotencyHeaderSchema, location="headers", as_kwargs=True)
    @blp.arguments(
        EventSchema,
        examples={
            "timed": {"summary": "A weekly meeting", "value": EVENT_EXAMPLE},
            "allDay": {"summary": "An all-day event", "value": ALL_DAY_EXAMPLE},
        },
    )
    @blp.response(
        201,
        EventSchema,
        headers={
            "Location": {"schema": {"type": "string"}},
            "Idempotent-Replayed": {
                "description": "`true` when this is the stored answer to an earlier request "
                "with the same Idempotency-Key",
                "schema": {"type": "string", "enum": ["true"]},
            },
        },
    )
    def post(self, data: dict[str, Any], idempotency_key: str | None = None) -> Response:
        """Create an event"""
        return create_once(data, idempotency_key)


@blp.route(EVENT_PATH)
class EventById(MethodView):
    @authenticated(blp, 404)
    @blp.doc(operationId="getEvent")
    @blp.response(200, EventSchema)
    def get(self, id: int) -> EventView:
        """Get an event"""
        event = events.get_event(db.session(), current_user_id(), id)
        return events.describe(db.session(), [event])[0]

    @authenticated(blp, 404, body=True)
    @blp.doc(operationId="updateEvent")
    @blp.arguments(EventPatchSchema, example=EVENT_PATCH_EXAMPLE)
    @blp.response(200, EventSchema)
    def patch(self, changes: dict[str, Any], id: int) -> EventView:
        """Change some fields of an event"""
        event = events.update_event(db.session(), current_user_id(), id, changes)
        # Described before the commit: once committed, nothing can fail.
        (described,) = events.describe(db.session(), [event])
        db.session.commit()
        return described

    @authenticated(blp, 404)
    @blp.doc(operationId="deleteEvent")
    @blp.response(204)
    def delete(self, id: int) -> Response:
        """Delete an event; the sync deletes it at the providers"""
        events.delete_event(db.session(), current_user_id(), id)
        db.session.commit()
        return Response(status=204)
