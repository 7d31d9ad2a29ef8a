"""Reading and writing a connection's OAuth tokens, encrypted at rest."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .crypto import InvalidToken, TokenCipher
from .models import CalendarConnection, OAuthToken
from .providers.errors import TokenUnreadable

UNREADABLE_MESSAGE = (
    "The stored authorization can no longer be read (its encryption key was retired): "
    "reconnect the calendar."
)


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


def _decrypt(cipher: TokenCipher, ciphertext: str) -> str:
    try:
        return cipher.decrypt(ciphertext)
    except InvalidToken as exc:
        raise TokenUnreadable(UNREADABLE_MESSAGE, reason="token_unreadable") from exc


def load_token(connection: CalendarConnection, cipher: TokenCipher) -> dict[str, Any] | None:
    """The connection's token as the dict Authlib expects, or None when there is none.

    Raises TokenUnreadable (a ProviderGrantError: the user must connect again) when no
    configured key decrypts it.
    """
    stored = connection.token
    if stored is None:
        return None
    token: dict[str, Any] = {
        "access_token": _decrypt(cipher, stored.access_token_encrypted),
        "token_type": stored.token_type,
    }
    if stored.refresh_token_encrypted:
        token["refresh_token"] = _decrypt(cipher, stored.refresh_token_encrypted)
    if stored.expires_at is not None:
        token["expires_at"] = int(stored.expires_at.timestamp())
    if stored.scopes:
        token["scope"] = stored.scopes
    return token
