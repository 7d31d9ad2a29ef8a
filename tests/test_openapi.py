"""The OpenAPI document: the seed's paths, methods, field names, and problem-details errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from calendar_connections.api.common import MAX_PAGE
from calendar_connections.models.event import (
    DESCRIPTION_MAX_LENGTH,
    LOCATION_MAX_LENGTH,
    TITLE_MAX_LENGTH,
)

SEED_OPERATIONS = {
    "/crm/calendar/connections/google/authorize": "get",
    "/crm/calendar/connections/google/callback": "get",
    "/crm/calendar/connections/outlook/authorize": "get",
    "/crm/calendar/connections/outlook/callback": "get",
    "/crm/calendar/connections/status": "get",
    "/crm/calendar/connections/{provider}/disconnect": "delete",
    "/crm/calendar/connections/{provider}/sync": "post",
    "/crm/calendar/connections/sync-if-stale": "post",
}


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json  # type: ignore[return-value]


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = spec["components"][kind][name]
    return node


def test_seed_paths_and_methods_are_documented(spec: dict[str, Any]) -> None:
    assert spec["servers"][0]["url"] == "/api/v1"
    for path, method in SEED_OPERATIONS.items():
        assert method in spec["paths"][path], path
        assert spec["paths"][path][method]["summary"]


def test_seed_field_names(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert {"authorizationUrl", "state"} <= set(schemas["Authorization"]["properties"])
    status = schemas["ConnectionStatus"]["properties"]
    assert {
        "calendarId",
        "connected",
        "lastSyncAt",
        "lastSyncError",
        "lastSyncStatus",
        "provider",
        "pushActive",
        "pushExpiresAt",
    } <= set(status)
    assert status["provider"]["enum"] == ["GOOGLE", "OUTLOOK"]
    assert status["lastSyncStatus"]["enum"] == ["PENDING", "IN_PROGRESS", "SUCCESS", "FAILED"]
    result = schemas["SyncResult"]["properties"]
    assert {
        "provider",
        "success",
        "error",
        "eventsCreated",
        "eventsUpdated",
        "eventsDeleted",
        "eventsPushed",
    } <= set(result)
    callback = spec["paths"]["/crm/calendar/connections/google/callback"]["get"]
    assert {"code", "state"} <= {param["name"] for param in callback["parameters"]}
    disconnect = spec["paths"]["/crm/calendar/connections/{provider}/disconnect"]
    (provider,) = [p for p in disconnect["parameters"] if p["name"] == "provider"]
    assert provider["schema"]["enum"] == ["GOOGLE", "OUTLOOK"]


def test_every_error_response_is_problem_details(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "time"} <= set(problem["properties"])
    for path, method in SEED_OPERATIONS.items():
        responses = spec["paths"][path][method]["responses"]
        assert "401" in responses and "500" in responses, path
        for status, response in responses.items():
            if status == "default" or int(status) >= 400:
                content = resolve(spec, response)["content"]
                assert list(content) == ["application/problem+json"], (path, status)
                assert content["application/problem+json"]["schema"]["$ref"].endswith("/Problem")


def test_bearer_auth_is_documented(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["security"] == [{"bearerAuth": []}]


def test_docs_page_uses_local_assets(client: FlaskClient) -> None:
    page = client.get("/api/v1/docs").get_data(as_text=True)
    assert "/api/v1/docs/assets/swagger-ui-bundle.js" in page
    assert "http" not in page.split("<script>")[0].replace('rel="stylesheet"', "")
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        with client.get(f"/api/v1/docs/assets/{asset}") as response:
            assert response.status_code == 200


def test_events_paths_fields_and_problems_are_documented(spec: dict[str, Any]) -> None:
    operations = {
        "/crm/calendar/events": {"get": "200", "post": "201"},
        "/crm/calendar/events/{id}": {"get": "200", "patch": "200", "delete": "204"},
    }
    for path, methods in operations.items():
        for method, success in methods.items():
            operation = spec["paths"][path][method]
            assert operation["summary"], (path, method)
            assert {success, "401", "500"} <= set(operation["responses"]), (path, method)
    assert "404" in spec["paths"]["/crm/calendar/events/{id}"]["patch"]["responses"]
    assert "422" in spec["paths"]["/crm/calendar/events/{id}"]["patch"]["responses"]
    assert "422" in spec["paths"]["/crm/calendar/events"]["post"]["responses"]
    schemas = spec["components"]["schemas"]
    event = schemas["Event"]["properties"]
    assert {
        "id",
        "title",
        "description",
        "location",
        "start",
        "end",
        "allDay",
        "startDate",
        "endDate",
        "timeZone",
        "recurrence",
        "status",
        "seriesId",
        "originalStart",
        "createdAt",
        "updatedAt",
        "sources",
    } <= set(event)
    assert event["status"]["enum"] == ["confirmed", "tentative"]
    assert all(event[name]["readOnly"] for name in ("id", "createdAt", "sources", "seriesId"))
    assert "title" in schemas["Event"]["required"]
    assert "EventPatch" in schemas
    listing = spec["paths"]["/crm/calendar/events"]["get"]
    assert {"from", "to", "page", "page_size"} <= {p["name"] for p in listing["parameters"]}
    assert "X-Pagination" in listing["responses"]["200"]["headers"]


def test_every_status_an_operation_can_answer_is_documented(spec: dict[str, Any]) -> None:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            if method == "parameters":
                continue
            responses = set(operation["responses"])
            assert {"500", "503"} <= responses, (path, method)
            if operation.get("security") != []:  # the webhooks take no Bearer token
                assert "401" in responses, (path, method)
            if "requestBody" in operation:
                assert {"400", "413", "415", "422"} <= responses, (path, method)


def test_limits_are_documented(spec: dict[str, Any]) -> None:
    event = spec["components"]["schemas"]["Event"]["properties"]
    assert event["title"]["maxLength"] == TITLE_MAX_LENGTH
    assert event["description"]["maxLength"] == DESCRIPTION_MAX_LENGTH
    assert event["location"]["maxLength"] == LOCATION_MAX_LENGTH
    listing = spec["paths"]["/crm/calendar/events"]["get"]
    params = {p["name"]: p["schema"] for p in listing["parameters"]}
    assert params["page"]["maximum"] == MAX_PAGE
    assert params["page_size"]["maximum"] == 100
    create = spec["paths"]["/crm/calendar/events"]["post"]
    (key,) = [p for p in create["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["in"] == "header"
    assert not key.get("required")


def test_request_examples_are_accepted(
    spec: dict[str, Any], client: FlaskClient, auth: dict[str, str]
) -> None:
    create = spec["paths"]["/crm/calendar/events"]["post"]["requestBody"]["content"]
    examples = create["application/json"]["examples"]
    assert len(examples) == 2
    created = []
    for example in examples.values():
        response = client.post("/api/v1/crm/calendar/events", json=example["value"], headers=auth)
        assert response.status_code == 201, response.json
        created.append(response.json["id"])
    patch = spec["paths"]["/crm/calendar/events/{id}"]["patch"]["requestBody"]["content"]
    change = patch["application/json"]["example"]
    response = client.patch(f"/api/v1/crm/calendar/events/{created[0]}", json=change, headers=auth)
    assert response.status_code == 200, response.json


AREAS = {
    "google": {
        "/crm/calendar/connections/google/authorize",
        "/crm/calendar/connections/google/callback",
    },
    "outlook": {
        "/crm/calendar/connections/outlook/authorize",
        "/crm/calendar/connections/outlook/callback",
    },
    "status": {
        "/crm/calendar/connections/status",
        "/crm/calendar/connections/{provider}/disconnect",
        "/crm/calendar/connections/{provider}/sync",
        "/crm/calendar/connections/sync-if-stale",
    },
    "events": {"/crm/calendar/events", "/crm/calendar/events/{id}"},
    "webhooks": {"/crm/calendar/webhooks/google", "/crm/calendar/webhooks/outlook"},
}


def test_each_blueprint_is_one_tag_of_its_own_paths(spec: dict[str, Any]) -> None:
    """Google, Outlook, status, events and webhooks, as the design card names them."""
    assert [tag["name"] for tag in spec["tags"]] == list(AREAS)
    assert all(tag["description"] for tag in spec["tags"])
    tagged: dict[str, set[str]] = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":  # the path's, shared by its operations
                continue
            (tag,) = operation["tags"]
            tagged.setdefault(tag, set()).add(path)
    assert tagged == AREAS


OUTLINE = Path(__file__).parent / "support" / "openapi_outline.json"


def outline(spec: dict[str, Any]) -> dict[str, Any]:
    """Each operation's id, statuses and parameters, and each schema's property names."""
    operations = {}
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method == "parameters":
                continue
            operations[f"{method.upper()} {path}"] = {
                "operationId": operation.get("operationId"),
                "statuses": sorted(operation["responses"]),
                "parameters": sorted(p["name"] for p in operation.get("parameters", []) + shared),
            }
    schemas = {
        name: sorted(schema.get("properties", {}))
        for name, schema in spec["components"]["schemas"].items()
    }
    return {
        "operations": dict(sorted(operations.items())),
        "schemas": dict(sorted(schemas.items())),
    }


def test_the_document_keeps_its_outline(spec: dict[str, Any]) -> None:
    """Operations, their statuses and parameters, and the schemas' fields, as documented
    before the API moved into one blueprint per area (tests/support/openapi_outline.json)."""
    assert outline(spec) == json.loads(OUTLINE.read_text())
