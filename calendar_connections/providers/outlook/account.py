"""Microsoft's OAuth settings, and the account read right after connecting."""

from __future__ import annotations

from typing import Any

from ...config import Settings
from ..http import OAuthClientConfig, oauth_session
from ..oauth import read_account
from ..spec import AccountInfo

LABEL = "Outlook"
SCOPES = ("offline_access", "Calendars.ReadWrite", "User.Read")


def oauth_config(settings: Settings) -> OAuthClientConfig:
    """Microsoft's OAuth client settings, for the configured tenant."""
    authority = f"{settings.outlook_authority_url.rstrip('/')}/{settings.outlook_tenant}"
    return OAuthClientConfig(
        client_id=settings.outlook_client_id,
        client_secret=settings.outlook_client_secret,
        redirect_uri=settings.outlook_redirect_uri,
        authorize_url=f"{authority}/oauth2/v2.0/authorize",
        token_url=f"{authority}/oauth2/v2.0/token",
        revoke_url=None,  # the identity platform has no revocation endpoint for this flow
        scopes=SCOPES,
        authorize_params={"response_mode": "query"},
        send_scope_on_refresh=True,
        timeout=float(settings.http_timeout),
    )


def api_base_url(settings: Settings) -> str:
    """Base URL of Microsoft Graph."""
    return settings.outlook_graph_base_url.rstrip("/")


def fetch_account(settings: Settings, token: dict[str, Any]) -> AccountInfo:
    """The default calendar (and email) of the account ``token`` belongs to."""
    base = api_base_url(settings)
    with oauth_session(oauth_config(settings), token=token) as session:
        calendar = read_account(session, f"{base}/me/calendar", LABEL)
        me = read_account(session, f"{base}/me", LABEL)
    email = me.get("mail") or me.get("userPrincipalName")
    return AccountInfo(calendar_id=str(calendar["id"]), email=email)
