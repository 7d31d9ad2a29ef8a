"""Bearer JWT authentication: the `sub` claim is the CRM user id."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask, Response
from flask_jwt_extended import create_access_token, get_jwt

from .errors import problem_response
from .extensions import jwt
from .text import unstorable_reason

BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="calendar-connections"'}


def _unauthorized(detail: str) -> Response:
    return problem_response(401, detail, kind="unauthorized", headers=BEARER_CHALLENGE)


# The longest user id stored (the `user_id` columns).
SUBJECT_MAX_LENGTH = 255


def _subject_problem(subject: Any) -> str | None:
    """Why ``sub`` is not a user id, or None when it is one."""
    if isinstance(subject, bool) or not isinstance(subject, int | str):
        return "The Bearer token's `sub` claim is not a user id (a string or an integer)."
    # Checked before converting: the decimal string of a huge integer is costly, then refused.
    if isinstance(subject, int) and subject.bit_length() > 3 * SUBJECT_MAX_LENGTH:
        return f"The Bearer token's `sub` claim is longer than {SUBJECT_MAX_LENGTH} characters."
    text = str(subject)
    if not text:
        return "The Bearer token's `sub` claim is empty."
    if len(text) > SUBJECT_MAX_LENGTH:
        return f"The Bearer token's `sub` claim is longer than {SUBJECT_MAX_LENGTH} characters."
    reason = unstorable_reason(text)
    if reason:
        return f"The Bearer token's `sub` claim is not a user id: {reason}"
    return None


def claims_problem(payload: dict[str, Any]) -> str | None:
    """Why the token's claims are refused (beyond its signature and times), or None."""
    if "exp" not in payload:
        return "The Bearer token has no `exp` claim: tokens must expire."
    if payload.get("type", "access") != "access":
        return "The Bearer token is not an access token (its `type` claim is not `access`)."
    return _subject_problem(payload.get("sub"))


def current_user_id() -> str:
    """The CRM user id of the request's token (a numeric `sub` as its decimal string)."""
    subject: str | int = get_jwt()["sub"]
    return str(subject)


def issue_token(user_id: str, expires: timedelta) -> str:
    """A token for ``user_id`` signed with the configured HS256 secret (local use)."""
    token: str = create_access_token(identity=user_id, expires_delta=expires)
    return token


def init_app(app: Flask) -> None:
    """Answer every authentication failure with a 401 problem, never a 422."""
    jwt.init_app(app)

    @jwt.unauthorized_loader
    def missing_token(reason: str) -> Response:
        return _unauthorized("Missing Bearer token: send `Authorization: Bearer <token>`.")

    @jwt.invalid_token_loader
    def invalid_token(reason: str) -> Response:
        return _unauthorized(f"Invalid Bearer token: {reason}.")

    @jwt.expired_token_loader
    def expired_token(header: dict[str, Any], payload: dict[str, Any]) -> Response:
        return _unauthorized("The Bearer token has expired.")

    @jwt.revoked_token_loader
    def revoked_token(header: dict[str, Any], payload: dict[str, Any]) -> Response:
        return _unauthorized("The Bearer token has been revoked.")

    @jwt.needs_fresh_token_loader
    def needs_fresh(header: dict[str, Any], payload: dict[str, Any]) -> Response:
        return _unauthorized("A fresh Bearer token is required.")

    @jwt.token_verification_loader
    def acceptable_claims(header: dict[str, Any], payload: dict[str, Any]) -> bool:
        return claims_problem(payload) is None

    @jwt.token_verification_failed_loader
    def refused_claims(header: dict[str, Any], payload: dict[str, Any]) -> Response:
        return _unauthorized(claims_problem(payload) or "The Bearer token was refused.")

    @jwt.user_lookup_error_loader
    def unknown_user(header: dict[str, Any], payload: dict[str, Any]) -> Response:
        return _unauthorized("The Bearer token's user is unknown.")
