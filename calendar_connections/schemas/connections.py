"""Request and response schemas of the connections API, named as the seed contract names them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import marshmallow as ma

from ..models import Provider, SyncStatus

if TYPE_CHECKING:
    from ..operations.connections import ConnectionStatus

PROVIDER_VALUES = [p.value for p in Provider]
SYNC_STATUS_VALUES = [s.value for s in SyncStatus]


class AuthorizationSchema(ma.Schema):
    """Where to send the user's browser to connect a provider."""

    url = ma.fields.String(
        data_key="authorizationUrl",
        required=True,
        metadata={"description": "Provider consent page (PKCE S256)"},
    )
    state = ma.fields.String(
        required=True,
        metadata={"description": "Single-use value the provider echoes back; valid 10 minutes"},
    )


class CallbackQuerySchema(ma.Schema):
    """What the provider appended to the redirect URI, passed on by the front end."""

    class Meta:
        # The provider adds more (scope, authuser, session_state...): ignore it.
        unknown = ma.EXCLUDE

    code = ma.fields.String(
        metadata={"description": "Authorization code; required unless `error` is given"},
    )
    state = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=512))
    error = ma.fields.String(metadata={"description": "OAuth error from the provider"})
    error_description = ma.fields.String(
        data_key="error_description", metadata={"description": "The provider's explanation"}
    )

    @ma.validates_schema
    def code_or_error(self, data: dict[str, Any], **kwargs: Any) -> None:
        """A callback carries a code, or the provider's error."""
        if not data.get("code") and not data.get("error"):
            raise ma.ValidationError("Missing data for required field.", field_name="code")


class ConnectionStatusSchema(ma.Schema):
    """A provider's connection for the current user."""

    provider = ma.fields.String(required=True, metadata={"enum": PROVIDER_VALUES})
    connected = ma.fields.Boolean(required=True)
    calendar_id = ma.fields.String(data_key="calendarId", allow_none=True)
    account_email = ma.fields.String(
        data_key="accountEmail",
        allow_none=True,
        metadata={"description": "Email of the connected account"},
    )
    last_sync_at = ma.fields.AwareDateTime(
        data_key="lastSyncAt",
        allow_none=True,
        metadata={"description": "End of the last successful sync"},
    )
    last_sync_status = ma.fields.String(
        data_key="lastSyncStatus", allow_none=True, metadata={"enum": SYNC_STATUS_VALUES}
    )
    last_sync_error = ma.fields.String(data_key="lastSyncError", allow_none=True)
    push_active = ma.fields.Boolean(
        data_key="pushActive",
        required=True,
        metadata={"description": "Whether change notifications arrive (else: polling only)"},
    )
    push_expires_at = ma.fields.AwareDateTime(
        data_key="pushExpiresAt",
        allow_none=True,
        metadata={"description": "When the open notification channel ends (it is renewed)"},
    )


def status_json(status: ConnectionStatus) -> dict[str, Any]:
    """``ConnectionStatusSchema().dump`` of a ``ConnectionStatus``, written out: the status is
    the API's most frequent read, and marshmallow's dump costs more than its query. A test pins
    both to the same output; a field added to the schema is added here too."""
    last_sync_at = status.last_sync_at
    push_expires_at = status.push_expires_at
    return {
        "provider": status.provider,
        "connected": bool(status.connected),
        "calendarId": status.calendar_id,
        "accountEmail": status.account_email,
        "lastSyncAt": None if last_sync_at is None else last_sync_at.isoformat(),
        "lastSyncStatus": status.last_sync_status,
        "lastSyncError": status.last_sync_error,
        "pushActive": bool(status.push_active),
        "pushExpiresAt": None if push_expires_at is None else push_expires_at.isoformat(),
    }


class SyncResultSchema(ma.Schema):
    """What one sync did."""

    provider = ma.fields.String(required=True, metadata={"enum": PROVIDER_VALUES})
    success = ma.fields.Boolean(required=True)
    error = ma.fields.String(allow_none=True, metadata={"description": "Why the sync failed"})
    events_created = ma.fields.Integer(
        data_key="eventsCreated",
        required=True,
        metadata={"description": "CRM events created from the provider"},
    )
    events_updated = ma.fields.Integer(
        data_key="eventsUpdated",
        required=True,
        metadata={"description": "CRM events changed from the provider"},
    )
    events_deleted = ma.fields.Integer(
        data_key="eventsDeleted",
        required=True,
        metadata={"description": "CRM events deleted from the provider"},
    )
    events_pushed = ma.fields.Integer(
        data_key="eventsPushed",
        required=True,
        metadata={"description": "Provider writes (insert, patch, delete)"},
    )
