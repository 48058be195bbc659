"""Several runs' series read in one query on PostgreSQL (GET /api/v1/metrics/series): in step
order whatever order the database packs them in, downsampled to max_points exactly as one
run's series are (per bucket the earliest minimum, the latest maximum and the last point, plus
the first point); short series come whole, keys a run lacks are left out."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np

from server.metric.downsample import downsample
from tests.server.helpers import ApiClient, create_external


def _post(client: ApiClient, run_id: object, points: list[dict[str, object]]) -> None:
    response = client.post(f"/api/v1/runs/{run_id}/metrics", json={"points": points})
    assert response.status_code == 200, response.text


def _series(client: ApiClient, ids: list[int], max_points: int) -> list[dict[str, Any]]:
    query = ",".join(map(str, ids))
    response = client.get(f"/api/v1/metrics/series?run_ids={query}&max_points={max_points}")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_series_of_several_runs_keep_the_points_of_the_downsampling(client: ApiClient) -> None:
    rng = random.Random(3)
    curves: dict[int, dict[str, tuple[list[int], list[float]]]] = {}
    for index in range(3):
        run = create_external(client, f"long-{index}")
        # Uneven steps, plateaus (ties of minima and maxima) and a short key.
        steps = sorted(rng.sample(range(5, 40_000), 3000 + 1000 * index))
        wavy = [round(math.sin(step / (90 + index)), 1) for step in steps]
        short = list(range(1, 11))
        curves[run["id"]] = {
            "val/iou": (steps, wavy),
            "lr": (short, [1e-3 / step for step in short]),
        }
        for start in range(0, len(steps), 5000):
            _post(
                client,
                run["id"],
                [
                    {"key": "val/iou", "step": step, "value": value}
                    for step, value in zip(steps, wavy, strict=True)
                ][start : start + 5000],
            )
        _post(
            client,
            run["id"],
            [
                {"key": "lr", "step": step, "value": value}
                for step, value in zip(*curves[run["id"]]["lr"], strict=True)
            ],
        )
    ids = list(curves)
    items = _series(client, ids, 307)
    assert [item["run_id"] for item in items] == ids
    for item in items:
        assert sorted(item["series"]) == ["lr", "val/iou"]
        steps, values = curves[item["run_id"]]["val/iou"]
        want_steps, want_values = downsample(
            np.array(steps, dtype=np.int64), np.array(values, dtype=np.float64), 307
        )
        got = item["series"]["val/iou"]
        assert got["step"] == want_steps.tolist()
        assert got["value"] == want_values.tolist()
        assert got["downsampled"] is True and got["count"] == len(steps)
        assert got["min"] == min(values) and got["max"] == max(values)
        assert got["last"] == {"step": steps[-1], "value": values[-1]}
        short = item["series"]["lr"]
        assert short["step"] == list(range(1, 11)) and short["downsampled"] is False


def test_one_key_of_runs_that_lack_it(client: ApiClient) -> None:
    with_key = create_external(client, "with")
    without = create_external(client, "without")
    _post(client, with_key["id"], [{"key": "a", "step": s, "value": s % 7} for s in range(100)])
    _post(client, without["id"], [{"key": "b", "step": 1, "value": 1.0}])
    query = f"run_ids={with_key['id']},{without['id']}&keys=a&max_points=10"
    response = client.get(f"/api/v1/metrics/series?{query}")
    assert response.status_code == 200, response.text
    first, second = response.json()["items"]
    assert first["series"]["a"]["downsampled"] is True
    assert len(first["series"]["a"]["step"]) <= 10
    assert second["series"] == {}
