"""The authorization-code flow's calls to a provider: authorize URL, code exchange, revoke."""

from __future__ import annotations

import logging
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError

from .errors import ProviderError, ProviderRejected, ProviderUnavailable
from .http import OAuthClientConfig, oauth_session, translate_oauth_error

log = logging.getLogger(__name__)


def authorization_url(oauth: OAuthClientConfig, state: str, code_verifier: str) -> str:
    """The provider's consent page for ``state``, with the PKCE challenge of ``code_verifier``."""
    client = oauth_session(oauth, retry=False)
    url, _ = client.create_authorization_url(
        oauth.authorize_url,
        state=state,
        code_verifier=code_verifier,
        scope=" ".join(oauth.scopes),
        **oauth.authorize_params,
    )
    return str(url)


def exchange_code(
    label: str, oauth: OAuthClientConfig, *, code: str, code_verifier: str, redirect_uri: str
) -> dict[str, Any]:
    """The token for an authorization code; our errors for a refusal or a failure."""
    # No retries: an authorization code is single-use.
    client = oauth_session(oauth, retry=False)
    try:
        token: dict[str, Any] = client.fetch_token(
            oauth.token_url,
            grant_type="authorization_code",
            code=code,
            code_verifier=code_verifier,
            redirect_uri=redirect_uri,
        )
    except OAuthError as exc:
        raise translate_oauth_error(exc, label) from exc
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnavailable(
            f"{label}'s token endpoint failed; try connecting again later."
        ) from exc
    finally:
        client.close()
    if not token.get("access_token"):
        raise ProviderUnavailable(f"{label} answered without an access token.")
    return token


def revoke(name: str, oauth: OAuthClientConfig, token: dict[str, Any]) -> None:
    """Best effort: a revoke failure is logged, never fatal (the tokens are deleted anyway)."""
    assert oauth.revoke_url
    value = token.get("refresh_token") or token["access_token"]
    client = oauth_session(oauth, retry=False)
    try:
        response = client.revoke_token(oauth.revoke_url, token=value)
        if response.status_code >= 400:
            log.warning("revoking the %s token failed with HTTP %s", name, response.status_code)
    except (requests.RequestException, ProviderError) as exc:
        log.warning("revoking the %s token failed: %s", name, type(exc).__name__)
    finally:
        client.close()


def read_account(session: requests.Session, url: str, label: str) -> dict[str, Any]:
    """One JSON resource of the account a fresh token belongs to; our errors otherwise."""
    try:
        response = session.get(url)
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"{label} could not be reached; try again later.") from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise ProviderUnavailable(
            f"{label} answered HTTP {response.status_code}; try again later.",
            status=response.status_code,
        )
    if response.status_code >= 400:
        raise ProviderRejected(
            f"{label} refused to read the account "
            f"(HTTP {response.status_code}): {_error_message(response)}",
            status=response.status_code,
        )
    try:
        body: dict[str, Any] = response.json()
    except ValueError as exc:
        raise ProviderError(f"{label} sent an unreadable answer.") from exc
    return body


def _error_message(response: requests.Response) -> str:
    try:
        error = response.json().get("error")
    except ValueError:
        return response.reason or "error"
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "error")
    return str(error or response.reason)
