"""Google's OAuth endpoints: authorize (consents at once), token, revoke."""

from __future__ import annotations

from html import escape
from typing import Any

from flask import Blueprint, Response, g, request

from .errors import SandboxError, google_oauth_error, json_response
from .oauth import (
    TOKEN_SECONDS,
    CodeProblem,
    client_credentials,
    grant_of_refresh_token,
    id_token,
    issue_access_token,
    issue_code,
    open_grant,
    pinned_client,
    redeem_code,
    redirect_with,
    revoke_grant,
    token_claims,
    token_request_params,
    valid_redirect_uri,
)
from .store import GOOGLE, Grant, SandboxStore, current_store

bp = Blueprint("sandbox_google_auth", __name__, url_prefix="/google")

_CODE_ERRORS = {
    CodeProblem.UNKNOWN: ("invalid_grant", "Malformed auth code."),
    CodeProblem.USED: ("invalid_grant", "Bad Request"),
    CodeProblem.EXPIRED: ("invalid_grant", "Bad Request"),
    CodeProblem.CLIENT: ("invalid_grant", "Bad Request"),
    CodeProblem.REDIRECT: ("redirect_uri_mismatch", "Bad Request"),
    CodeProblem.VERIFIER_MISSING: ("invalid_grant", "Missing code verifier."),
    CodeProblem.VERIFIER: ("invalid_grant", "Invalid code verifier."),
}


def _error_page(status: int, error: str, detail: str) -> Response:
    html = (
        "<!doctype html><title>Error</title><h1>Access blocked: authorization error</h1>"
        f"<p>Error {status}: {escape(error)}</p><p>{escape(detail)}</p>"
    )
    return Response(html, status=status, content_type="text/html; charset=utf-8")


@bp.get("/o/oauth2/v2/auth")
def authorize() -> Response:
    """Consent at once and send the browser back with a code (or an error)."""
    store = current_store()
    args = request.args
    client_id = args.get("client_id")
    redirect_uri = args.get("redirect_uri")
    if not client_id:
        return _error_page(400, "invalid_request", "Missing required parameter: client_id")
    pinned_id, _ = pinned_client(store, GOOGLE)
    if pinned_id and client_id != pinned_id:
        return _error_page(401, "invalid_client", "The OAuth client was not found.")
    if not redirect_uri:
        return _error_page(400, "invalid_request", "Missing required parameter: redirect_uri")
    if not valid_redirect_uri(redirect_uri):
        return _error_page(
            400, "invalid_request", f"Invalid parameter value for redirect_uri: {redirect_uri}"
        )
    if args.get("response_type") != "code":
        return _error_page(400, "invalid_request", "Invalid response_type: must be code")
    scope = " ".join(args.get("scope", "").split())
    if not scope:
        return _error_page(400, "invalid_request", "Missing required parameter: scope")
    challenge = args.get("code_challenge") or None
    method = args.get("code_challenge_method") or "plain"
    if challenge and method not in ("S256", "plain"):
        return _error_page(400, "invalid_request", "Invalid code_challenge_method.")
    if challenge and not 43 <= len(challenge) <= 128:
        return _error_page(400, "invalid_request", "Invalid code_challenge.")
    state = args.get("state")
    denied = getattr(g, "sandbox_authorize_error", None)
    if args.get("sandbox_deny") in ("1", "true") or denied:
        params = {"error": str(denied or "access_denied")}
        if state is not None:
            params["state"] = state
        return redirect_with(redirect_uri, params)
    account = store.account(GOOGLE, args.get("login_hint"))
    code = issue_code(
        store,
        account,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        challenge=challenge,
        challenge_method=method,
        offline=args.get("access_type") == "offline",
    )
    params = {} if state is None else {"state": state}
    params.update({"code": code.code, "scope": scope, "authuser": "0", "prompt": "consent"})
    return redirect_with(redirect_uri, params)


def _check_client(store: SandboxStore, params: dict[str, str]) -> str:
    credentials = client_credentials(params)
    if not credentials.client_id:
        raise google_oauth_error(
            400, "invalid_request", "Could not determine client ID from request."
        )
    pinned_id, pinned_secret = pinned_client(store, GOOGLE)
    if pinned_id and credentials.client_id != pinned_id:
        raise google_oauth_error(401, "invalid_client", "The OAuth client was not found.")
    if pinned_secret:
        if not credentials.client_secret:
            raise google_oauth_error(400, "invalid_request", "client_secret is missing.")
        if credentials.client_secret != pinned_secret:
            raise google_oauth_error(401, "invalid_client", "Unauthorized")
    return credentials.client_id


def _token_body(store: SandboxStore, grant: Grant, *, with_refresh: bool) -> dict[str, Any]:
    access = issue_access_token(store, grant)
    body: dict[str, Any] = {
        "access_token": access.token,
        "expires_in": TOKEN_SECONDS,
        "scope": grant.scope,
        "token_type": "Bearer",
    }
    if with_refresh and grant.refresh_token:
        body["refresh_token"] = grant.refresh_token
    if "openid" in grant.scope.split():
        account = store.account(GOOGLE, grant.email)
        body["id_token"] = id_token(
            token_claims(account, grant.client_id, "https://accounts.google.com")
        )
    return body


@bp.post("/token")
def token() -> Response:
    """Exchange a code (with PKCE) or a refresh token for an access token."""
    store = current_store()
    params = token_request_params()
    grant_type = params.get("grant_type")
    if not grant_type:
        raise google_oauth_error(400, "unsupported_grant_type", "Invalid grant_type: ")
    if grant_type not in ("authorization_code", "refresh_token"):
        raise google_oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
    client_id = _check_client(store, params)
    if grant_type == "authorization_code":
        code = params.get("code")
        if not code:
            raise google_oauth_error(400, "invalid_request", "Missing required parameter: code")
        redeemed = redeem_code(
            store,
            GOOGLE,
            code,
            client_id=client_id,
            redirect_uri=params.get("redirect_uri"),
            verifier=params.get("code_verifier"),
        )
        if isinstance(redeemed, CodeProblem):
            raise google_oauth_error(400, *_CODE_ERRORS[redeemed])
        new_grant = open_grant(store, redeemed, with_refresh=redeemed.offline)
        return json_response(_token_body(store, new_grant, with_refresh=True))
    refresh = params.get("refresh_token")
    if not refresh:
        raise google_oauth_error(
            400, "invalid_request", "Missing required parameter: refresh_token"
        )
    grant = grant_of_refresh_token(store, GOOGLE, refresh)
    if grant is None or grant.revoked or grant.refresh_token != refresh:
        raise google_oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
    if grant.client_id != client_id:
        raise google_oauth_error(401, "unauthorized_client", "Unauthorized")
    # Google keeps the refresh token: the answer carries no new one.
    return json_response(_token_body(store, grant, with_refresh=False))


def _revoke_error() -> SandboxError:
    return google_oauth_error(400, "invalid_token", "Token expired or revoked")


@bp.post("/revoke")
def revoke() -> Response:
    """Revoke the grant an access or refresh token belongs to."""
    store = current_store()
    token = token_request_params().get("token") or request.args.get("token")
    if not token:
        raise google_oauth_error(400, "invalid_request", "Missing required parameter: token")
    grant = grant_of_refresh_token(store, GOOGLE, token)
    if grant is None:
        access = store.access_tokens.get(token)
        grant = store.grants.get(access.grant_id) if access else None
    if grant is None or grant.revoked or grant.provider != GOOGLE:
        raise _revoke_error()
    revoke_grant(store, grant)
    return json_response({})
