"""Google's OAuth settings, granted scopes, and the account read right after connecting."""

from __future__ import annotations

from typing import Any

from ...config import Settings
from ..http import OAuthClientConfig, oauth_session
from ..oauth import read_account
from ..spec import AccountInfo

LABEL = "Google Calendar"
SCOPES = (
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
)


def oauth_config(settings: Settings) -> OAuthClientConfig:
    """Google's OAuth client settings."""
    return OAuthClientConfig(
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret,
        redirect_uri=settings.google_redirect_uri,
        authorize_url=settings.google_authorize_url,
        token_url=settings.google_token_url,
        revoke_url=settings.google_revoke_url,
        scopes=SCOPES,
        # offline + consent: Google sends a refresh token only on a consent screen.
        authorize_params={"access_type": "offline", "prompt": "consent"},
        timeout=float(settings.http_timeout),
    )


def api_base_url(settings: Settings) -> str:
    """Base URL of the Google Calendar API."""
    return settings.google_api_base_url.rstrip("/")


def missing_scopes(token: dict[str, Any]) -> list[str]:
    """The scopes the service needs that the token response says were not granted.

    Google's consent screen lets a user untick a scope; its token response lists those granted.
    """
    if "scope" not in token:
        return []
    granted = token["scope"]
    granted_set = set(granted.split() if isinstance(granted, str) else granted or [])
    return [scope for scope in SCOPES if scope not in granted_set]


def fetch_account(settings: Settings, token: dict[str, Any]) -> AccountInfo:
    """The primary calendar of the account ``token`` belongs to."""
    base = api_base_url(settings)
    with oauth_session(oauth_config(settings), token=token) as session:
        primary = read_account(session, f"{base}/users/me/calendarList/primary", LABEL)
    calendar_id = str(primary["id"])
    # The primary calendar's id is the account's email address.
    return AccountInfo(calendar_id=calendar_id, email=calendar_id)
