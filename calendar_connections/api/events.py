"""The CRM's calendar events: list, create, read, change and delete a user's events."""

from __future__ import annotations

from typing import Any

from flask import Response, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from .. import events
from ..auth import current_user_id
from ..errors import problem_response
from ..event_schemas import EventPatchSchema, EventSchema, EventWindowSchema
from ..extensions import db
from .common import authenticated

blp = Blueprint(
    "events",
    __name__,
    url_prefix="/api/v1/crm/calendar/events",
    description="The CRM user's calendar events, synced with the connected calendars",
)

# Event ids are 32-bit on PostgreSQL: a larger id is a 404, not a database error.
EVENT_PATH = "/<int(max=2147483647):id>"


@blp.errorhandler(events.EventNotFound)
def _not_found(error: events.EventNotFound) -> Response:
    return problem_response(404, str(error))


@blp.errorhandler(events.InvalidEvent)
def _invalid(error: events.InvalidEvent) -> Response:
    # The same body as a 422 from request validation: a sentence and a per-field map.
    return problem_response(
        422,
        f"Invalid request. {error.field}: {error.message}",
        kind="validation",
        extra={"errors": {error.field: [error.message]}},
    )


# `authenticated` is the outermost decorator: a request without a valid token is a 401,
# whatever its query or body.
@blp.route("")
class Events(MethodView):
    @authenticated(blp, 422)
    @blp.doc(operationId="listEvents")
    @blp.arguments(EventWindowSchema, location="query")
    @blp.response(200, EventSchema(many=True))
    @blp.paginate(page_size=50, max_page_size=100)
    def get(self, window: dict[str, Any], pagination_parameters: Any) -> list[dict[str, Any]]:
        """List events overlapping [from, to), ordered by start"""
        page = events.list_events(
            db.session(),
            current_user_id(),
            **window,
            offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = page.total
        return events.describe(db.session(), page.items)

    @authenticated(blp, 422)
    @blp.doc(operationId="createEvent")
    @blp.arguments(EventSchema)
    @blp.response(201, EventSchema, headers={"Location": {"schema": {"type": "string"}}})
    def post(self, data: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Create an event"""
        event = events.create_event(db.session(), current_user_id(), data)
        db.session.commit()
        location = url_for("events.EventById", id=event.id)
        return events.describe(db.session(), [event])[0], 201, {"Location": location}


@blp.route(EVENT_PATH)
class EventById(MethodView):
    @authenticated(blp, 404)
    @blp.doc(operationId="getEvent")
    @blp.response(200, EventSchema)
    def get(self, id: int) -> dict[str, Any]:
        """Get an event"""
        event = events.get_event(db.session(), current_user_id(), id)
        return events.describe(db.session(), [event])[0]

    @authenticated(blp, 404, 422)
    @blp.doc(operationId="updateEvent")
    @blp.arguments(EventPatchSchema)
    @blp.response(200, EventSchema)
    def patch(self, changes: dict[str, Any], id: int) -> dict[str, Any]:
        """Change some fields of an event"""
        event = events.update_event(db.session(), current_user_id(), id, changes)
        db.session.commit()
        return events.describe(db.session(), [event])[0]

    @authenticated(blp, 404)
    @blp.doc(operationId="deleteEvent")
    @blp.response(204)
    def delete(self, id: int) -> Response:
        """Delete an event; the sync deletes it at the providers"""
        events.delete_event(db.session(), current_user_id(), id)
        db.session.commit()
        return Response(status=204)
