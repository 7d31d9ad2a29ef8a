"""Liveness and readiness probes for load balancers and orchestrators (no auth)."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .errors import DATABASE_RETRY_AFTER, problem_response
from .extensions import db

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    """The database answers."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("readiness check failed: %s", type(exc).__name__)
        db.session.rollback()
        return problem_response(
            503,
            "The database does not answer.",
            kind="not-ready",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
        )
    return jsonify(status="ready")


def init_app(app: Flask) -> None:
    """Register the probes."""
    app.register_blueprint(bp)
