"""Generated requests over the OpenAPI document (schemathesis), with a valid token: no server
error, every status documented, every body as documented. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# Per operation and mode: the whole test stays within about half a minute per database.
# SCHEMATHESIS_MAX_EXAMPLES=2000 makes a deeper run by hand.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "100"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]


def exercise(operation: Any, headers: dict[str, str], mode: GenerationMode) -> int:
    """Send the operation's generated cases; how many were sent (a failure raises)."""
    sent = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def meets_the_document(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(headers=headers, checks=CHECKS)

    meets_the_document()
    return sent


def test_generated_requests_meet_the_document(
    app: Flask, token_for: Callable[[str], dict[str, str]]
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = token_for("fuzz-user")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 15
    sent: dict[str, int] = {}
    failures: dict[str, str] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.label} ({mode.value})"
            try:
                sent[label] = exercise(operation, headers, mode)
            except Exception as exc:  # every operation is tried; all failures are reported
                failures[label] = str(exc)[:3000]
    print(f"schemathesis: {sum(sent.values())} requests over {len(sent)} operations")
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    assert all(count > 0 for count in sent.values()), sent
