"""flask-smorest's Api, made to document and serve problem details."""

from __future__ import annotations

import http
from typing import Any

from flask_smorest import Api
from flask_smorest.spec.plugins import FlaskPlugin
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from .errors import PROBLEM_MIMETYPE, ProblemSchema, handle_http_exception

API_PREFIX = "/api/v1"


class PrefixlessFlaskPlugin(FlaskPlugin):  # type: ignore[misc]
    """Paths relative to the ``/api/v1`` server URL, as the seed contract names them."""

    def path_helper(self, *args: Any, **kwargs: Any) -> str:
        path: str = super().path_helper(*args, **kwargs)
        if path.startswith(API_PREFIX + "/"):
            return path[len(API_PREFIX) :]
        return path


class ProblemApi(Api):  # type: ignore[misc]
    """An Api whose every documented and served error is ``application/problem+json``."""

    ERROR_SCHEMA = ProblemSchema

    def init_app(self, app: Any, *, spec_kwargs: dict[str, Any] | None = None) -> None:
        # A fresh plugin per app: the plugin keeps per-app state.
        spec_kwargs = {
            "flask_plugin": PrefixlessFlaskPlugin(),
            "servers": [{"url": API_PREFIX, "description": "this service"}],
            "security": [{"bearerAuth": []}],
            **(spec_kwargs or {}),
        }
        super().init_app(app, spec_kwargs=spec_kwargs)
        self.spec.components.security_scheme(
            "bearerAuth",
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "Access token from the CRM auth service; `sub` is the user id.",
            },
        )

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            else:
                prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Error (problem details)", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)

    def handle_http_exception(self, error: HTTPException) -> Any:
        return handle_http_exception(error)
