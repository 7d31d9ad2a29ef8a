"""Connecting, disconnecting and listing calendar providers."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from .. import connections
from ..auth import current_user_id
from ..config import get_settings
from ..crypto import get_cipher
from ..extensions import db
from ..models import Provider
from ..scheduler import get_scheduler
from ..schemas import (
    AuthorizationSchema,
    CallbackQuerySchema,
    ConnectionStatusSchema,
    SyncResultSchema,
)
from ..sync.engine import SyncAlreadyRunning, SyncResult
from ..sync.service import (
    run_sync,
    stale_after,
    stale_connections,
    sync_provider,
)
from .common import ApiBlueprint, authenticated, parse_provider

blp = ApiBlueprint(
    "connections",
    __name__,
    url_prefix="/api/v1/crm/calendar/connections",
    description="API for managing external calendar connections",
)


def _status_of(provider: Provider) -> dict[str, Any]:
    statuses = connections.connection_statuses(db.session(), current_user_id())
    return next(s for s in statuses if s["provider"] == provider.value)


# `authenticated` is the outermost decorator: without a valid token a request is a 401, before
# any of its arguments are read.


def _add_oauth_views(provider: Provider) -> None:
    slug = provider.value.lower()
    name = provider.value.title()

    class Authorize(MethodView):
        @authenticated(blp, 503)
        @blp.doc(summary=f"Get {name} OAuth authorization URL", operationId=f"{slug}Authorize")
        @blp.response(200, AuthorizationSchema)
        def get(self) -> dict[str, str]:
            request = connections.start_authorization(
                db.session(),
                get_cipher(),
                user_id=current_user_id(),
                provider=provider,
                settings=get_settings(),
            )
            db.session.commit()
            return {"authorizationUrl": request.url, "state": request.state}

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
        def get(self, **query: str) -> dict[str, Any]:
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
            return _status_of(provider)

    blp.add_url_rule(f"/{slug}/authorize", endpoint=f"{slug}_authorize", view_func=Authorize)
    blp.add_url_rule(f"/{slug}/callback", endpoint=f"{slug}_callback", view_func=Callback)


for _provider in Provider:
    _add_oauth_views(_provider)


@blp.route("/status")
class Status(MethodView):
    @authenticated(blp)
    @blp.doc(summary="Get connection statuses", operationId="connectionStatuses")
    @blp.response(200, ConnectionStatusSchema(many=True))
    def get(self) -> list[dict[str, Any]]:
        """One entry per provider, GOOGLE then OUTLOOK, connected or not."""
        return connections.connection_statuses(db.session(), current_user_id())


@blp.route("/<provider:provider>/disconnect")
class Disconnect(MethodView):
    @authenticated(blp, 400, 409)
    @blp.doc(summary="Disconnect a calendar provider", operationId="disconnect")
    @blp.response(204)
    def delete(self, provider: str) -> Response:
        """Revokes the token where the provider allows it; keeps the CRM's events."""
        connections.disconnect(
            db.session(),
            get_cipher(),
            user_id=current_user_id(),
            provider=parse_provider(provider),
            settings=get_settings(),
        )
        db.session.commit()
        return Response(status=204)


@blp.route("/<provider:provider>/sync")
class Sync(MethodView):
    @authenticated(blp, 400, 404, 409)
    @blp.doc(
        summary="Trigger manual sync",
        description="Pulls the provider's changes and pushes the CRM's. A provider failure is "
        "`success: false` with `error`; not connected is a 404; a sync already running a 409.",
        operationId="syncProvider",
    )
    @blp.response(200, SyncResultSchema)
    def post(self, provider: str) -> SyncResult:
        return sync_provider(
            db.session(),
            current_user_id(),
            parse_provider(provider),
            get_settings(),
            get_cipher(),
        )


@blp.route("/sync-if-stale")
class SyncIfStale(MethodView):
    @authenticated(blp)
    @blp.doc(
        summary="Sync all connected providers if last sync was more than 5 minutes ago",
        description="Stale means never synced or last synced longer ago than "
        "`SYNC_STALE_AFTER` seconds (300). Returns one result per provider synced; "
        "connections already syncing are skipped.",
        operationId="syncIfStale",
    )
    @blp.response(200, SyncResultSchema(many=True))
    def post(self) -> list[SyncResult]:
        session = db.session()
        stale = stale_connections(session, stale_after(get_settings()), current_user_id())
        results = []
        for connection in stale:
            try:
                results.append(run_sync(session, connection, get_settings(), get_cipher()))
            except SyncAlreadyRunning:
                continue
        return results
