"""Provider edges: Google's rate-limit 403s are retried like 429 (other 403s are not), Graph's
expired delta link in each of its shapes restarts the full listing, and an item listed twice
in one round, or a round spread over several pages, is applied exactly once."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient

from . import payloads as p
from .test_connect import GOOGLE, connect
from .test_sync_google import Harness, gevent, page


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff waits, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr("tenacity.nap.time.sleep", waits.append)
    return waits


@pytest.fixture
def g(
    client: FlaskClient, auth: dict[str, str], http: responses.RequestsMock, app: Flask
) -> Harness:
    """Google connected through mocked OAuth, its events API mocked with `responses`."""
    assert connect(client, auth, http, GOOGLE).status_code == 200
    return Harness(client, auth, http, app)


def rate_limited(reason: str) -> tuple[int, dict[str, object]]:
    return 403, p.google_error(403, reason, "Rate Limit Exceeded")


@pytest.mark.parametrize("reason", ["rateLimitExceeded", "userRateLimitExceeded"])
def test_google_rate_limit_403_is_retried_with_backoff(
    g: Harness, slept: list[float], reason: str
) -> None:
    g.lists(rate_limited(reason), rate_limited(reason), page(gevent("a1", "Alpha")))

    g.sync(1, 0, 0, 0)

    assert len(g.calls("GET")) == 3
    assert len(slept) == 2  # one backoff before each retry
    assert g.status()["lastSyncStatus"] == "SUCCESS"
    assert set(g.events()) == {"Alpha"}


def test_the_backoff_grows_as_the_retry_policy_says(
    make_app: Callable[..., Flask],
    auth: dict[str, str],
    http: responses.RequestsMock,
    slept: list[float],
) -> None:
    app = make_app(SYNC_RETRY_BACKOFF=1, SYNC_RETRY_BACKOFF_MAX=3, SYNC_RETRY_ATTEMPTS=4)
    client = app.test_client()
    assert connect(client, auth, http, GOOGLE).status_code == 200
    g = Harness(client, auth, http, app)
    g.lists(*[rate_limited("rateLimitExceeded")] * 4, page(gevent("a1", "Alpha")))

    g.sync(1, 0, 0, 0)

    assert len(slept) == 4
    # 1 * 2 ** (n - 1) plus up to 0.5 s of jitter, never over the 3 s maximum
    for wait, low in zip(slept, (1, 2, 3, 3), strict=True):
        assert low <= wait <= min(low + 0.5, 3)


def test_google_rate_limit_that_outlasts_the_retries_fails_as_unavailable(
    make_app: Callable[..., Flask],
    auth: dict[str, str],
    http: responses.RequestsMock,
    slept: list[float],
) -> None:
    app = make_app(SYNC_RETRY_ATTEMPTS=2)
    client = app.test_client()
    assert connect(client, auth, http, GOOGLE).status_code == 200
    g = Harness(client, auth, http, app)
    g.lists(*[rate_limited("userRateLimitExceeded")] * 5)

    result = g.sync()

    assert len(g.calls("GET")) == 3  # the first try and two retries
    assert result["success"] is False
    assert "HTTP 403 to list events after retries: Rate Limit Exceeded" in result["error"]
    assert g.status()["connected"] is True


@pytest.mark.parametrize("reason", ["forbidden", "forbiddenForNonOrganizer"])
def test_other_google_403s_are_not_retried(g: Harness, slept: list[float], reason: str) -> None:
    g.lists((403, p.google_error(403, reason, "Not allowed")), page(gevent("a1", "Alpha")))

    result = g.sync()

    assert len(g.calls("GET")) == 1 and slept == []
    assert result["success"] is False and "refused to list events (HTTP 403)" in result["error"]
