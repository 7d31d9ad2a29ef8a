"""flask-jwt-extended's JWTManager, verifying each token once per process instead of per request.

PyJWT parses a token three times per request through flask-jwt-extended (claims, header, then
the verified decode): a quarter of a millisecond, more than a bare Flask route costs. A token's
signature and claims never change, so the claims the library accepted are kept (per app, a
bounded number of tokens) and reused while the token has not expired; an expired one, or any
token never seen, goes through the library again, which then decides and words the refusal.
"""

from __future__ import annotations

import time
from typing import Any

from flask import current_app
from flask_jwt_extended import JWTManager

# Per app: encoded token -> the claims the library verified.
VERIFIED_TOKENS_KEY = "calendar_connections.verified_tokens"
# Tokens kept per process; beyond it the cache starts over (tokens are short-lived anyway).
MAX_VERIFIED_TOKENS = 10_000


class VerifyOnceJWTManager(JWTManager):
    """A JWTManager that remembers the tokens it verified until they expire."""

    def init_app(self, app: Any, add_context_processor: bool = False) -> None:
        super().init_app(app, add_context_processor)
        app.extensions[VERIFIED_TOKENS_KEY] = {}

    def _decode_jwt_from_config(
        self, encoded_token: str, csrf_value: Any = None, allow_expired: bool = False
    ) -> dict[str, Any]:
        if allow_expired or csrf_value is not None:
            decoded: dict[str, Any] = super()._decode_jwt_from_config(
                encoded_token, csrf_value, allow_expired
            )
            return decoded
        verified: dict[str, dict[str, Any]] = current_app.extensions[VERIFIED_TOKENS_KEY]
        claims = verified.get(encoded_token)
        if claims is not None and _unexpired(claims, current_app.config["JWT_DECODE_LEEWAY"]):
            return dict(claims)
        claims = super()._decode_jwt_from_config(encoded_token)
        if len(verified) >= MAX_VERIFIED_TOKENS:
            verified.clear()
        verified[encoded_token] = claims
        return dict(claims)


def _unexpired(claims: dict[str, Any], leeway: int) -> bool:
    """Whether PyJWT would still accept the token's ``exp`` (it refuses ``exp <= now - leeway``)."""
    expires = claims.get("exp")
    return isinstance(expires, int | float) and time.time() - leeway < expires
