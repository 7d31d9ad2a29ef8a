"""The HTTP API under /api/v1: one blueprint per area, and the problems of domain errors."""

from __future__ import annotations

from flask import Flask

from ..extensions import api
from . import problems
from .common import ProviderConverter, provider_param_schema
from .events import blp as events_blp
from .google import blp as google_blp
from .outlook import blp as outlook_blp
from .status import blp as status_blp
from .webhooks import blp as webhooks_blp


def init_app(app: Flask) -> None:
    """Register the blueprints and the problems for domain errors."""
    app.url_map.converters["provider"] = ProviderConverter
    api.register_converter(ProviderConverter, provider_param_schema)
    for blueprint in (google_blp, outlook_blp, status_blp, events_blp, webhooks_blp):
        api.register_blueprint(blueprint)
    problems.init_app(app)
