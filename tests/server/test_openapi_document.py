"""The OpenAPI document resolves, types every body once, and describes the API's errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.server.helpers import ApiClient

METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture
def document(client: ApiClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _nodes(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _nodes(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _nodes(value, f"{where}/{index}")


def _resolve(document: dict[str, Any], reference: str) -> Any:
    assert reference.startswith("#/"), f"{reference} is not a local reference"
    target: Any = document
    for escaped in reference[2:].split("/"):
        part = escaped.replace("~1", "/").replace("~0", "~")
        assert isinstance(target, dict) and part in target, f"{reference} does not resolve"
        target = target[part]
    return target


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    references = [
        (where, node["$ref"])
        for where, node in _nodes(document)
        if isinstance(node.get("$ref"), str)
    ]
    assert len(references) > 50
    for where, reference in references:
        assert isinstance(_resolve(document, reference), dict), f"{where}: {reference}"
    assert not [where for where, node in _nodes(document) if "$defs" in node]


def test_no_schema_is_both_a_string_and_a_reference(document: dict[str, Any]) -> None:
    mixed = [where for where, node in _nodes(document) if "$ref" in node and "type" in node]
    assert mixed == []


def test_the_metrics_ingest_body_is_described_inline(document: dict[str, Any]) -> None:
    body = document["paths"]["/api/v1/runs/{run_id}/metrics"]["post"]["requestBody"]
    point = body["content"]["application/json"]["schema"]["properties"]["points"]["items"]
    assert point["properties"]["key"]["maxLength"] == 200
    assert point["required"] == ["key", "step", "value"]


def test_errors_are_documented_in_the_api_error_shape(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert set(schemas["ErrorOut"]["properties"]) == {"error"}
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status.startswith("4"):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, status)


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("get", "/api/v1/runs/{run_id}", {"404", "422"}),
        ("post", "/api/v1/runs", {"400", "403", "413", "422"}),
        ("post", "/api/v1/runs/{run_id}/cancel", {"404", "409", "422"}),
        ("post", "/api/v1/runs/{run_id}/clone", {"400", "403", "404", "409", "413", "422"}),
        ("delete", "/api/v1/runs/{run_id}", {"404", "409", "422"}),
        ("post", "/api/v1/runs/{run_id}/metrics", {"400", "404", "413", "422"}),
        ("get", "/api/v1/metrics/series", {"404", "422"}),
        ("post", "/api/v1/datasets", {"400", "403", "409", "413", "422"}),
        ("get", "/api/v1/datasets/{id_or_name}/samples/{index}/image.png", {"404", "422"}),
    ],
)
def test_each_operation_names_the_errors_it_can_give(
    document: dict[str, Any], method: str, path: str, statuses: set[str]
) -> None:
    documented = set(document["paths"][path][method]["responses"])
    assert statuses <= documented, statuses - documented


def test_ids_are_bounded_to_what_the_database_stores(document: dict[str, Any]) -> None:
    parameters = document["paths"]["/api/v1/runs/{run_id}"]["get"]["parameters"]
    run_id = next(parameter for parameter in parameters if parameter["name"] == "run_id")
    assert run_id["schema"]["minimum"] == 1
    assert run_id["schema"]["maximum"] == 2**31 - 1
