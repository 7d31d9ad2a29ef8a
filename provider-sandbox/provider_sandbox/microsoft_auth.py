"""Microsoft identity platform v2.0: authorize (consents at once) and token (rotating)."""

from __future__ import annotations

import uuid
from html import escape
from typing import Any

from flask import Blueprint, Response, g, request

from .errors import json_response, microsoft_oauth_error
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
    rotate_refresh_token,
    token_claims,
    token_request_params,
    valid_redirect_uri,
)
from .store import MICROSOFT, Grant, SandboxStore, current_store

bp = Blueprint("sandbox_microsoft_auth", __name__, url_prefix="/microsoft")

EXPIRED_TEXT = (
    "The provided authorization code or refresh token has expired due to inactivity. "
    "Send a new interactive authorization request for this user and resource."
)
_CODE_ERRORS = {
    CodeProblem.UNKNOWN: (9002313, "Invalid request. Request is malformed or invalid."),
    CodeProblem.USED: (
        54005,
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code "
        "or use an existing refresh token.",
    ),
    CodeProblem.EXPIRED: (70008, EXPIRED_TEXT),
    CodeProblem.CLIENT: (70000, "The provided value for the 'code' parameter is not valid."),
    CodeProblem.REDIRECT: (
        50011,
        "The redirect URI specified in the request does not match the redirect URI the "
        "authorization code was issued for.",
    ),
    CodeProblem.VERIFIER_MISSING: (
        50148,
        "The code_verifier does not match the code_challenge supplied in the authorization request "
        "for PKCE.",
    ),
    CodeProblem.VERIFIER: (
        501481,
        "The Code_Verifier does not match the code_challenge supplied in the authorization "
        "request.",
    ),
}
_OIDC_SCOPES = {"openid", "profile", "email", "offline_access"}


def _error_page(text: str) -> Response:
    html = (
        "<!doctype html><title>Sign in to your account</title>"
        f"<h1>Sorry, but we're having trouble signing you in.</h1><p>{escape(text)}</p>"
    )
    return Response(html, status=400, content_type="text/html; charset=utf-8")


def _answer(redirect_uri: str, mode: str, params: dict[str, str]) -> Response:
    if mode == "form_post":
        fields = "".join(
            f'<input type="hidden" name="{escape(key)}" value="{escape(value)}">'
            for key, value in params.items()
        )
        html = (
            f'<!doctype html><body onload="document.forms[0].submit()">'
            f'<form method="post" action="{escape(redirect_uri)}">{fields}</form></body>'
        )
        return Response(html, status=200, content_type="text/html; charset=utf-8")
    return redirect_with(redirect_uri, params, fragment=mode == "fragment")


@bp.get("/<tenant>/oauth2/v2.0/authorize")
def authorize(tenant: str) -> Response:
    """Consent at once and send the browser back with a code (or an error)."""
    store = current_store()
    args = request.args
    client_id = args.get("client_id")
    redirect_uri = args.get("redirect_uri")
    if not client_id:
        return _error_page(
            "AADSTS900144: The request body must contain the following parameter: 'client_id'."
        )
    pinned_id, _ = pinned_client(store, MICROSOFT)
    if pinned_id and client_id != pinned_id:
        return _error_page(
            f"AADSTS700016: Application with identifier '{client_id}' was not found in the "
            f"directory '{tenant}'."
        )
    if not redirect_uri or not valid_redirect_uri(redirect_uri):
        return _error_page(
            "AADSTS50011: The redirect URI specified in the request does not match the redirect "
            "URIs configured for the application."
        )
    mode = args.get("response_mode") or "query"
    state = args.get("state")
    base = {} if state is None else {"state": state}

    def error(name: str, text: str) -> Response:
        return _answer(redirect_uri, mode, {"error": name, "error_description": text, **base})

    if args.get("response_type") != "code":
        return error(
            "unsupported_response_type",
            "AADSTS700054: response_type 'id_token' is not enabled for the application.",
        )
    scope = " ".join(args.get("scope", "").split())
    if not scope:
        return error(
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'scope'.",
        )
    challenge = args.get("code_challenge") or None
    method = args.get("code_challenge_method") or "plain"
    if challenge and method not in ("S256", "plain"):
        return error("invalid_request", "AADSTS501491: Invalid code_challenge_method.")
    denied = getattr(g, "sandbox_authorize_error", None)
    if args.get("sandbox_deny") in ("1", "true") or denied:
        return error(
            str(denied or "access_denied"),
            "AADSTS65004: User declined to consent to access the app.",
        )
    account = store.account(MICROSOFT, args.get("login_hint"))
    code = issue_code(
        store,
        account,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        challenge=challenge,
        challenge_method=method,
        offline="offline_access" in scope.split(),
    )
    return _answer(
        redirect_uri,
        mode,
        {"code": code.code, **base, "session_state": str(uuid.uuid4())},
    )


def _check_client(store: SandboxStore, params: dict[str, str], tenant: str) -> str:
    credentials = client_credentials(params)
    if not credentials.client_id:
        raise microsoft_oauth_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        )
    pinned_id, pinned_secret = pinned_client(store, MICROSOFT)
    if pinned_id and credentials.client_id != pinned_id:
        raise microsoft_oauth_error(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{credentials.client_id}' was not found in the "
            f"directory '{tenant}'.",
        )
    if pinned_secret and credentials.client_secret != pinned_secret:
        raise microsoft_oauth_error(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the "
            "client secret value, not the client secret ID.",
        )
    return credentials.client_id


def _token_body(store: SandboxStore, grant: Grant, tenant: str) -> dict[str, Any]:
    access = issue_access_token(store, grant)
    scopes = [s for s in grant.scope.split() if s != "offline_access"]
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": " ".join(scopes),
        "expires_in": TOKEN_SECONDS,
        "ext_expires_in": TOKEN_SECONDS,
        "access_token": access.token,
    }
    if grant.refresh_token:
        body["refresh_token"] = grant.refresh_token
    if "openid" in grant.scope.split():
        account = store.account(MICROSOFT, grant.email)
        claims = token_claims(
            account, grant.client_id, f"https://login.microsoftonline.com/{tenant}/v2.0"
        )
        claims.update({"oid": account.user_id, "preferred_username": account.email, "tid": tenant})
        body["id_token"] = id_token(claims)
    return body


@bp.post("/<tenant>/oauth2/v2.0/token")
def token(tenant: str) -> Response:
    """Exchange a code (with PKCE) or a refresh token; every refresh rotates the refresh token."""
    store = current_store()
    params = token_request_params()
    grant_type = params.get("grant_type")
    if grant_type not in ("authorization_code", "refresh_token"):
        raise microsoft_oauth_error(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type or ''}'.",
        )
    client_id = _check_client(store, params, tenant)
    if grant_type == "authorization_code":
        code = params.get("code")
        if not code:
            raise microsoft_oauth_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'code'.",
            )
        redeemed = redeem_code(
            store,
            MICROSOFT,
            code,
            client_id=client_id,
            redirect_uri=params.get("redirect_uri"),
            verifier=params.get("code_verifier"),
        )
        if isinstance(redeemed, CodeProblem):
            raise microsoft_oauth_error(400, "invalid_grant", *_CODE_ERRORS[redeemed])
        new_grant = open_grant(store, redeemed, with_refresh=redeemed.offline)
        return json_response(_token_body(store, new_grant, tenant))
    refresh = params.get("refresh_token")
    if not refresh:
        raise microsoft_oauth_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'refresh_token'.",
        )
    grant = grant_of_refresh_token(store, MICROSOFT, refresh)
    if grant is None:
        raise microsoft_oauth_error(
            400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
        )
    if grant.revoked:
        raise microsoft_oauth_error(
            400,
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being revoked, a fresh auth token is "
            "needed. The user might have changed or reset their password.",
        )
    if grant.refresh_token != refresh:
        raise microsoft_oauth_error(400, "invalid_grant", 70008, EXPIRED_TEXT)
    if grant.client_id != client_id:
        raise microsoft_oauth_error(
            400,
            "invalid_grant",
            70000,
            "Provided grant is invalid or malformed.",
        )
    rotate_refresh_token(store, grant)
    return json_response(_token_body(store, grant, tenant))
