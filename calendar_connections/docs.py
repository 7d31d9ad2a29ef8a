"""Swagger UI's assets, served by the service itself so the docs page works offline."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, Flask, redirect
from werkzeug.wrappers import Response

SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).parent / "dist"
DOCS_PATH = "/api/v1/docs"


def init_app(app: Flask) -> None:
    """Serve swagger-ui's assets under /api/v1/docs/assets/; ``GET /`` points to the docs."""
    assets = Blueprint(
        "swagger_ui_assets",
        __name__,
        static_folder=str(SWAGGER_UI_DIST),
        static_url_path="/api/v1/docs/assets",
    )
    app.register_blueprint(assets)

    @app.get("/")
    def home() -> Response:
        """Whoever opens the service's root lands on the docs page."""
        return redirect(DOCS_PATH, code=302)
