"""Swagger UI's assets, served by the service itself so the docs page works offline."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, Flask

SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).parent / "dist"


def init_app(app: Flask) -> None:
    """Serve the swagger-ui dist shipped by flask-swagger-ui under /api/v1/docs/assets/."""
    assets = Blueprint(
        "swagger_ui_assets",
        __name__,
        static_folder=str(SWAGGER_UI_DIST),
        static_url_path="/api/v1/docs/assets",
    )
    app.register_blueprint(assets)
