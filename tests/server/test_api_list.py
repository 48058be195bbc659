"""The runs list: filters, sorts, keyset pagination that returns every run exactly once, and the
CSV export of the same list."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from tests.server.helpers import ApiClient, create_external, valid_config

SORTS = [
    "-created_at",
    "created_at",
    "name",
    "-name",
    "status",
    "-best_val_iou",
    "best_val_iou",
    "last_val_iou",
    "-epochs_done",
    "duration",
    "-duration",
    "priority",
]


@pytest.fixture
def runs(client: ApiClient, shapes_dataset: Path) -> list[dict[str, object]]:
    """30 runs: 24 external ones (some finished, some with val/iou, with ties) and 6 training."""
    made = []
    for index in range(24):
        run = create_external(
            client, name=f"exp-{index % 5}", tags=["even" if index % 2 == 0 else "odd"]
        )
        if index % 3 == 0:
            iou = [0.5, 0.9, 0.7][index % 9 // 3]  # repeated values: ties to break by id
            client.post(
                f"/api/v1/runs/{run['id']}/metrics",
                json={
                    "points": [
                        {"key": "val/iou", "step": 1, "value": 0.1, "epoch": 1},
                        {"key": "val/iou", "step": 2, "value": iou, "epoch": 2},
                    ]
                },
            )
        if index % 4 == 0:
            client.patch(f"/api/v1/runs/{run['id']}", json={"status": "succeeded"})
        made.append(run)
    for index in range(6):
        body = {"config": valid_config(model="unet++" if index % 2 else "unet"), "priority": index}
        made.append(client.post("/api/v1/runs", json=body).json())
    return made


def _all(client: ApiClient, query: str, limit: int) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    for _ in range(100):
        params = f"{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(f"/api/v1/runs?{params}")
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


def test_cursor_walk_returns_every_run_once_in_order(
    client: ApiClient, runs: list[dict[str, object]]
) -> None:
    # Every sort over the same 30 runs (made once: they are the slow part).
    for sort in SORTS:
        whole = client.get(f"/api/v1/runs?sort={sort}&limit=500").json()["items"]
        walked = _all(client, f"sort={sort}", limit=7)
        assert [run["id"] for run in walked] == [run["id"] for run in whole], sort
        assert sorted(run["id"] for run in walked) == sorted(run["id"] for run in runs), sort  # type: ignore[type-var]
        field = {"best_val_iou": "best_val_iou", "duration": "duration_s"}.get(sort.lstrip("-"))
        if field is not None:
            # One response: running durations are all measured at the same moment there.
            values = [run[field] for run in whole]
            present = [value for value in values if value is not None]
            assert values[: len(present)] == present, f"{sort}: nulls come last"
            ordered = sorted(present, reverse=sort.startswith("-"))
            assert present == pytest.approx(ordered, abs=0.05), sort


def test_default_sort_is_newest_first(client: ApiClient, runs: list[dict[str, object]]) -> None:
    ids = [run["id"] for run in client.get("/api/v1/runs?limit=500").json()["items"]]
    assert ids == sorted((run["id"] for run in runs), reverse=True)  # type: ignore[type-var]


def test_filters(client: ApiClient, runs: list[dict[str, object]]) -> None:
    def ids(query: str) -> set[object]:
        response = client.get(f"/api/v1/runs?limit=500&{query}")
        assert response.status_code == 200, response.text
        return {run["id"] for run in response.json()["items"]}

    external = [run for run in runs if run["external"]]
    training = [run for run in runs if not run["external"]]
    assert ids("status=queued") == {run["id"] for run in training}
    assert ids("status=succeeded&status=queued") == ids("status=succeeded") | ids("status=queued")
    assert len(ids("status=succeeded")) == 6
    assert ids("tag=even") == {run["id"] for run in external[::2]}
    assert ids("tag=even&tag=odd") == set()
    assert ids("q=exp-3") == {run["id"] for run in external if run["name"] == "exp-3"}
    assert ids("model=unet%2B%2B") == {run["id"] for run in training[1::2]}
    assert ids("dataset=shapes") == {run["id"] for run in training}
    assert ids("external=false") == {run["id"] for run in training}
    assert len(ids("metric=val/iou>0.6")) == len(ids("metric=val/iou>=0.7"))
    high = ids("metric=val/iou>0.8")
    assert high and high < ids("metric=val/iou>0.6")
    assert ids("metric=val/iou>0.6&metric=val/iou<0.8") == ids("metric=val/iou=0.7")
    assert ids("metric=val/iou!=0.5") == ids("metric=val/iou>0.6")
    assert ids("metric=train/loss<1") == set()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("metric=val/iou~0.8", "metric"),
        ("metric=val/iou>high", "metric"),
        ("metric=>0.5", "metric"),
        ("sort=colour", "sort"),
        ("status=sleeping", "status"),
        ("cursor=garbage", "cursor"),
        ("limit=0", "query.limit"),
    ],
)
def test_bad_list_parameters_are_422(client: ApiClient, query: str, field: str) -> None:
    # Refused before any row is read, so no runs are made for it.
    response = client.get(f"/api/v1/runs?{query}")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert field in [item["field"] for item in error["details"]]
    if field == "metric":
        assert "<key><op><number>" in error["message"]


def test_cursor_of_another_sort_is_refused(
    client: ApiClient, runs: list[dict[str, object]]
) -> None:
    cursor = client.get("/api/v1/runs?limit=2").json()["next_cursor"]
    response = client.get(f"/api/v1/runs?limit=2&sort=name&cursor={cursor}")
    assert response.status_code == 422


def test_runs_csv_uses_the_same_filters(client: ApiClient, runs: list[dict[str, object]]) -> None:
    response = client.get("/api/v1/runs.csv?status=queued")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    frame = pd.read_csv(io.StringIO(response.text))
    assert len(frame) == 6
    assert {"id", "name", "status", "best_val_iou", "config.learning_rate", "tags"} <= set(
        frame.columns
    )
    assert set(frame["config.model"]) == {"unet", "unet++"}
    everything = pd.read_csv(io.StringIO(client.get("/api/v1/runs.csv").text))
    assert len(everything) == 30
    assert "metric.val/iou" in everything.columns
    assert everything["metric.val/iou"].max() == pytest.approx(0.9)
