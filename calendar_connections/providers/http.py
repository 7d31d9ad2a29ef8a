"""HTTP sessions for provider calls: Authlib OAuth 2 sessions with bounded retries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlsplit

from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .errors import ProviderGrantError, ProviderRejected

RETRY_STATUSES = (429, 500, 502, 503, 504)


class BoundedRetry(Retry):
    """urllib3's retry policy, with the provider's ``Retry-After`` capped."""

    max_retry_after: float = 60.0

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, self.max_retry_after)

    def new(self, **kw: Any) -> Self:
        # urllib3 sleeps on the copy each retry makes: carry the cap over to it.
        retry = super().new(**kw)
        retry.max_retry_after = self.max_retry_after
        return retry


@dataclass(frozen=True)
class RetryPolicy:
    """How provider calls are retried on 429 and 5xx: exponential backoff with jitter."""

    attempts: int = 5
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 60.0

    def build(self) -> Retry:
        """A urllib3 ``Retry`` implementing this policy."""
        retry = BoundedRetry(
            total=self.attempts,
            connect=self.attempts,
            read=2,
            status=self.attempts,
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max,
            backoff_jitter=self.jitter,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,  # writes are made idempotent by the callers
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        retry.max_retry_after = self.max_retry_after
        return retry


@dataclass(frozen=True)
class OAuthClientConfig:
    """Everything needed to run one provider's authorization-code flow."""

    client_id: str | None
    client_secret: str | None
    redirect_uri: str
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    authorize_params: dict[str, str] = field(default_factory=dict)
    revoke_url: str | None = None
    send_scope_on_refresh: bool = False
    timeout: float = 20.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def oauth_session(
    config: OAuthClientConfig,
    *,
    token: dict[str, Any] | None = None,
    update_token: Callable[..., None] | None = None,
    retry: bool = True,
) -> OAuth2Session:
    """An Authlib session for ``config``; refreshes ``token`` through ``update_token``."""
    session = OAuth2Session(
        client_id=config.client_id,
        client_secret=config.client_secret,
        scope=" ".join(config.scopes) if config.send_scope_on_refresh else None,
        redirect_uri=config.redirect_uri,
        token_endpoint=config.token_url,
        token_endpoint_auth_method="client_secret_post",
        code_challenge_method="S256",
        token=token,
        update_token=update_token,
        leeway=120,
        default_timeout=config.timeout,
    )
    if retry:
        adapter = HTTPAdapter(max_retries=config.retry.build())
        session.mount("https://", adapter)
        session.mount("http://", adapter)
    return session


def translate_oauth_error(
    error: OAuthError, provider: str
) -> ProviderGrantError | ProviderRejected:
    """Our error for an OAuth error answer of ``provider``'s token endpoint."""
    description = (error.description or "").strip()
    if error.error == "invalid_grant":
        return ProviderGrantError(
            f"{provider} refused the authorization grant ({description or 'invalid_grant'}); "
            "connect the calendar again.",
            reason="invalid_grant",
        )
    return ProviderRejected(
        f"{provider} refused the request: {error.error}"
        + (f" ({description})" if description else ""),
        reason=str(error.error),
    )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1  # a malformed port matches nothing
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port or default


def require_same_origin(link: str, base_url: str, provider: str) -> str:
    """``link`` (a paging or delta link the provider sent) when it points at the configured
    API's scheme and host; otherwise a ``ProviderRejected``: the token is never sent elsewhere."""
    if _origin(link) != _origin(base_url):
        raise ProviderRejected(
            f"{provider} sent a paging link to another host ({urlsplit(link).netloc or link!r}); "
            "it was not followed.",
            reason="foreign_link",
        )
    return link
