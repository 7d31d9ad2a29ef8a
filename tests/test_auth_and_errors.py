"""Every error is a problem: bad tokens, bad providers, missing parameters, wrong methods."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient

from .support.connections import BASE
from .support.problems import assert_problem, encode

ENDPOINTS = [
    ("GET", f"{BASE}/google/authorize"),
    ("GET", f"{BASE}/google/callback?code=c&state=s"),
    ("GET", f"{BASE}/outlook/authorize"),
    ("GET", f"{BASE}/outlook/callback?code=c&state=s"),
    ("GET", f"{BASE}/status"),
    ("DELETE", f"{BASE}/GOOGLE/disconnect"),
    ("POST", f"{BASE}/GOOGLE/sync"),
    ("POST", f"{BASE}/sync-if-stale"),
    ("GET", "/api/v1/crm/calendar/events"),
    ("POST", "/api/v1/crm/calendar/events"),
    ("GET", "/api/v1/crm/calendar/events/1"),
    ("PATCH", "/api/v1/crm/calendar/events/1"),
    ("DELETE", "/api/v1/crm/calendar/events/1"),
]

BAD_TOKENS: dict[str, Callable[[], dict[str, str]]] = {
    "missing": lambda: {},
    "not-bearer": lambda: {"Authorization": "Basic dXNlcjpwYXNz"},
    "empty-bearer": lambda: {"Authorization": "Bearer "},
    "malformed": lambda: {"Authorization": "Bearer not.a.jwt"},
    "garbage": lambda: {"Authorization": "Bearer abc"},
    "expired": lambda: {
        "Authorization": f"Bearer {encode({'sub': 'u', 'exp': int(time.time()) - 60})}"
    },
    "wrong-signature": lambda: {
        "Authorization": f"Bearer {encode({'sub': 'u'}, 'another-secret-of-sufficient-length-123')}"
    },
    "alg-none": lambda: {"Authorization": f"Bearer {pyjwt.encode({'sub': 'u'}, None, 'none')}"},
    "no-sub": lambda: {"Authorization": f"Bearer {encode({'name': 'u'})}"},
    "bool-sub": lambda: {"Authorization": f"Bearer {encode({'sub': True})}"},
    "object-sub": lambda: {"Authorization": f"Bearer {encode({'sub': {'id': 1}})}"},
}


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("bad", list(BAD_TOKENS))
def test_bad_tokens_are_401_problems_on_every_endpoint(
    client: FlaskClient, method: str, path: str, bad: str
) -> None:
    response = client.open(path, method=method, headers=BAD_TOKENS[bad]())
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert body["detail"]


@pytest.mark.parametrize("slug", ["google", "outlook"])
def test_callback_without_token_is_401_before_its_arguments_are_read(
    client: FlaskClient, slug: str
) -> None:
    assert_problem(client.get(f"{BASE}/{slug}/callback"), 401)


def test_token_without_type_jti_or_fresh_claims_is_accepted(client: FlaskClient) -> None:
    token = encode({"sub": "crm-user", "exp": int(time.time()) + 60})
    assert (
        client.get(f"{BASE}/status", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )


def test_audience_and_issuer_are_enforced_when_configured(make_app: Callable[..., Flask]) -> None:
    app = make_app(JWT_DECODE_AUDIENCE="calendar", JWT_DECODE_ISSUER="https://auth.crm.test")
    client = app.test_client()
    good = encode({"sub": "u", "aud": "calendar", "iss": "https://auth.crm.test"})
    wrong_aud = encode({"sub": "u", "aud": "billing", "iss": "https://auth.crm.test"})
    no_iss = encode({"sub": "u", "aud": "calendar"})
    assert (
        client.get(f"{BASE}/status", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    )
    for token in (wrong_aud, no_iss):
        response = client.get(f"{BASE}/status", headers={"Authorization": f"Bearer {token}"})
        assert_problem(response, 401)


def test_rs256_tokens_verify_with_the_public_key(make_app: Callable[..., Flask]) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    app = make_app(JWT_ALGORITHM="RS256", JWT_PUBLIC_KEY=public_pem.decode())
    client = app.test_client()
    token = pyjwt.encode({"sub": "u", "exp": int(time.time()) + 60}, private, algorithm="RS256")
    assert (
        client.get(f"{BASE}/status", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    hs = encode({"sub": "u"})
    assert_problem(client.get(f"{BASE}/status", headers={"Authorization": f"Bearer {hs}"}), 401)

    result = app.test_cli_runner().invoke(args=["auth", "issue-token", "u"])
    assert result.exit_code != 0
    assert "RS256" in result.output


@pytest.mark.parametrize(
    "path",
    [
        f"{BASE}/google/callback",
        f"{BASE}/google/callback?code=c",
        f"{BASE}/outlook/callback?state=s",
        f"{BASE}/outlook/callback?code=&state=s",
    ],
)
def test_missing_callback_parameters_are_422_problems_naming_the_field(
    client: FlaskClient, auth: dict[str, str], path: str
) -> None:
    body = assert_problem(client.get(path, headers=auth), 422)
    assert body["errors"]
    field = "state" if "state=" not in path else "code"
    assert field in body["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"{BASE}/status"),
        ("PUT", f"{BASE}/google/authorize"),
        ("POST", f"{BASE}/outlook/callback"),
        ("GET", f"{BASE}/GOOGLE/disconnect"),
        ("PATCH", f"{BASE}/status"),
        ("GET", f"{BASE}/GOOGLE/sync"),
        ("DELETE", f"{BASE}/sync-if-stale"),
        ("PUT", "/api/v1/crm/calendar/events"),
    ],
)
def test_wrong_methods_are_405_problems(
    client: FlaskClient, auth: dict[str, str], method: str, path: str
) -> None:
    response = client.open(path, method=method, headers=auth)
    body = assert_problem(response, 405)
    assert method in body["detail"]
    assert "Allow" in response.headers


@pytest.mark.parametrize("provider", ["yahoo", "GOOGLEX"])
def test_sync_with_an_unknown_provider_is_a_400_listing_allowed_values(
    client: FlaskClient, auth: dict[str, str], provider: str
) -> None:
    body = assert_problem(client.post(f"{BASE}/{provider}/sync", headers=auth), 400)
    assert body["allowedValues"] == ["GOOGLE", "OUTLOOK"]


def test_sync_of_a_provider_not_connected_is_a_404_problem(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    body = assert_problem(client.post(f"{BASE}/outlook/sync", headers=auth), 404)
    assert "not connected" in body["detail"]


@pytest.mark.parametrize("path", ["/api/v1/nothing", f"{BASE}/yahoo/authorize"])
def test_unknown_paths_are_404_problems(
    client: FlaskClient, auth: dict[str, str], path: str
) -> None:
    assert_problem(client.get(path, headers=auth), 404)


def test_unhandled_exceptions_are_500_problems_without_internals(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internal detail: password=hunter2")

    response = app.test_client().get("/boom")
    body = assert_problem(response, 500)
    assert "hunter2" not in response.get_data(as_text=True)
    assert "RuntimeError" not in response.get_data(as_text=True)
    assert body["detail"] == "The service failed to handle the request."
    assert any("unhandled error" in r.getMessage() for r in caplog.records)


def test_problem_time_is_utc(client: FlaskClient) -> None:
    body = assert_problem(client.get(f"{BASE}/status"), 401)
    assert body["time"].endswith("Z")
    parsed = datetime.fromisoformat(body["time"])
    assert abs((datetime.now(UTC) - parsed).total_seconds()) < 60


def test_request_id_is_echoed_or_made(client: FlaskClient) -> None:
    assert (
        client.get(f"{BASE}/status", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"]
        == "abc-123"
    )
    assert len(client.get(f"{BASE}/status").headers["X-Request-ID"]) == 32


@pytest.mark.parametrize(("ahead", "status"), [(10, 200), (25, 200), (120, 401)])
def test_a_token_issued_slightly_ahead_of_our_clock_is_accepted(
    client: FlaskClient, ahead: int, status: int
) -> None:
    now = int(time.time())
    token = encode({"sub": "u", "iat": now + ahead, "nbf": now + ahead, "exp": now + 600})
    response = client.get(f"{BASE}/status", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == status


def test_the_clock_skew_allowed_is_jwt_leeway(make_app: Callable[..., Flask]) -> None:
    client = make_app(JWT_LEEWAY=0).test_client()
    now = int(time.time())
    ahead = encode({"sub": "u", "iat": now + 10, "exp": now + 600})
    assert_problem(client.get(f"{BASE}/status", headers={"Authorization": f"Bearer {ahead}"}), 401)
    just_expired = encode({"sub": "u", "exp": now - 10})
    lenient = make_app(JWT_LEEWAY=30).test_client()
    response = lenient.get(f"{BASE}/status", headers={"Authorization": f"Bearer {just_expired}"})
    assert response.status_code == 200


def test_a_token_of_type_access_is_accepted(client: FlaskClient) -> None:
    token = encode({"sub": "u", "type": "access"})
    assert (
        client.get(f"{BASE}/status", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )


def test_sql_parameters_never_reach_the_logs(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    @app.get("/duplicate")
    def duplicate() -> str:
        from sqlalchemy import text

        from calendar_connections.extensions import db

        statement = text(
            "INSERT INTO calendar_connection (id, user_id, provider, connected, "
            "last_sync_status, created_at, updated_at, full_round) "
            "VALUES (1, :user, 'GOOGLE', false, 'PENDING', :now, :now, 0)"
        )
        # Built at run time: the traceback's source lines must not show it either.
        params = {"user": "-".join(("calendar", "secret", "7f3a")), "now": datetime.now(UTC)}
        params["now"] = params["now"].replace(tzinfo=None)
        db.session.execute(statement, params)
        db.session.execute(statement, params)
        return "unreachable"

    response = app.test_client().get("/duplicate")
    assert_problem(response, 500)
    assert "unhandled error" in caplog.text
    assert "calendar-secret-7f3a" not in caplog.text
    assert "calendar-secret-7f3a" not in response.get_data(as_text=True)
