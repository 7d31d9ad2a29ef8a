"""Request bodies: JSON only, sent as JSON, readable, and not too deep.

A body of another content type is a 415, a body that is not JSON a 400 saying where it
broke, a body over ``MAX_CONTENT_LENGTH`` a 413 (raised by Werkzeug as the body is read).
"""

from __future__ import annotations

import json
from typing import Any

import flask
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from ..errors import Problem

# Deeper documents mean nothing to this API; refusing them early bounds the work of reading.
MAX_JSON_DEPTH = 32


def _invalid(detail: str) -> Problem:
    return Problem(400, detail, kind="invalid-json", title="Invalid JSON")


def _too_deep(document: Any) -> bool:
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        if isinstance(node, dict):
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
    return False


def decode_json_body(data: bytes) -> Any:
    """The JSON document in ``data``, or a 400 problem saying where it broke."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(f"The body is not UTF-8: invalid byte at offset {exc.start}.") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _invalid(
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} "
            f"(character {exc.pos})."
        ) from None
    except RecursionError:
        raise _invalid(f"The body is nested too deeply: at most {MAX_JSON_DEPTH} levels.") from None
    except ValueError as exc:
        # Python's own limits, such as integers of more than 4300 digits.
        raise _invalid(f"The body is not valid JSON: {exc}.") from None
    if _too_deep(document):
        raise _invalid(f"The body is nested too deeply: at most {MAX_JSON_DEPTH} levels.")
    return document


class JsonBodyParser(FlaskParser):
    """webargs' Flask parser, refusing what it would otherwise ignore or fail on."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        data = req.get_data(cache=True)
        if not data:
            return core.missing
        if not is_json_request(req):
            sent = req.mimetype or "no Content-Type"
            raise Problem(
                415,
                f"The body must be JSON sent as application/json, not {sent}.",
                kind="unsupported-media-type",
            )
        return decode_json_body(data)
