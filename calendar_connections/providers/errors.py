"""Errors raised by provider clients: our own types, never ``requests`` exceptions."""

from __future__ import annotations


class ProviderError(Exception):
    """A provider call failed; ``message`` is safe to show to the user."""

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason


class ProviderUnavailable(ProviderError):
    """The provider could not be reached or kept failing (network, 5xx, 429 after retries)."""


class ProviderGrantError(ProviderError):
    """The provider refused our grant (``invalid_grant``): the user must connect again."""


class ProviderRejected(ProviderError):
    """The provider refused a request (a 4xx other than auth, or an OAuth error)."""


class ProviderNotConfigured(ProviderError):
    """The service has no client credentials for this provider."""


class TokenUnreadable(ProviderGrantError):
    """No configured key decrypts the stored token (its key was retired): connect again."""
