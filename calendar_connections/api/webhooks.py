"""Push notifications from Google and Microsoft Graph: no Bearer token, trusted by secret.

Both views answer at once, before any sync: the notification is recorded (its connection is
due) and the process's dispatcher syncs it in the background. The answer never tells a
caller whether a channel exists or its secret matched: an untrusted notification gets the
answer a trusted one gets and changes nothing. Only a body that cannot be Graph's (not JSON,
not ``{"value": [...]}``, too large) is a 4xx problem; a database that does not answer is a
503, so that the provider retries.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from flask.views import MethodView

from ..errors import Problem
from ..extensions import db
from ..models import utcnow
from ..operations import webhooks
from ..operations.webhooks import MAX_ID_LENGTH, MAX_SECRET_LENGTH
from ..push_dispatch import get_dispatcher
from .bodies import decode_json_body
from .common import ApiBlueprint, problems

blp = ApiBlueprint(
    "webhooks",
    __name__,
    url_prefix="/api/v1/crm/calendar/webhooks",
    description="Change notifications from Google and Microsoft (no Bearer token: each is "
    "trusted by its channel's secret)",
)

# Graph's validation tokens are short opaque strings; a longer one is not Graph's.
MAX_VALIDATION_TOKEN_LENGTH = 2048
UNAUTHENTICATED: dict[str, Any] = {"security": []}
# What any request may meet: a bug, or a database that does not answer.
SERVER_PROBLEMS = (500, 503)


def _header(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "in": "header",
        "name": name,
        "schema": {"type": "string", **schema},
        "description": description,
    }


GOOGLE_HEADERS = [
    _header("X-Goog-Channel-ID", "The channel's id (ours, a UUID)", maxLength=MAX_ID_LENGTH),
    _header(
        "X-Goog-Channel-Token",
        "The channel's secret, sent when it was opened",
        maxLength=MAX_SECRET_LENGTH,
    ),
    _header(
        "X-Goog-Resource-ID",
        "Google's id of the watched calendar's events",
        maxLength=MAX_ID_LENGTH,
    ),
    _header(
        "X-Goog-Resource-State",
        "`sync` when the channel opens, then `exists` at each change",
        enum=["sync", "exists", "not_exists"],
    ),
    _header("X-Goog-Message-Number", "Increasing per channel", pattern="^[0-9]{1,20}$"),
]
VALIDATION_TOKEN = {
    "in": "query",
    "name": "validationToken",
    "schema": {"type": "string", "maxLength": MAX_VALIDATION_TOKEN_LENGTH},
    "description": "Graph's handshake when a subscription is created: echoed as text/plain",
}


@blp.route("/google")
class GoogleNotifications(MethodView):
    @problems(blp, *SERVER_PROBLEMS)
    @blp.doc(
        summary="Receive a Google Calendar push notification",
        description="Google's `events.watch` channel posts here, with no body. Answered 204 "
        "at once, whether or not the channel is one of ours; a trusted `exists` message "
        "syncs its connection within `WEBHOOK_SYNC_DELAY` seconds.",
        operationId="googleNotification",
        parameters=GOOGLE_HEADERS,
        **UNAUTHENTICATED,
    )
    @blp.response(204)
    def post(self) -> Response:
        """Record a Google notification; the sync runs in the background."""
        notification = webhooks.GoogleNotification.from_headers(request.headers)
        webhooks.receive_google(db.session(), notification, utcnow(), get_dispatcher(current_app))
        return Response(status=204)


@blp.route("/outlook")
class GraphNotifications(MethodView):
    @problems(blp, 400, 413, *SERVER_PROBLEMS)
    @blp.doc(
        summary="Receive Microsoft Graph change and lifecycle notifications",
        description="Both the `notificationUrl` and the `lifecycleNotificationUrl` of our "
        "subscriptions. With `validationToken`: 200 `text/plain` echoing it. Otherwise a "
        'JSON `{"value": [...]}`, answered 202 at once whether or not the subscriptions are '
        "ours; a body that is not that shape is a 400.",
        operationId="graphNotifications",
        parameters=[VALIDATION_TOKEN],
        **UNAUTHENTICATED,
    )
    @blp.alt_response(
        200,
        description="The validation token, echoed",
        content_type="text/plain",
        schema={"type": "string"},
        success=True,
    )
    @blp.response(202)
    def post(self) -> Response:
        """Echo Graph's validation token, or record its notifications."""
        token = request.args.get("validationToken")
        if token is not None:
            return _echo(token)
        items = _graph_items(request.get_data(cache=False))
        webhooks.receive_graph(db.session(), items, utcnow(), get_dispatcher(current_app))
        return Response(status=202)


def _echo(token: str) -> Response:
    if len(token) > MAX_VALIDATION_TOKEN_LENGTH:
        raise Problem(
            400,
            f"validationToken is longer than {MAX_VALIDATION_TOKEN_LENGTH} characters.",
            kind="invalid-validation-token",
        )
    response = Response(token, status=200, mimetype="text/plain")
    # Plain text, never sniffed into markup by a browser that is shown it.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    return response


def _graph_items(data: bytes) -> list[Any]:
    """The ``value`` array of a Graph notification body (JSON whatever its content type)."""
    document = decode_json_body(data)
    if not isinstance(document, dict) or not isinstance(document.get("value"), list):
        raise Problem(
            400,
            'The body is not Graph notifications: a JSON object {"value": [...]} was expected.',
            kind="invalid-notification",
        )
    items: list[Any] = document["value"]
    return items
