"""Per-provider OAuth settings and the account facts read right after connecting."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from ..models import Provider
from .errors import ProviderError, ProviderRejected, ProviderUnavailable
from .http import OAuthClientConfig, oauth_session

GOOGLE_SCOPES = (
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
)
OUTLOOK_SCOPES = ("offline_access", "Calendars.ReadWrite", "User.Read")


@dataclass(frozen=True)
class AccountInfo:
    """The connected account's primary calendar."""

    calendar_id: str
    email: str | None


def oauth_config(provider: Provider, config: Mapping[str, Any]) -> OAuthClientConfig:
    """The OAuth client settings of ``provider`` from the app configuration."""
    timeout = float(config.get("HTTP_TIMEOUT", 20))
    if provider is Provider.GOOGLE:
        return OAuthClientConfig(
            client_id=config.get("GOOGLE_CLIENT_ID"),
            client_secret=config.get("GOOGLE_CLIENT_SECRET"),
            redirect_uri=config["GOOGLE_REDIRECT_URI"],
            authorize_url=config["GOOGLE_AUTHORIZE_URL"],
            token_url=config["GOOGLE_TOKEN_URL"],
            revoke_url=config.get("GOOGLE_REVOKE_URL"),
            scopes=GOOGLE_SCOPES,
            # offline + consent: Google sends a refresh token only on a consent screen.
            authorize_params={"access_type": "offline", "prompt": "consent"},
            timeout=timeout,
        )
    authority = f"{str(config['OUTLOOK_AUTHORITY_URL']).rstrip('/')}/{config['OUTLOOK_TENANT']}"
    return OAuthClientConfig(
        client_id=config.get("OUTLOOK_CLIENT_ID"),
        client_secret=config.get("OUTLOOK_CLIENT_SECRET"),
        redirect_uri=config["OUTLOOK_REDIRECT_URI"],
        authorize_url=f"{authority}/oauth2/v2.0/authorize",
        token_url=f"{authority}/oauth2/v2.0/token",
        revoke_url=None,  # the identity platform has no revocation endpoint for this flow
        scopes=OUTLOOK_SCOPES,
        authorize_params={"response_mode": "query"},
        send_scope_on_refresh=True,
        timeout=timeout,
    )


def missing_scopes(provider: Provider, token: dict[str, Any]) -> list[str]:
    """The scopes the service needs that the token response says were not granted.

    Google's consent screen lets a user untick a scope; its token response lists those granted.
    """
    if provider is not Provider.GOOGLE or "scope" not in token:
        return []
    granted = token["scope"]
    granted_set = set(granted.split() if isinstance(granted, str) else granted or [])
    return [scope for scope in GOOGLE_SCOPES if scope not in granted_set]


def api_base_url(provider: Provider, config: Mapping[str, Any]) -> str:
    """Base URL of the provider's calendar API."""
    key = "GOOGLE_API_BASE_URL" if provider is Provider.GOOGLE else "OUTLOOK_GRAPH_BASE_URL"
    return str(config[key]).rstrip("/")


def _get_json(session: requests.Session, url: str, provider: Provider) -> dict[str, Any]:
    try:
        response = session.get(url)
    except requests.RequestException as exc:
        raise ProviderUnavailable(
            f"{provider.label} could not be reached; try again later."
        ) from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise ProviderUnavailable(
            f"{provider.label} answered HTTP {response.status_code}; try again later.",
            status=response.status_code,
        )
    if response.status_code >= 400:
        raise ProviderRejected(
            f"{provider.label} refused to read the account "
            f"(HTTP {response.status_code}): {_error_message(response)}",
            status=response.status_code,
        )
    try:
        body: dict[str, Any] = response.json()
    except ValueError as exc:
        raise ProviderError(f"{provider.label} sent an unreadable answer.") from exc
    return body


def _error_message(response: requests.Response) -> str:
    try:
        error = response.json().get("error")
    except ValueError:
        return response.reason or "error"
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "error")
    return str(error or response.reason)


def fetch_account(
    provider: Provider, config: Mapping[str, Any], token: dict[str, Any]
) -> AccountInfo:
    """Read the primary calendar id (and email) of the account that ``token`` belongs to."""
    session = oauth_session(oauth_config(provider, config), token=token)
    base = api_base_url(provider, config)
    with session:
        if provider is Provider.GOOGLE:
            primary = _get_json(session, f"{base}/users/me/calendarList/primary", provider)
            calendar_id = str(primary["id"])
            # The primary calendar's id is the account's email address.
            return AccountInfo(calendar_id=calendar_id, email=calendar_id)
        calendar = _get_json(session, f"{base}/me/calendar", provider)
        me = _get_json(session, f"{base}/me", provider)
        email = me.get("mail") or me.get("userPrincipalName")
        return AccountInfo(calendar_id=str(calendar["id"]), email=email)
