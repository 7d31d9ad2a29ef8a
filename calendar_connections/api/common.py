"""Pieces every blueprint of the API uses: auth, documented problems, provider paths."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from flask_jwt_extended import jwt_required
from flask_smorest import Blueprint
from werkzeug.routing import BaseConverter

from ..errors import Problem
from ..models import Provider
from ..schemas import PROVIDER_VALUES

F = TypeVar("F", bound=Callable[..., Any])


class ProviderConverter(BaseConverter):
    """A `{provider}` path segment; checked in the view so a bad value is a 400, not a 404."""


def provider_param_schema(converter: BaseConverter) -> dict[str, Any]:
    """OpenAPI schema of a `{provider}` path parameter."""
    return {
        "type": "string",
        "enum": PROVIDER_VALUES,
        "description": "GOOGLE or OUTLOOK, case-insensitive",
    }


def parse_provider(value: str) -> Provider:
    """The provider a path names, or a 400 problem listing the allowed values."""
    provider = Provider.parse(value)
    if provider is None:
        raise Problem(
            400,
            f"Unknown provider {value!r}: use one of {', '.join(PROVIDER_VALUES)} "
            "(case-insensitive).",
            kind="unknown-provider",
            extra={"allowedValues": PROVIDER_VALUES},
        )
    return provider


def authenticated(blp: Blueprint, *statuses: int) -> Callable[[F], F]:
    """Require a Bearer token and document 401, ``statuses`` and 500 as problems."""

    def decorate(view: F) -> F:
        wrapped: Any = jwt_required()(view)
        for status in sorted({401, 500, *statuses}):
            wrapped = blp.alt_response(status, response=HTTPStatus(status).name)(wrapped)
        result: F = wrapped
        return result

    return decorate
