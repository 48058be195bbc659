"""GET /api/v1/compare/runs: the compare page's runs in one call, in the order asked, each
with the values GET /api/v1/runs/{id} and the runs list give it, and the ids that name no run
listed."""

from __future__ import annotations

from typing import Any

from tests.server.helpers import ApiClient, create_external


def _get(client: ApiClient, url: str) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# `duration_s` of a run without a finish is measured to the moment of the call.
MOVING = {"duration_s"}


def _still(run: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in run.items() if key not in MOVING}


def test_runs_in_one_call_equal_each_runs_own_answer(client: ApiClient) -> None:
    first = create_external(client, "first", params={"lr": 0.1}, tags=["a", "lr=0.1"])
    second = create_external(client, "second", params={"lr": 0.2})
    points = [
        {"key": "val/iou", "step": step, "value": step / 10, "epoch": step} for step in (1, 2)
    ]
    response = client.post(f"/api/v1/runs/{second['id']}/metrics", json={"points": points})
    assert response.status_code == 200, response.text
    ids = [second["id"], first["id"]]
    body = _get(client, f"/api/v1/compare/runs?run_ids={ids[0]},{ids[1]}&run_ids={ids[0]}")
    assert [run["id"] for run in body["items"]] == ids
    assert body["missing"] == []
    for run in body["items"]:
        own = _get(client, f"/api/v1/runs/{run['id']}")
        assert _still(run) == {key: own[key] for key in _still(run)}
        listed = _get(client, f"/api/v1/runs?filter=id%20%3D%20{run['id']}")["items"][0]
        assert {key: run[key] for key in _still(listed) if key != "columns"} == {
            key: value for key, value in _still(listed).items() if key != "columns"
        }
        assert set(run) >= {"config", "params", "dataset_path", "class_names", "metrics"}
    assert body["items"][0]["metrics"]["val/iou"]["last_value"] == 0.2
    assert body["items"][1]["tags"] == ["a", "lr=0.1"]


def test_ids_that_name_no_run_are_listed_and_the_rest_answered(client: ApiClient) -> None:
    run = create_external(client)
    body = _get(client, f"/api/v1/compare/runs?run_ids=999998,{run['id']},999999")
    assert [item["id"] for item in body["items"]] == [run["id"]]
    assert body["missing"] == [999998, 999999]


def test_bad_run_ids_are_refused_naming_what_is_allowed(client: ApiClient) -> None:
    malformed = client.get("/api/v1/compare/runs?run_ids=1,abc")
    assert malformed.status_code == 422
    assert "'abc'" in malformed.json()["error"]["message"]
    assert client.get("/api/v1/compare/runs?run_ids=").status_code == 422
    assert client.get("/api/v1/compare/runs").status_code == 422
    too_many = client.get(f"/api/v1/compare/runs?run_ids={','.join(map(str, range(1, 52)))}")
    assert too_many.status_code == 422
    assert "at most 50" in too_many.json()["error"]["message"]
    beyond = client.get("/api/v1/compare/runs?run_ids=99999999999")
    assert beyond.status_code == 422
