"""Reading and writing a connection's OAuth tokens, encrypted at rest."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .crypto import TokenCipher
from .models import CalendarConnection, OAuthToken


def save_token(connection: CalendarConnection, token: dict[str, Any], cipher: TokenCipher) -> None:
    """Store ``token`` (an OAuth token response) on ``connection``, encrypted.

    A response without a refresh token keeps the one already stored: Google sends it only
    on a consent screen, and losing it would end offline access.
    """
    stored = connection.token
    if stored is None:
        stored = OAuthToken(access_token_encrypted="")
        connection.token = stored
    stored.access_token_encrypted = cipher.encrypt(str(token["access_token"]))
    refresh = token.get("refresh_token")
    if refresh:
        stored.refresh_token_encrypted = cipher.encrypt(str(refresh))
    stored.token_type = str(token.get("token_type") or "Bearer")
    expires_at = token.get("expires_at")
    stored.expires_at = (
        datetime.fromtimestamp(float(expires_at), UTC) if expires_at is not None else None
    )
    scope = token.get("scope")
    if scope:
        stored.scopes = scope if isinstance(scope, str) else " ".join(scope)


def load_token(connection: CalendarConnection, cipher: TokenCipher) -> dict[str, Any] | None:
    """The connection's token as the dict Authlib expects, or None when there is none."""
    stored = connection.token
    if stored is None:
        return None
    token: dict[str, Any] = {
        "access_token": cipher.decrypt(stored.access_token_encrypted),
        "token_type": stored.token_type,
    }
    if stored.refresh_token_encrypted:
        token["refresh_token"] = cipher.decrypt(stored.refresh_token_encrypted)
    if stored.expires_at is not None:
        token["expires_at"] = int(stored.expires_at.timestamp())
    if stored.scopes:
        token["scope"] = stored.scopes
    return token


def rotate_token_keys(tokens: list[OAuthToken], cipher: TokenCipher) -> int:
    """Re-encrypt ``tokens`` under the first key; returns how many were rewritten."""
    for stored in tokens:
        stored.access_token_encrypted = cipher.rotate(stored.access_token_encrypted)
        if stored.refresh_token_encrypted:
            stored.refresh_token_encrypted = cipher.rotate(stored.refresh_token_encrypted)
    return len(tokens)
