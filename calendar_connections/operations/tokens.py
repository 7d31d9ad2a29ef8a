"""Encryption keys of stored tokens: re-encrypting everything under the newest key."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..crypto import InvalidToken, TokenCipher
from ..models import OAuthState, OAuthToken


@dataclass
class KeyRotation:
    """What a key rotation did: tokens and pending authorizations rewritten, and the tokens no
    configured key can read."""

    rotated: int = 0
    unreadable: list[OAuthToken] = field(default_factory=list)
    rotated_states: int = 0


def rotate_token_keys(tokens: list[OAuthToken], cipher: TokenCipher) -> KeyRotation:
    """Re-encrypt ``tokens`` under the first key.

    A token no configured key decrypts is left as it is and reported: one retired key must
    not stop the rotation of every other token (its connection has to be reconnected).
    """
    outcome = KeyRotation()
    for stored in tokens:
        try:
            access = cipher.rotate(stored.access_token_encrypted)
            refresh = stored.refresh_token_encrypted
            refresh = cipher.rotate(refresh) if refresh else refresh
        except InvalidToken:
            outcome.unreadable.append(stored)
            continue
        stored.access_token_encrypted, stored.refresh_token_encrypted = access, refresh
        outcome.rotated += 1
    return outcome


def rotate_keys(session: Session, cipher: TokenCipher) -> KeyRotation:
    """Re-encrypt every stored token and pending authorization under the first key; flushed."""
    outcome = rotate_token_keys(list(session.execute(select(OAuthToken)).scalars()), cipher)
    for state in session.execute(select(OAuthState)).scalars():
        try:
            state.code_verifier_encrypted = cipher.rotate(state.code_verifier_encrypted)
            outcome.rotated_states += 1
        except InvalidToken:
            pass  # short-lived and useless without its key: it expires on its own
    session.flush()
    return outcome
