"""The config schema the new-run form is built from, and the API docs served without a CDN."""

from __future__ import annotations

from typing import Any

from tests.server.helpers import ApiClient
from trainer.config import TrainConfig


def test_config_schema_has_groups_defaults_and_help(client: ApiClient) -> None:
    response = client.get("/api/v1/config/schema")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    groups = schema["groups"]
    assert groups == ["data", "model", "optimisation", "augmentation", "advanced"]
    properties: dict[str, dict[str, Any]] = schema["properties"]
    assert set(properties) == set(TrainConfig.model_fields)
    for name, prop in properties.items():
        assert prop["group"] in groups, name
        assert prop["description"], name
        assert name == "dataset" or "default" in prop, f"{name} has no default"
    assert properties["milestones"]["default"] == [30, 60], "default_factory values are filled"
    assert schema["required"] == ["dataset"]
    defaults = {name: prop["default"] for name, prop in properties.items() if "default" in prop}
    assert TrainConfig.model_validate({**defaults, "dataset": "x"}) == TrainConfig(dataset="x")


def test_api_docs_load_swagger_ui_from_the_vendored_files(client: ApiClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "/static/vendor/swagger-ui/swagger-ui.css" in html
    assert "cdn" not in html.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE"):
        assert client.get(f"/static/vendor/swagger-ui/{asset}").status_code == 200, asset
    assert client.get("/openapi.json").json()["paths"]["/api/v1/config/schema"]
    assert client.get("/redoc").status_code == 404
