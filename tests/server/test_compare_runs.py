"""GET /api/v1/compare/runs: the compare page's runs in one call, in the order asked, each
with the values GET /api/v1/runs/{id} and the runs list give it, and the ids that name no run
listed; GET /api/v1/compare/previews: their previews at an epoch in one call."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy.orm import Session

from server.artifacts import preview_paths
from server.preview.service import PreviewSampleFiles, record_previews
from server.settings import Settings
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


def _previews(db_session: Session, settings: Settings, run_id: int, epochs: list[int]) -> None:
    root = settings.artifacts_dir
    for epoch in epochs:
        samples = []
        for index in range(2):
            paths = preview_paths(root, run_id, epoch, index)
            for path in (paths.image, paths.truth, paths.prediction):
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((4, 4), index, dtype=np.uint8)).save(path)
            samples.append(PreviewSampleFiles(index, f"sample-{index}.png", paths))
        record_previews(db_session, root, run_id, epoch, samples)
    db_session.commit()


def test_previews_of_several_runs_at_the_epoch_each_shows_for_the_one_asked(
    client: ApiClient, db_session: Session, settings: Settings
) -> None:
    early, late, bare = (create_external(client, name) for name in ("early", "late", "bare"))
    _previews(db_session, settings, early["id"], [1, 2])
    _previews(db_session, settings, late["id"], [3])
    ids = f"{early['id']},{late['id']},{bare['id']},999999"

    def shown(query: str) -> list[int | None]:
        body = _get(client, f"/api/v1/compare/previews?run_ids={ids}{query}")
        assert body["missing"] == [999999]
        assert [item["run_id"] for item in body["items"]] == [early["id"], late["id"], bare["id"]]
        for item in body["items"]:
            own = f"/api/v1/runs/{item['run_id']}/previews"
            if item["epoch"] is not None:
                own += f"?epoch={item['epoch']}"
            assert {key: value for key, value in item.items() if key != "run_id"} == _get(
                client, own
            )
        return [item["epoch"] for item in body["items"]]

    assert shown("") == [2, 3, None], "each run's latest"
    assert shown("&epoch=2") == [2, 3, None], "the first after it when a run has none before"
    assert shown("&epoch=9") == [2, 3, None], "the latest before it"
    assert shown("&epoch=1") == [1, 3, None]
    assert client.get(f"/api/v1/compare/previews?run_ids={ids}&epoch=-1").status_code == 422
    assert client.get("/api/v1/compare/previews?run_ids=x").status_code == 422
