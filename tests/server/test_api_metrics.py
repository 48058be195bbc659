"""Metric ingest (idempotent, bounded, validated) and reads (filters, downsampling, CSV), plus
the summaries they maintain."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from tests.server.helpers import ApiClient, create_external


def _post(client: ApiClient, run_id: object, points: list[dict[str, object]]) -> dict[str, object]:
    response = client.post(f"/api/v1/runs/{run_id}/metrics", json={"points": points})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _epoch_points(epochs: int) -> list[dict[str, object]]:
    return [
        point
        for epoch in range(1, epochs + 1)
        for point in (
            {"key": "val/iou", "step": epoch, "value": 0.1 * epoch, "epoch": epoch},
            {"key": "train/loss", "step": epoch, "value": 1.0 / epoch, "epoch": epoch},
        )
    ]


def test_ingest_is_idempotent_on_replay(client: ApiClient) -> None:
    run = create_external(client)
    points = _epoch_points(5)
    first = _post(client, run["id"], points)
    assert first == {"written": 10, "new": 10, "keys": ["train/loss", "val/iou"]}
    replay = _post(client, run["id"], points)
    assert replay["new"] == 0
    detail = client.get(f"/api/v1/runs/{run['id']}").json()
    summary = detail["metrics"]["val/iou"]
    assert summary["count"] == 5
    assert summary["last_step"] == 5 and summary["last_value"] == pytest.approx(0.5)
    assert summary["min_value"] == pytest.approx(0.1)
    assert detail["epochs_done"] == 5
    assert detail["best_val_iou"] == pytest.approx(0.5)
    assert detail["last_val_iou"] == pytest.approx(0.5)
    assert detail["best_epoch"] == 5
    series = client.get(f"/api/v1/runs/{run['id']}/metrics").json()["series"]
    assert series["val/iou"]["step"] == [1, 2, 3, 4, 5]


def test_a_replay_with_new_values_keeps_summaries_exact(client: ApiClient) -> None:
    run = create_external(client)
    _post(client, run["id"], _epoch_points(3))
    _post(client, run["id"], [{"key": "val/iou", "step": 3, "value": 0.05, "epoch": 3}])
    detail = client.get(f"/api/v1/runs/{run['id']}").json()
    summary = detail["metrics"]["val/iou"]
    assert summary["count"] == 3
    assert summary["max_value"] == pytest.approx(0.2)
    assert summary["min_value"] == pytest.approx(0.05)
    assert summary["last_value"] == pytest.approx(0.05)
    assert detail["best_val_iou"] == pytest.approx(0.2)
    assert detail["best_epoch"] == 2
    assert detail["last_val_iou"] == pytest.approx(0.05)


def test_duplicates_within_a_batch_keep_the_last(client: ApiClient) -> None:
    run = create_external(client)
    body = _post(
        client,
        run["id"],
        [{"key": "a", "step": 1, "value": 1.0}, {"key": "a", "step": 1, "value": 2.0}],
    )
    assert body["written"] == 1
    series = client.get(f"/api/v1/runs/{run['id']}/metrics?keys=a").json()["series"]
    assert series["a"]["value"] == [2.0]


def test_more_than_10000_points_is_413(client: ApiClient) -> None:
    run = create_external(client)
    points = [{"key": "a", "step": step, "value": 0.0} for step in range(10_001)]
    response = client.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": points})
    assert response.status_code == 413
    assert "10000" in response.json()["error"]["message"]
    points.pop()
    assert _post(client, run["id"], points)["written"] == 10_000


@pytest.mark.parametrize(
    ("point", "field"),
    [
        ({"key": "a", "step": 0, "value": math.nan}, "points.1.value"),
        ({"key": "a", "step": 0, "value": math.inf}, "points.1.value"),
        ({"key": " a", "step": 0, "value": 1.0}, "points.1.key"),
        ({"key": "", "step": 0, "value": 1.0}, "points.1.key"),
        ({"key": "k" * 201, "step": 0, "value": 1.0}, "points.1.key"),
        ({"key": "a", "step": -1, "value": 1.0}, "points.1.step"),
        ({"key": "a", "step": 1.5, "value": 1.0}, "points.1.step"),
        ({"key": "a", "step": 0, "value": "high"}, "points.1.value"),
    ],
)
def test_bad_points_are_422_naming_the_index(
    client: ApiClient, point: dict[str, object], field: str
) -> None:
    run = create_external(client)
    good = {"key": "a", "step": 0, "value": 1.0}
    # json.dumps writes NaN/Infinity, as Python clients do.
    response = client.post(
        f"/api/v1/runs/{run['id']}/metrics",
        content=json.dumps({"points": [good, point]}),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert field in [item["field"] for item in response.json()["error"]["details"]]
    assert client.get(f"/api/v1/runs/{run['id']}/metrics").json()["series"] == {}


def test_ingest_into_an_unknown_run_is_404(client: ApiClient) -> None:
    response = client.post(
        "/api/v1/runs/424242/metrics", json={"points": [{"key": "a", "step": 0, "value": 1}]}
    )
    assert response.status_code == 404


def test_downsampling_keeps_extremes_first_and_last(client: ApiClient) -> None:
    run = create_external(client)
    steps = np.arange(10_000)
    values = np.sin(steps / 50.0)
    values[1234], values[8765] = 7.0, -7.0
    _post(
        client,
        run["id"],
        [
            {"key": "noisy", "step": int(s), "value": float(v)}
            for s, v in zip(steps, values, strict=True)
        ],
    )
    full = client.get(f"/api/v1/runs/{run['id']}/metrics?keys=noisy").json()["series"]["noisy"]
    assert len(full["step"]) == 10_000 and full["downsampled"] is False
    thin = client.get(f"/api/v1/runs/{run['id']}/metrics?keys=noisy&max_points=300").json()
    series = thin["series"]["noisy"]
    assert series["downsampled"] is True and series["count"] == 10_000
    assert len(series["step"]) <= 300
    assert series["step"] == sorted(series["step"])
    assert series["step"][0] == 0 and series["step"][-1] == 9_999
    assert 7.0 in series["value"] and -7.0 in series["value"]
    assert (series["min"], series["max"]) == (-7.0, 7.0)
    assert series["last"] == {"step": 9_999, "value": pytest.approx(values[-1])}
    again = client.get(f"/api/v1/runs/{run['id']}/metrics?keys=noisy&max_points=300").json()
    assert again == thin


def test_keys_and_after_step_filters(client: ApiClient) -> None:
    run = create_external(client)
    _post(client, run["id"], _epoch_points(6))
    url = f"/api/v1/runs/{run['id']}/metrics"
    series = client.get(f"{url}?keys=val/iou&after_step=4").json()["series"]
    assert list(series) == ["val/iou"]
    assert series["val/iou"]["step"] == [5, 6]
    both = client.get(f"{url}?keys=val/iou,train/loss").json()["series"]
    assert set(both) == {"val/iou", "train/loss"}
    repeated = client.get(f"{url}?keys=val/iou&keys=train/loss").json()["series"]
    assert set(repeated) == set(both)
    assert client.get(f"{url}?keys=missing").json()["series"] == {}
    assert client.get(f"{url}?max_points=2").status_code == 422


def test_monitor_ending_in_loss_is_minimised(client: ApiClient) -> None:
    run = create_external(client)
    _post(client, run["id"], _epoch_points(4))
    detail = client.get(f"/api/v1/runs/{run['id']}").json()
    assert detail["monitor"] == "val/iou"
    assert detail["best_metric"] == pytest.approx(0.4)


def test_metrics_csv_is_wide(client: ApiClient) -> None:
    run = create_external(client)
    empty = client.get(f"/api/v1/runs/{run['id']}/metrics.csv")
    assert empty.status_code == 200 and empty.text.strip() == "step,epoch"
    _post(
        client, run["id"], [*_epoch_points(3), {"key": "lr", "step": 2, "value": 0.01, "epoch": 2}]
    )
    response = client.get(f"/api/v1/runs/{run['id']}/metrics.csv")
    assert response.headers["content-type"].startswith("text/csv")
    frame = pd.read_csv(io.StringIO(response.text))
    assert list(frame.columns) == ["step", "epoch", "lr", "train/loss", "val/iou"]
    assert list(frame["step"]) == [1, 2, 3]
    assert frame["val/iou"].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert frame["lr"].isna().tolist() == [True, False, True]
