"""Authorized provider sessions: refresh before expiry and on 401, persist rotated tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Auth, OAuth2Session
from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from ..config import Settings
from .errors import ProviderRejected, ProviderUnavailable
from .http import OAuthClientConfig, RetryPolicy, oauth_session, translate_oauth_error

TokenSaver = Callable[[dict[str, Any]], None]

# Google's "slow down" answers: a 403 that the reason, not the status, tells apart from a refusal.
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


def retry_policy(settings: Settings) -> RetryPolicy:
    """The retry policy configured for provider calls."""
    return RetryPolicy(
        attempts=settings.sync_retry_attempts,
        backoff_factor=settings.sync_retry_backoff,
        backoff_max=settings.sync_retry_backoff_max,
        max_retry_after=settings.sync_retry_after_max,
    )


class ProviderSession:
    """Sends requests to a provider's API as the connected account.

    Authlib refreshes the access token shortly before it expires; a 401 forces one refresh
    and one retry. Every new token goes to ``save_token`` at once (Microsoft rotates refresh
    tokens: losing the new one would lose the connection).
    """

    def __init__(
        self,
        label: str,
        oauth: OAuthClientConfig,
        settings: Settings,
        token: dict[str, Any],
        save_token: TokenSaver,
    ) -> None:
        self.label = label
        self._retry = retry_policy(settings)
        oauth = replace(oauth, retry=self._retry)
        self._token_url = oauth.token_url
        self._save_token = save_token
        self._session: OAuth2Session = oauth_session(
            oauth, token=token, update_token=self._on_new_token
        )

    def _on_new_token(self, token: dict[str, Any], **_: Any) -> None:
        self._save_token(dict(token))

    @property
    def retry(self) -> RetryPolicy:
        """How this session retries 429 and 5xx (batches re-send throttled calls the same way)."""
        return self._retry

    def close(self) -> None:
        """Release the HTTP connections."""
        self._session.close()

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send a request; raise our errors for transport failures and refused grants."""
        response = self._send_throttled(method, url, **kwargs)
        if response.status_code == 401:
            self.refresh()
            response = self._send_throttled(method, url, **kwargs)
            if response.status_code == 401:
                raise ProviderRejected(
                    f"{self.label} refused the access token even after a refresh.",
                    status=401,
                )
        return response

    def fixed_auth(self) -> OAuth2Auth:
        """The access token as an ``auth`` that never refreshes, refreshed first when near its
        expiry: for requests sent from other threads, since a refresh saves the new token
        through the database session, which belongs to the calling thread."""
        try:
            self._session.ensure_active_token(self._session.token)
        except OAuthError as exc:
            raise translate_oauth_error(exc, self.label) from exc
        except (requests.RequestException, ValueError) as exc:
            raise ProviderUnavailable(
                f"{self.label}'s token endpoint could not refresh the access token."
            ) from exc
        return OAuth2Auth(dict(self._session.token))

    def send_unrefreshed(
        self, method: str, url: str, auth: OAuth2Auth, **kwargs: Any
    ) -> requests.Response:
        """Send with ``auth`` (see ``fixed_auth``), retried like ``request`` but never
        refreshing: a 401 is returned for the calling thread to handle. Safe from several
        threads at once (urllib3's connection pool is)."""
        return self._send_throttled(method, url, auth=auth, **kwargs)

    def _send_throttled(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send, retrying rate-limit 403s with the policy urllib3 applies to 429 and 5xx.

        urllib3 retries by status alone; these need the reason from the body. The last
        answer is returned when the attempts run out (``raise_for_status`` reports it).
        """
        policy = self._retry
        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts + 1),
            wait=wait_exponential_jitter(
                multiplier=policy.backoff_factor, max=policy.backoff_max, jitter=policy.jitter
            ),
            retry=retry_if_result(is_rate_limited),
            retry_error_callback=_last_answer,
            reraise=True,
        )
        response: requests.Response = retrying(self._send, method, url, **kwargs)
        return response

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            response: requests.Response = self._session.request(method, url, **kwargs)
        except OAuthError as exc:  # raised by the automatic refresh before expiry
            raise translate_oauth_error(exc, self.label) from exc
        except requests.exceptions.RetryError as exc:
            raise ProviderUnavailable(
                f"{self.label} kept failing after retries; try again later."
            ) from exc
        except requests.RequestException as exc:
            raise ProviderUnavailable(
                f"{self.label} could not be reached ({type(exc).__name__}); try again later."
            ) from exc
        return response

    def refresh(self) -> None:
        """Refresh the access token now (after a 401)."""
        try:
            self._session.refresh_token(self._token_url)
        except OAuthError as exc:
            raise translate_oauth_error(exc, self.label) from exc
        except (requests.RequestException, ValueError) as exc:
            raise ProviderUnavailable(
                f"{self.label}'s token endpoint could not refresh the access token."
            ) from exc


def _last_answer(state: RetryCallState) -> requests.Response:
    assert state.outcome is not None
    response: requests.Response = state.outcome.result()
    return response


def is_rate_limited(response: requests.Response) -> bool:
    """Whether ``response`` is Google's 403 rate limit (``error.errors[0].reason``)."""
    return response.status_code == 403 and error_reason(response) in RATE_LIMIT_REASONS


def raise_for_status(response: requests.Response, label: str, action: str) -> None:
    """Our error for a failed answer: 429/5xx/rate limit that outlived retries, or another 4xx."""
    status = response.status_code
    if status < 400:
        return
    detail = error_summary(response)
    if status == 429 or status >= 500 or is_rate_limited(response):
        raise ProviderUnavailable(
            f"{label} answered HTTP {status} to {action} after retries: {detail}",
            status=status,
        )
    raise ProviderRejected(
        f"{label} refused to {action} (HTTP {status}): {detail}",
        status=status,
        reason=error_reason(response),
    )


def error_summary(response: requests.Response) -> str:
    """The provider's own error message, short."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or "error"
    return summary_of(body, response.reason)


def summary_of(body: Any, fallback: str | None) -> str:
    """The error message of a decoded error body (a whole answer's or one batched call's)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "error")[:300]
    return str(error or fallback or "error")[:300]


def error_reason(response: requests.Response) -> str | None:
    """Google's `errors[0].reason` or Graph's `error.code`."""
    try:
        body = response.json()
    except ValueError:
        return None
    return reason_of(body)


def reason_of(body: Any) -> str | None:
    """Google's `errors[0].reason` or Graph's `error.code` of a decoded error body."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    errors = error.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("reason") or "") or None
    code = error.get("code")
    return str(code) if isinstance(code, str) else None
