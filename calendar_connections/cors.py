"""CORS: a CRM front end on another origin may call the API from the browser."""

from __future__ import annotations

from flask import Flask
from flask_cors import CORS

from .config import get_settings

# What a browser may send and read: the Bearer token and JSON bodies in, our headers out.
ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"]
EXPOSED_HEADERS = ["Location", "Retry-After", "X-Pagination", "X-Request-ID"]
PREFLIGHT_MAX_AGE = 600


def init_app(app: Flask) -> None:
    """Answer preflights and add CORS headers for ``CORS_ORIGINS`` only; none by default."""
    origins = list(get_settings(app).cors_origins)
    if not origins:
        return
    CORS(
        app,
        resources={r"/api/*": {"origins": origins}},
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        methods=["GET", "POST", "PATCH", "DELETE"],
        max_age=PREFLIGHT_MAX_AGE,
        # Bearer tokens, no cookies: browsers need not send credentials.
        supports_credentials=False,
    )
