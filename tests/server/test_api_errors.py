"""Bad input gets a clear JSON 4xx, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from fastapi import FastAPI

from server.app import create_app
from server.settings import Settings
from tests.server.helpers import ApiClient, create_external


def _error(response: httpx.Response) -> dict[str, object]:
    assert response.headers["content-type"].startswith("application/json"), response.text
    error: dict[str, object] = response.json()["error"]
    return error


def test_oversized_body_by_content_length_is_413(client: ApiClient, settings: Settings) -> None:
    body = b'{"name": "' + b"x" * settings.max_body_bytes + b'"}'
    response = client.post(
        "/api/v1/runs", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    error = _error(response)
    assert error["code"] == "payload_too_large"
    assert settings.max_body_bytes == 16 * 1024 * 1024
    assert "limit of 16 MiB (16777216 bytes): SEGTRACK_MAX_BODY_BYTES" in str(error["message"])


def test_oversized_streamed_body_is_413(client: ApiClient, settings: Settings) -> None:
    run = create_external(client)

    chunk = b'{"key": "a", "step": 0, "value": 1.0},' * 25

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"points": ['
        for _ in range(settings.max_body_bytes // len(chunk) + 2):
            yield chunk

    response = client.post(
        f"/api/v1/runs/{run['id']}/metrics",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert _error(response)["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "body", [b"{not json", b'{"name": "x",}', b"", b"[1, 2", '{"name": "\u00e9'.encode()]
)
def test_malformed_json_is_a_400_or_422_json_error(client: ApiClient, body: bytes) -> None:
    response = client.post(
        "/api/v1/runs", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert _error(response)["code"] in ("malformed_json", "invalid_input")


def test_wrong_types_name_the_field(client: ApiClient) -> None:
    response = client.post("/api/v1/runs", json={"external": True, "priority": "high"})
    assert response.status_code == 422
    assert _error(response)["details"] == [
        {
            "field": "priority",
            "message": "Input should be a valid integer, unable to parse string as an integer",
        }
    ]
    response = client.post("/api/v1/runs", json={"external": True, "priority": 11})
    assert "priority" in str(_error(response)["message"])
    response = client.post("/api/v1/runs", json=["not", "an", "object"])
    assert response.status_code == 422


def test_unknown_routes_and_methods_are_json(client: ApiClient) -> None:
    response = client.get("/api/v1/nothing")
    assert response.status_code == 404 and _error(response)["code"] == "not_found"
    response = client.request("PUT", "/api/v1/runs")
    assert response.status_code == 405 and _error(response)["code"] == "method_not_allowed"
    response = client.get("/api/v1/runs/abc")
    assert response.status_code == 422 and _error(response)["details"][0]["field"] == "path.run_id"  # type: ignore[index]


def test_unexpected_errors_are_a_json_500_with_a_request_id(settings: Settings) -> None:
    # An open server: this test is about the error shape, not about access.
    app: FastAPI = create_app(settings.model_copy(update={"auth": "none"}))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret detail")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.get("/boom")

    response = anyio.run(call)
    assert response.status_code == 500
    error = _error(response)
    assert error["code"] == "internal_error"
    assert "secret detail" not in response.text
    assert error["details"]["request_id"] in str(error["message"])  # type: ignore[index]


def test_healthz(client: ApiClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}


def test_openapi_docs(client: ApiClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "/api/v1/runs" in schema["paths"] and "/api/v1/runs/{run_id}/metrics" in schema["paths"]
    assert client.get("/docs").status_code == 200
