"""OAuth mechanics both providers share: codes, PKCE, grants, tokens, bearer checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Response, request

from .store import AccessToken, Account, AuthCode, Grant, SandboxStore
from .timezones import now

CODE_LIFETIME = timedelta(minutes=10)
TOKEN_SECONDS = 3599
_PREFIXES = {
    "google": {"code": "4/0A", "access": "ya29.a0", "refresh": "1//0g"},
    "microsoft": {"code": "0.AXoA", "access": "EwBYA8l6", "refresh": "0.AXoAr"},
}


class CodeProblem(Enum):
    """Why an authorization code cannot be redeemed."""

    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    CLIENT = "client"
    REDIRECT = "redirect"
    VERIFIER_MISSING = "verifier_missing"
    VERIFIER = "verifier"


class BearerProblem(Enum):
    """Why a bearer token was refused."""

    MISSING = "missing"
    UNKNOWN = "unknown"
    EXPIRED = "expired"


@dataclass(frozen=True)
class ClientCredentials:
    """The client id and secret a token request carried (form fields or HTTP Basic)."""

    client_id: str | None
    client_secret: str | None


def token_request_params() -> dict[str, str]:
    """The token request's parameters: the form, or a JSON body (Google accepts both)."""
    if request.form:
        return {key: str(value) for key, value in request.form.items()}
    body = request.get_json(silent=True)
    if isinstance(body, dict):
        return {str(key): str(value) for key, value in body.items()}
    return {}


def client_credentials(params: Mapping[str, str]) -> ClientCredentials:
    """Client credentials from HTTP Basic auth or the form."""
    auth = request.authorization
    if auth is not None and auth.type == "basic" and auth.username:
        return ClientCredentials(auth.username, auth.password)
    return ClientCredentials(params.get("client_id"), params.get("client_secret"))


def pinned_client(store: SandboxStore, provider: str) -> tuple[str | None, str | None]:
    """The client id and secret the configuration pins for ``provider`` (None: any)."""
    prefix = f"SANDBOX_{provider.upper()}_"
    client_id = store.config.get(prefix + "CLIENT_ID") or store.config.get("SANDBOX_CLIENT_ID")
    secret = store.config.get(prefix + "CLIENT_SECRET") or store.config.get("SANDBOX_CLIENT_SECRET")
    return (str(client_id) if client_id else None, str(secret) if secret else None)


def valid_redirect_uri(uri: str | None) -> bool:
    """Whether ``uri`` is an absolute http(s) URL without a fragment."""
    if not uri:
        return False
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment


def redirect_with(uri: str, params: Mapping[str, str], *, fragment: bool = False) -> Response:
    """A 302 to ``uri`` carrying ``params`` in its query (or fragment)."""
    separator = "#" if fragment else ("&" if "?" in uri else "?")
    response = Response(status=302)
    response.headers["Location"] = uri + separator + urlencode(params)
    return response


def pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    """Whether ``verifier`` answers ``challenge`` (S256 or plain)."""
    if method.upper() == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        return hmac.compare_digest(expected, challenge)
    return hmac.compare_digest(verifier, challenge)


def issue_code(
    store: SandboxStore,
    account: Account,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    challenge: str | None,
    challenge_method: str,
    offline: bool,
) -> AuthCode:
    """A fresh authorization code for ``account``."""
    code = _PREFIXES[account.provider]["code"] + secrets.token_urlsafe(48)
    issued = AuthCode(
        code=code,
        provider=account.provider,
        email=account.email,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        challenge=challenge,
        challenge_method=challenge_method,
        offline=offline,
        expires_at=now() + CODE_LIFETIME,
    )
    store.codes[code] = issued
    return issued


def redeem_code(
    store: SandboxStore,
    provider: str,
    code: str,
    *,
    client_id: str,
    redirect_uri: str | None,
    verifier: str | None,
) -> AuthCode | CodeProblem:
    """The code, now used, or why it cannot be redeemed."""
    issued = store.codes.get(code)
    if issued is None or issued.provider != provider:
        return CodeProblem.UNKNOWN
    if issued.used:
        return CodeProblem.USED
    if issued.expires_at <= now():
        return CodeProblem.EXPIRED
    if issued.client_id != client_id:
        return CodeProblem.CLIENT
    if redirect_uri != issued.redirect_uri:
        return CodeProblem.REDIRECT
    if issued.challenge:
        if not verifier:
            return CodeProblem.VERIFIER_MISSING
        if not pkce_matches(verifier, issued.challenge, issued.challenge_method):
            return CodeProblem.VERIFIER
    issued.used = True
    return issued


def open_grant(store: SandboxStore, code: AuthCode, *, with_refresh: bool) -> Grant:
    """A new grant for a redeemed code, with a refresh token when ``with_refresh``."""
    grant = Grant(
        id=str(uuid.uuid4()),
        provider=code.provider,
        email=code.email,
        client_id=code.client_id,
        scope=code.scope,
        refresh_token=None,
    )
    store.grants[grant.id] = grant
    if with_refresh:
        rotate_refresh_token(store, grant)
    return grant


def rotate_refresh_token(store: SandboxStore, grant: Grant) -> str:
    """Give ``grant`` a new refresh token; the previous one is retired."""
    if grant.refresh_token:
        grant.retired_refresh_tokens.add(grant.refresh_token)
    token = _PREFIXES[grant.provider]["refresh"] + secrets.token_urlsafe(64)
    grant.refresh_token = token
    store.refresh_tokens[token] = grant.id
    return token


def grant_of_refresh_token(store: SandboxStore, provider: str, token: str) -> Grant | None:
    """The grant a refresh token was issued for (current or retired), if any."""
    grant_id = store.refresh_tokens.get(token)
    grant = store.grants.get(grant_id) if grant_id else None
    return grant if grant is not None and grant.provider == provider else None


def issue_access_token(store: SandboxStore, grant: Grant) -> AccessToken:
    """A new access token for ``grant``, valid for an hour."""
    token = AccessToken(
        token=_PREFIXES[grant.provider]["access"] + secrets.token_urlsafe(96),
        grant_id=grant.id,
        expires_at=now() + timedelta(seconds=TOKEN_SECONDS + 1),
    )
    store.access_tokens[token.token] = token
    return token


def revoke_grant(store: SandboxStore, grant: Grant) -> None:
    """Revoke ``grant``: its refresh token and every access token of it stop working."""
    grant.revoked = True
    for token in [t for t in store.access_tokens.values() if t.grant_id == grant.id]:
        del store.access_tokens[token.token]


def bearer_token() -> str | None:
    """The bearer token of this request (Authorization header or ``access_token`` query)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.args.get("access_token") or None


def authenticate(store: SandboxStore, provider: str) -> Account | BearerProblem:
    """The account this request's bearer token belongs to, or why it is refused."""
    token = bearer_token()
    if token is None:
        return BearerProblem.MISSING
    issued = store.access_tokens.get(token)
    grant = store.grants.get(issued.grant_id) if issued else None
    if issued is None or grant is None or grant.revoked or grant.provider != provider:
        return BearerProblem.UNKNOWN
    if issued.expires_at <= now():
        return BearerProblem.EXPIRED
    return store.account(provider, grant.email)


def id_token(claims: dict[str, Any], secret: str = "sandbox") -> str:
    """An HS256 JWT with ``claims`` (the sandbox signs; nobody is expected to verify)."""

    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    signing_input = part({"alg": "HS256", "typ": "JWT", "kid": "sandbox"}) + "." + part(claims)
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def token_claims(account: Account, client_id: str, issuer: str) -> dict[str, Any]:
    """The usual OpenID Connect claims of ``account``."""
    issued_at = int(now().timestamp())
    return {
        "iss": issuer,
        "aud": client_id,
        "sub": account.user_id,
        "email": account.email,
        "email_verified": True,
        "name": account.display_name,
        "iat": issued_at,
        "exp": issued_at + TOKEN_SECONDS,
    }
