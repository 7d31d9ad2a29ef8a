"""Connections once made: their status, syncing them, and disconnecting."""

from __future__ import annotations

from typing import cast

from flask import Response, current_app
from flask.views import MethodView

from ..auth import current_user_id
from ..config import get_settings
from ..crypto import get_cipher
from ..extensions import db
from ..operations import connections
from ..operations.sync import sync_if_stale
from ..schemas.connections import ConnectionStatusSchema, SyncResultSchema, status_json
from ..sync.engine import SyncResult
from ..sync.service import sync_provider
from .common import CONNECTIONS_PREFIX, ApiBlueprint, authenticated, parse_provider

blp = ApiBlueprint(
    "status",
    __name__,
    url_prefix=CONNECTIONS_PREFIX,
    description="The user's calendar connections: status, sync and disconnect",
)


# `authenticated` is the outermost decorator: without a valid token a request is a 401, before
# any of its arguments are read.
@blp.route("/status")
class Status(MethodView):
    @authenticated(blp)
    @blp.doc(summary="Get connection statuses", operationId="connectionStatuses")
    @blp.response(200, ConnectionStatusSchema(many=True))
    def get(self) -> Response:
        """One entry per provider, GOOGLE then OUTLOOK, connected or not."""
        statuses = connections.connection_statuses(db.session(), current_user_id())
        # Dumped here as ConnectionStatusSchema would (the response's documented schema).
        return cast(Response, current_app.json.response([status_json(s) for s in statuses]))


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
        """Sync one connection now."""
        return sync_provider(
            db.session(), current_user_id(), parse_provider(provider), get_settings(), get_cipher()
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
        """Sync each stale connection of the user."""
        return sync_if_stale(db.session(), current_user_id(), get_settings(), get_cipher())
