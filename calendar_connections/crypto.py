"""Encryption of OAuth secrets at rest (Fernet, with key rotation)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app

from .config import get_settings

EXTENSION_KEY = "calendar_connections.token_cipher"


class TokenCipher:
    """Encrypts with the first configured key, decrypts with any of them."""

    def __init__(self, keys: str) -> None:
        fernets = [Fernet(key.strip().encode()) for key in keys.split(",") if key.strip()]
        if not fernets:
            raise ValueError("no encryption key given")
        self._fernet = MultiFernet(fernets)

    def encrypt(self, plaintext: str) -> str:
        """Ciphertext (url-safe text) of ``plaintext``."""
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """Plaintext of ``ciphertext``; raises ``InvalidToken`` when no key fits."""
        return self._fernet.decrypt(ciphertext.encode("ascii")).decode()

    def rotate(self, ciphertext: str) -> str:
        """The same plaintext, encrypted under the first key."""
        return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")


def init_app(app: Flask) -> None:
    """Build the app's cipher from ``TOKEN_ENCRYPTION_KEYS``."""
    app.extensions[EXTENSION_KEY] = TokenCipher(get_settings(app).token_encryption_keys)


def get_cipher() -> TokenCipher:
    """The current app's cipher."""
    cipher: TokenCipher = current_app.extensions[EXTENSION_KEY]
    return cipher


__all__ = ["InvalidToken", "TokenCipher", "get_cipher", "init_app"]
