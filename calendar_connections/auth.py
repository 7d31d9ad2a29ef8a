"""Bearer JWT authentication: the `sub` claim is the CRM user id."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask, Response
from flask_jwt_extended import create_access_token, get_jwt

from .errors import problem_response
from .extensions import jwt

BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="calendar-connections"'}


def _unauthorized(detail: str) -> Response:
    return problem_response(401, detail, kind="unauthorized", headers=BEARER_CHALLENGE)


def _valid_subject(subject: Any) -> bool:
    if isinstance(subject, bool):
        return False
    if isinstance(subject, int):
        return True
    return isinstance(subject, str) and 0 < len(subject) <= 255


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
    def has_subject(header: dict[str, Any], payload: dict[str, Any]) -> bool:
        return _valid_subject(payload.get("sub"))

    @jwt.token_verification_failed_loader
    def bad_subject(header: dict[str, Any], payload: dict[str, Any]) -> Response:
        return _unauthorized("The Bearer token's `sub` claim is not a user id.")

    @jwt.user_lookup_error_loader
    def unknown_user(header: dict[str, Any], payload: dict[str, Any]) -> Response:
        return _unauthorized("The Bearer token's user is unknown.")
