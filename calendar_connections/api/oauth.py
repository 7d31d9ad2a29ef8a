"""The OAuth views of one provider: the authorization URL and the callback.

Each provider has a blueprint of its own (``google``, ``outlook``) built here, so that a
provider's connect flow is one tag of the API document.
"""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView

from ..auth import current_user_id
from ..config import get_settings
from ..crypto import get_cipher
from ..extensions import db
from ..models import Provider
from ..operations import connections
from ..operations.connections import AuthorizationRequest, ConnectionStatus
from ..scheduler import get_scheduler
from ..schemas.connections import (
    AuthorizationSchema,
    CallbackQuerySchema,
    ConnectionStatusSchema,
)
from .common import CONNECTIONS_PREFIX, ApiBlueprint, authenticated


def oauth_blueprint(provider: Provider, description: str) -> ApiBlueprint:
    """A blueprint with ``provider``'s authorize and callback views."""
    slug = provider.value.lower()
    name = provider.value.title()
    blp = ApiBlueprint(slug, __name__, url_prefix=CONNECTIONS_PREFIX, description=description)

    # `authenticated` is the outermost decorator: without a valid token a request is a 401,
    # before any of its arguments are read.
    class Authorize(MethodView):
        @authenticated(blp, 503)
        @blp.doc(summary=f"Get {name} OAuth authorization URL", operationId=f"{slug}Authorize")
        @blp.response(200, AuthorizationSchema)
        def get(self) -> AuthorizationRequest:
            """Start connecting: where to send the user's browser."""
            request = connections.start_authorization(
                db.session(),
                get_cipher(),
                user_id=current_user_id(),
                provider=provider,
                settings=get_settings(),
            )
            db.session.commit()
            return request

    class Callback(MethodView):
        @authenticated(blp, 400, 502, 503)
        @blp.doc(
            summary=f"Handle {name} OAuth callback",
            description="Exchanges the code for tokens and connects the calendar; "
            "returns the connection's status.",
            operationId=f"{slug}Callback",
        )
        @blp.arguments(CallbackQuerySchema, location="query", as_kwargs=True)
        @blp.response(200, ConnectionStatusSchema)
        def get(self, **query: str) -> ConnectionStatus:
            """Finish connecting with what the provider sent back."""
            connection = connections.complete_authorization(
                db.session(),
                get_cipher(),
                user_id=current_user_id(),
                provider=provider,
                settings=get_settings(),
                state=query["state"],
                code=query.get("code"),
                error=query.get("error"),
                error_description=query.get("error_description"),
            )
            scheduler = get_scheduler(current_app)
            if scheduler is not None:
                scheduler.sync_soon(connection.id)
            return connections.connection_status(db.session(), current_user_id(), provider)

    blp.add_url_rule(f"/{slug}/authorize", endpoint=f"{slug}_authorize", view_func=Authorize)
    blp.add_url_rule(f"/{slug}/callback", endpoint=f"{slug}_callback", view_func=Callback)
    return blp
