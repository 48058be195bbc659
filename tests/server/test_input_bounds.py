"""Inputs the database cannot store get a 4xx that names the field, never a 500: integers beyond
their column's type, digits of other scripts, NUL characters, NaN, forged cursors, unusable
server paths; and error bodies stay small however many problems a request has."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.server.helpers import ApiClient, create_external, valid_config

INT32_OVER = 2**31
INT64_OVER = 2**63


def _fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"].startswith("application/json"), response.text
    details = response.json()["error"]["details"]
    return [item["field"] for item in details]


def _refused(response: httpx.Response, field: str, status: int = 422) -> dict[str, Any]:
    """The error of a refused request, which names `field` (or the query parameter `field`)."""
    assert response.status_code == status, response.text
    assert {field, f"query.{field}"} & set(_fields(response)), response.text
    error: dict[str, Any] = response.json()["error"]
    return error


@pytest.fixture
def run_id(client: ApiClient) -> int:
    run = create_external(client)
    points = [{"key": "val/iou", "step": 1, "value": 0.5, "epoch": 1}]
    assert client.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": points}).is_success
    return int(run["id"])


@pytest.fixture
def dataset(client: ApiClient, shapes_dataset: Path) -> dict[str, Any]:
    response = client.post("/api/v1/datasets", json={"name": "shapes", "path": "shapes"})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# --- integers in paths and queries ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/runs/99999999999999999999", "path.run_id"),
        (f"/api/v1/runs/{INT32_OVER}", "path.run_id"),
        ("/api/v1/runs/0", "path.run_id"),
        (f"/api/v1/runs/{INT32_OVER}/metrics", "path.run_id"),
        (f"/api/v1/runs/{INT32_OVER}/previews", "path.run_id"),
        (f"/api/v1/runs/{INT32_OVER}/checkpoints/best", "path.run_id"),
        (f"/api/v1/runs/{{run}}/previews/{INT32_OVER}/0/image.png", "path.epoch"),
        (f"/api/v1/runs/{{run}}/previews/1/{INT32_OVER}/image.png", "path.sample"),
        (f"/api/v1/runs/{{run}}/metrics?after_step={INT64_OVER}", "after_step"),
        (f"/api/v1/runs/{{run}}/previews?epoch={INT32_OVER}", "epoch"),
        ("/api/v1/metrics/series?run_ids=%C2%B2", "run_ids"),
        ("/api/v1/metrics/series?run_ids=%D9%A3", "run_ids"),
        (f"/api/v1/metrics/series?run_ids={INT32_OVER}", "run_ids"),
        ("/api/v1/metrics/at?run_ids={run}&epoch=%C2%B2", "epoch"),
        (f"/api/v1/metrics/at?run_ids={{run}}&epoch={INT32_OVER}", "epoch"),
        ("/api/v1/runs?metric=val/iou>%D9%A1", "metric"),
        ("/api/v1/datasets/99999999999", "path.id_or_name"),
        ("/api/v1/datasets/%C2%B2", "path.id_or_name"),
        (f"/api/v1/datasets/shapes/samples?offset={INT32_OVER}", "offset"),
        (f"/api/v1/datasets/shapes/samples/{INT32_OVER}/image.png", "path.index"),
    ],
)
def test_integers_beyond_the_columns_and_other_digits_are_422(
    client: ApiClient, run_id: int, dataset: dict[str, Any], url: str, field: str
) -> None:
    _refused(client.get(url.format(run=run_id)), field)


@pytest.mark.parametrize("text", ["%C2%B2", "%D9%A3", str(INT32_OVER), "99999999999999999999"])
def test_free_text_filters_that_look_like_ids_are_searched_as_text(
    client: ApiClient, run_id: int, text: str
) -> None:
    for parameter in ("q", "dataset"):
        response = client.get(f"/api/v1/runs?{parameter}={text}")
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []


def test_a_run_id_in_q_still_finds_the_run(client: ApiClient, run_id: int) -> None:
    items = client.get(f"/api/v1/runs?q={run_id}").json()["items"]
    assert [item["id"] for item in items] == [run_id]


# --- integers in bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "field"),
    [
        ({"key": "a", "step": 1, "value": 1.0, "epoch": INT32_OVER}, "points.0.epoch"),
        ({"key": "a", "step": INT64_OVER, "value": 1.0}, "points.0.step"),
        ({"key": "a\u0000b", "step": 1, "value": 1.0}, "points.0.key"),
    ],
)
def test_metric_points_the_columns_cannot_store_are_422(
    client: ApiClient, run_id: int, point: dict[str, Any], field: str
) -> None:
    _refused(client.post(f"/api/v1/runs/{run_id}/metrics", json={"points": [point]}), field)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        # The trainer's own bounds name the config key; the server's checks say `config.`.
        ({"seed": 2**40}, "seed"),
        ({"warmup_epochs": INT32_OVER}, "warmup_epochs"),
        ({"milestones": [1, INT64_OVER]}, "milestones.1"),
        ({"monitor": "val/iou/" + "x" * 200}, "monitor"),
        ({"init_from": f"run:{INT32_OVER}"}, "config.init_from"),
        ({"learning_rate": float("inf")}, "config.learning_rate"),
    ],
)
def test_config_values_beyond_what_is_stored_are_422(
    client: ApiClient, shapes_dataset: Path, change: dict[str, Any], field: str
) -> None:
    body = json.dumps({"config": valid_config(**change)}, allow_nan=True)
    response = client.post(
        "/api/v1/runs", content=body, headers={"content-type": "application/json"}
    )
    _refused(response, field)


# --- NUL, NaN and unusable text -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"external": True, "name": "a\u0000b"}, "name"),
        ({"external": True, "tags": ["ok", "a\u0000"]}, "tags.1"),
        ({"external": True, "notes": "\u0000"}, "notes"),
        ({"external": True, "params": {"x": {"y": "a\u0000"}}}, "params.x.y"),
        ({"external": True, "params": {"a\u0000": 1}}, "params"),
        ({"config": valid_config(dataset="shapes\u0000")}, "config.dataset"),
        (
            {"config": valid_config(augment=[{"name": "Blur", "params": {"x": "\u0000"}}])},
            "config.augment.0.params.x",
        ),
    ],
)
def test_nul_characters_in_any_text_are_422(
    client: ApiClient, shapes_dataset: Path, body: dict[str, Any], field: str
) -> None:
    _refused(client.post("/api/v1/runs", json=body), field)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"external": true, "params": {"lr": NaN}}', "params.lr"),
        (b'{"external": true, "params": {"lr": [1, Infinity]}}', "params.lr.1"),
        (b'{"external": true, "params": {"s": "\\ud800"}}', "params.s"),
    ],
)
def test_values_jsonb_cannot_store_are_422(client: ApiClient, raw: bytes, field: str) -> None:
    response = client.post(
        "/api/v1/runs", content=raw, headers={"content-type": "application/json"}
    )
    _refused(response, field)


def test_clone_overrides_are_checked_too(client: ApiClient, shapes_dataset: Path) -> None:
    run = client.post("/api/v1/runs", json={"config": valid_config()}).json()
    response = client.post(
        f"/api/v1/runs/{run['id']}/clone",
        content=b'{"overrides": {"learning_rate": NaN}}',
        headers={"content-type": "application/json"},
    )
    _refused(response, "overrides.learning_rate")


def test_patches_refuse_nul_characters(client: ApiClient, run_id: int) -> None:
    for body, field in (
        ({"name": "\u0000"}, "name"),
        ({"notes": "a\u0000"}, "notes"),
        ({"status": "failed", "failure_reason": "\u0000"}, "failure_reason"),
    ):
        _refused(client.patch(f"/api/v1/runs/{run_id}", json=body), field)


@pytest.mark.parametrize(
    "query",
    ["q=a%00b", "tag=a%00", "model=%00", "dataset=%00", "metric=val/iou%00>0.5", "status=%00"],
)
def test_nul_characters_in_queries_are_422(client: ApiClient, query: str) -> None:
    field = query.split("=", 1)[0]
    response = client.get(f"/api/v1/runs?{query}")
    assert response.status_code == 422, response.text
    assert any(item == field or item.startswith(f"query.{field}") for item in _fields(response))


def test_nul_characters_in_metric_keys_asked_for_are_422(client: ApiClient, run_id: int) -> None:
    response = client.get(f"/api/v1/runs/{run_id}/metrics?keys=a%00")
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("~nosuchuser/data", "names no user"),
        ("shapes\u0000", "NUL"),
        ("x" * 300, "at most 255"),
        ("/".join(["abcdefgh"] * 600), "at most 4096"),
    ],
)
def test_dataset_paths_the_server_cannot_look_up_are_422(
    client: ApiClient, path: str, says: str
) -> None:
    response = client.post("/api/v1/datasets", json={"name": "bad", "path": path})
    error = _refused(response, "path")
    assert says in str(error["details"]), error


def test_unknown_home_in_a_config_path_is_422(client: ApiClient) -> None:
    response = client.post("/api/v1/runs", json={"config": valid_config("~nosuchuser/x")})
    error = _refused(response, "config.dataset")
    assert "names no user" in error["message"]


def test_dataset_names_with_nul_are_422(client: ApiClient) -> None:
    _refused(client.get("/api/v1/datasets/a%00b"), "path.id_or_name")


# --- cursors --------------------------------------------------------------------------------------


def _cursor(data: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


NOW = "2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("sort", "data"),
    [
        ("-created_at", {"s": "-created_at", "v": NOW, "id": INT32_OVER, "now": NOW}),
        ("-created_at", {"s": "-created_at", "v": NOW, "id": "7", "now": NOW}),
        ("-created_at", {"s": "-created_at", "v": NOW, "id": True, "now": NOW}),
        ("-created_at", {"s": "-created_at", "v": 5, "id": 1, "now": NOW}),
        ("-created_at", {"s": "-created_at", "v": NOW, "id": 1, "now": "2026-01-01T00:00:00"}),
        ("-created_at", {"s": "-created_at", "v": NOW, "id": 1, "now": "\u0000"}),
        ("name", {"s": "name", "v": {"a": 1}, "id": 1, "now": NOW}),
        ("name", {"s": "name", "v": "a\u0000", "id": 1, "now": NOW}),
        ("epochs_done", {"s": "epochs_done", "v": INT32_OVER, "id": 1, "now": NOW}),
        ("epochs_done", {"s": "epochs_done", "v": "12", "id": 1, "now": NOW}),
        ("best_val_iou", {"s": "best_val_iou", "v": "0.5", "id": 1, "now": NOW}),
        ("-created_at", ["not", "an", "object"]),
        ("-created_at", "just text"),
    ],
)
def test_forged_cursors_are_422(client: ApiClient, run_id: int, sort: str, data: Any) -> None:
    response = client.get(f"/api/v1/runs?sort={sort}&cursor={_cursor(data)}")
    _refused(response, "cursor")


@pytest.mark.parametrize("cursor", ["%C2%B2", "%00", "@@@", "e30", "x" * 1999])
def test_garbled_cursors_are_422(client: ApiClient, cursor: str) -> None:
    _refused(client.get(f"/api/v1/runs?cursor={cursor}"), "cursor")


def test_a_cursor_with_a_null_value_of_a_nullable_sort_still_pages(
    client: ApiClient, run_id: int
) -> None:
    cursor = _cursor({"s": "best_val_iou", "v": None, "id": INT32_OVER - 1, "now": NOW})
    response = client.get(f"/api/v1/runs?sort=best_val_iou&cursor={cursor}")
    assert response.status_code == 200, response.text


# --- error bodies stay small ----------------------------------------------------------------------


def test_a_hundred_thousand_unknown_config_keys_answer_in_kilobytes(
    client: ApiClient, shapes_dataset: Path
) -> None:
    config = {**valid_config(), **{f"unknown_{index}": index for index in range(100_000)}}
    response = client.post("/api/v1/runs", json={"config": config})
    assert response.status_code == 422
    assert len(response.content) < 100_000
    details = response.json()["error"]["details"]
    assert len(details) == 51
    assert details[-1]["message"] == "and 99950 more problems not listed"


def test_a_hundred_thousand_unknown_body_fields_answer_in_kilobytes(client: ApiClient) -> None:
    body = {"external": True, **{f"unknown_{index}": index for index in range(100_000)}}
    response = client.post("/api/v1/runs", json=body)
    assert response.status_code == 422
    assert len(response.content) < 100_000
    error = response.json()["error"]
    assert len(error["details"]) == 51
    assert "more problems not listed" in error["details"][-1]["message"]


def test_huge_fields_and_values_are_not_echoed_back(
    client: ApiClient, shapes_dataset: Path
) -> None:
    config = {**valid_config(), "x" * 1_000_000: 1, "loss": "y" * 1_000_000}
    response = client.post("/api/v1/runs", json={"config": config})
    assert response.status_code == 422
    assert len(response.content) < 20_000


@pytest.mark.parametrize("run", [str(INT32_OVER), "99999999999999999999"])
def test_run_pages_of_ids_beyond_the_column_are_not_found(client: ApiClient, run: str) -> None:
    assert client.get(f"/runs/{run}").status_code == 404
