"""Pieces every blueprint of the API uses: auth, documented problems, provider paths."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

import marshmallow as ma
from flask_jwt_extended import jwt_required
from flask_smorest import Blueprint
from flask_smorest.pagination import PaginationMetadataSchema
from webargs.flaskparser import FlaskParser
from werkzeug.routing import BaseConverter

from ..errors import Problem
from ..models import Provider
from ..schemas.connections import PROVIDER_VALUES
from .bodies import JsonBodyParser

F = TypeVar("F", bound=Callable[..., Any])

# Where the connection blueprints (Google, Outlook, status) serve their views.
CONNECTIONS_PREFIX = "/api/v1/crm/calendar/connections"
# The last page a list serves: beyond it an offset means nothing and only costs the database.
MAX_PAGE = 1_000_000
# Every operation may meet a database that does not answer (503, with Retry-After).
ALWAYS_DOCUMENTED = (401, 500, 503)
# Statuses of an operation that reads a JSON body.
BODY_STATUSES = (400, 413, 415, 422)


class OneSchemaPerClass(FlaskParser):
    """webargs builds a new schema from a schema class on every request (flask-smorest's
    pagination passes one, as may ``arguments``): this keeps one instance per class, built on
    first use. Loading does not change a marshmallow schema, so requests can share it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._schemas: dict[type[ma.Schema], ma.Schema] = {}

    def _get_schema(self, argmap: Any, req: Any) -> ma.Schema:
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            schema = self._schemas.get(argmap)
            if schema is None:
                schema = self._schemas[argmap] = argmap()
            return schema
        built: ma.Schema = super()._get_schema(argmap, req)
        return built


class ArgumentsParser(OneSchemaPerClass, JsonBodyParser):
    """The API's parser: strict JSON bodies, one schema instance per class."""


# Dumps the X-Pagination header (flask-smorest builds one per request).
_PAGINATION_METADATA = PaginationMetadataSchema()


class ApiBlueprint(Blueprint):  # type: ignore[misc]
    """A flask-smorest Blueprint that reads bodies strictly and bounds ``page``."""

    ARGUMENTS_PARSER = ArgumentsParser()
    PAGINATION_ARGUMENTS_PARSER = OneSchemaPerClass()

    @staticmethod
    def _make_pagination_metadata(page: int, page_size: int, item_count: int) -> Any:
        """flask-smorest's X-Pagination metadata, dumped by one shared schema."""
        metadata: dict[str, int] = {"total": item_count}
        if item_count == 0:
            metadata["total_pages"] = 0
        else:
            last = (item_count - 1) // page_size + 1
            metadata.update(total_pages=last, first_page=1, last_page=last)
            if page <= last:
                metadata["page"] = page
                if page > 1:
                    metadata["previous_page"] = page - 1
                if page < last:
                    metadata["next_page"] = page + 1
        return _PAGINATION_METADATA.dump(metadata)

    def paginate(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        """flask-smorest's pagination, with a documented maximum ``page``."""
        decorate = super().paginate(*args, **kwargs)

        def bounded(view: F) -> F:
            wrapper: Any = decorate(view)
            schema = wrapper._apidoc["pagination"]["parameters"]["schema"]
            schema._declared_fields["page"] = ma.fields.Integer(
                load_default=schema._declared_fields["page"].load_default,
                validate=ma.validate.Range(min=1, max=MAX_PAGE),
            )
            result: F = wrapper
            return result

        return bounded


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


def problems(blp: Blueprint, *statuses: int) -> Callable[[F], F]:
    """Document ``statuses`` as problem answers of the view."""

    def decorate(view: F) -> F:
        wrapped: Any = view
        for status in sorted(set(statuses)):
            wrapped = blp.alt_response(status, response=HTTPStatus(status).name)(wrapped)
        result: F = wrapped
        return result

    return decorate


def authenticated(blp: Blueprint, *statuses: int, body: bool = False) -> Callable[[F], F]:
    """Require a Bearer token; document 401, 500, 503, ``statuses`` (and those of a JSON
    ``body``) as problems."""

    def decorate(view: F) -> F:
        documented = {*ALWAYS_DOCUMENTED, *statuses, *(BODY_STATUSES if body else ())}
        protected: F = jwt_required()(view)
        return problems(blp, *documented)(protected)

    return decorate
