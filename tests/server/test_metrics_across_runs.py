"""Reads for the dashboard's run and compare pages: a 10,000-point series downsampled to the
chart's width, several runs' series in one call, and each run's values at an epoch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from server.metric.downsample import downsample
from tests.server.helpers import ApiClient, create_external


def _post(client: ApiClient, run_id: object, points: list[dict[str, object]]) -> None:
    response = client.post(f"/api/v1/runs/{run_id}/metrics", json={"points": points})
    assert response.status_code == 200, response.text


def _epochs(client: ApiClient, run_id: object, ious: list[float]) -> None:
    """Epoch metrics (epoch = step) plus a per-step loss logged without an epoch."""
    points: list[dict[str, object]] = []
    for epoch, iou in enumerate(ious, start=1):
        points += [
            {"key": "val/iou", "step": epoch, "value": iou, "epoch": epoch},
            {"key": "val/iou/circle", "step": epoch, "value": iou / 2, "epoch": epoch},
            {"key": "train/loss", "step": epoch, "value": 1.0 / epoch, "epoch": epoch},
        ]
    points += [{"key": "train/loss_step", "step": step, "value": 0.5} for step in range(1, 40)]
    _post(client, run_id, points)


def _get(client: ApiClient, url: str) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_10000_point_series_comes_back_at_the_charts_width(client: ApiClient) -> None:
    run = create_external(client, "long")
    _post(
        client,
        run["id"],
        [
            {"key": "train/loss", "step": step, "value": math.sin(step / 50)}
            for step in range(10_000)
        ],
    )
    series = _get(client, f"/api/v1/runs/{run['id']}/metrics?max_points=800")["series"]
    loss = series["train/loss"]
    assert len(loss["step"]) <= 800 and len(loss["value"]) == len(loss["step"])
    assert loss["downsampled"] is True and loss["count"] == 10_000
    assert loss["step"][0] == 0 and loss["step"][-1] == 9_999
    assert max(loss["value"]) == pytest.approx(loss["max"])
    assert min(loss["value"]) == pytest.approx(loss["min"])


def test_several_runs_series_in_one_call_in_the_order_asked(client: ApiClient) -> None:
    first = create_external(client, "first")
    second = create_external(client, "second")
    _epochs(client, first["id"], [0.1, 0.3, 0.2])
    _epochs(client, second["id"], [0.4, 0.5])
    _post(
        client,
        second["id"],
        [{"key": "val/loss", "step": step, "value": float(step)} for step in range(2_000)],
    )
    url = f"/api/v1/metrics/series?run_ids={second['id']},{first['id']}&keys=val/iou,val/loss"
    items = _get(client, url + "&max_points=100")["items"]
    assert [item["run_id"] for item in items] == [second["id"], first["id"]]
    assert set(items[0]["series"]) == {"val/iou", "val/loss"}
    assert set(items[1]["series"]) == {"val/iou"}
    assert items[1]["series"]["val/iou"]["value"] == pytest.approx([0.1, 0.3, 0.2])
    thinned = items[0]["series"]["val/loss"]
    assert thinned["downsampled"] and len(thinned["step"]) <= 100
    repeated = _get(client, f"/api/v1/metrics/series?run_ids={first['id']}&run_ids={first['id']}")
    assert len(repeated["items"]) == 1 and "train/loss_step" in repeated["items"][0]["series"]


def test_several_runs_series_equal_each_runs_own_answer(client: ApiClient) -> None:
    runs = [create_external(client, f"long-{index}") for index in range(3)]
    for index, run in enumerate(runs):
        _epochs(client, run["id"], [0.1 * index, 0.2, 0.3])
        _post(
            client,
            run["id"],
            [
                {"key": "val/loss", "step": step, "value": round(math.cos(step / (30 + index)), 2)}
                for step in range(index, 3_000 + 500 * index, 1 + index)
            ],
        )
    ids = ",".join(str(run["id"]) for run in runs)
    for query in ("max_points=97", "keys=val/loss,val/iou&max_points=500", "keys=lr"):
        items = _get(client, f"/api/v1/metrics/series?run_ids={ids}&{query}")["items"]
        for run, item in zip(runs, items, strict=True):
            own = _get(client, f"/api/v1/runs/{run['id']}/metrics?{query}")["series"]
            assert item == {"run_id": run["id"], "series": own}


def test_series_of_unknown_or_malformed_runs_are_refused(client: ApiClient) -> None:
    run = create_external(client)
    missing = client.get(f"/api/v1/metrics/series?run_ids={run['id']},999999")
    assert missing.status_code == 404
    assert "999999" in missing.json()["error"]["message"]
    assert missing.json()["error"]["details"] == {"missing": [999999]}
    malformed = client.get("/api/v1/metrics/series?run_ids=1,abc")
    assert malformed.status_code == 422 and "'abc'" in malformed.json()["error"]["message"]
    assert client.get("/api/v1/metrics/series?run_ids=").status_code == 422
    too_many = ",".join(str(index) for index in range(1, 60))
    assert client.get(f"/api/v1/metrics/series?run_ids={too_many}").status_code == 422


def test_values_at_an_epoch_best_and_last(client: ApiClient) -> None:
    first = create_external(client, "first")
    second = create_external(client, "second")
    _epochs(client, first["id"], [0.1, 0.3, 0.2])
    _epochs(client, second["id"], [0.4, 0.5])
    ids = f"{first['id']},{second['id']}"

    at_two = _get(client, f"/api/v1/metrics/at?run_ids={ids}&epoch=2")["items"]
    assert [item["epoch"] for item in at_two] == [2, 2]
    assert at_two[0]["values"] == pytest.approx(
        {"val/iou": 0.3, "val/iou/circle": 0.15, "train/loss": 0.5}
    )
    assert "train/loss_step" not in at_two[0]["values"], "per-step points have no epoch"

    at_three = _get(client, f"/api/v1/metrics/at?run_ids={ids}&epoch=3&keys=val/iou")["items"]
    assert at_three[0]["values"] == pytest.approx({"val/iou": 0.2})
    assert at_three[1] == {"run_id": second["id"], "epoch": 3, "values": {}}

    best = _get(client, f"/api/v1/metrics/at?run_ids={ids}&epoch=best")["items"]
    assert [item["epoch"] for item in best] == [2, 2]
    assert best[1]["values"]["val/iou"] == pytest.approx(0.5)
    last = _get(client, f"/api/v1/metrics/at?run_ids={ids}&epoch=LAST")["items"]
    assert [item["epoch"] for item in last] == [3, 2]
    assert last[0]["values"]["val/iou"] == pytest.approx(0.2)


def test_values_at_epoch_take_the_epochs_last_step_or_the_step_in_runs_without_epochs(
    client: ApiClient,
) -> None:
    tagged = create_external(client, "tagged")
    _post(
        client,
        tagged["id"],
        [
            {"key": "loss", "step": step, "value": float(step), "epoch": step // 10}
            for step in range(30)
        ],
    )
    items = _get(client, f"/api/v1/metrics/at?run_ids={tagged['id']}&epoch=1")["items"]
    assert items[0]["values"] == {"loss": 19.0}

    plain = create_external(client, "plain")
    _post(
        client,
        plain["id"],
        [{"key": "loss", "step": step, "value": step * 2.0} for step in range(5)],
    )
    at_three = _get(client, f"/api/v1/metrics/at?run_ids={plain['id']}&epoch=3")["items"][0]
    assert at_three == {"run_id": plain["id"], "epoch": 3, "values": {"loss": 6.0}}
    last = _get(client, f"/api/v1/metrics/at?run_ids={plain['id']}&epoch=last")["items"][0]
    assert last["epoch"] == 4 and last["values"] == {"loss": 8.0}

    empty = create_external(client, "empty")
    for word in ("best", "last"):
        item = _get(client, f"/api/v1/metrics/at?run_ids={empty['id']}&epoch={word}")["items"][0]
        assert item == {"run_id": empty["id"], "epoch": None, "values": {}}


def test_values_at_refuses_a_bad_epoch(client: ApiClient) -> None:
    run = create_external(client)
    response = client.get(f"/api/v1/metrics/at?run_ids={run['id']}&epoch=first")
    assert response.status_code == 422
    assert "'best' or 'last'" in response.json()["error"]["message"]
    assert client.get(f"/api/v1/metrics/at?run_ids={run['id']}").status_code == 422


def test_a_zoomed_range_comes_back_at_full_resolution_downsampled_across_it(
    client: ApiClient,
) -> None:
    runs = [create_external(client, f"zoom-{index}") for index in range(2)]
    for index, run in enumerate(runs):
        points = [
            {"key": "val/loss", "step": step, "value": math.sin(step / (40 + index))}
            for step in range(10_000)
        ]
        _post(client, run["id"], points)
    first = runs[0]["id"]
    whole = _get(client, f"/api/v1/runs/{first}/metrics?max_points=100")["series"]["val/loss"]
    assert not [step for step in whole["step"] if 2_000 < step < 2_060], "too coarse to zoom"

    url = f"/api/v1/runs/{first}/metrics?max_points=100&min_step=2000&max_step=2999"
    zoomed = _get(client, url)["series"]["val/loss"]
    steps = np.arange(2_000, 3_000)
    want_steps, want_values = downsample(steps, np.sin(steps / 40), 100)
    assert zoomed["step"] == want_steps.tolist()
    assert zoomed["value"] == pytest.approx(want_values.tolist())
    assert zoomed["count"] == 1_000 and zoomed["downsampled"] is True
    assert zoomed["last"]["step"] == 2_999

    exact = _get(client, f"/api/v1/runs/{first}/metrics?min_step=2000&max_step=2059")
    assert exact["series"]["val/loss"]["step"] == list(range(2_000, 2_060))
    after = f"/api/v1/runs/{first}/metrics?min_step=2000&max_step=2059&after_step=2049"
    assert _get(client, after)["series"]["val/loss"]["step"] == list(range(2_050, 2_060))

    ids = ",".join(str(run["id"]) for run in runs)
    many = _get(
        client, f"/api/v1/metrics/series?run_ids={ids}&max_points=100&min_step=2000&max_step=2999"
    )
    assert many["items"][0]["series"]["val/loss"] == zoomed
    second = _get(
        client, f"/api/v1/runs/{runs[1]['id']}/metrics?max_points=100&min_step=2000&max_step=2999"
    )
    assert many["items"][1]["series"]["val/loss"] == second["series"]["val/loss"]
    open_ended = _get(client, f"/api/v1/metrics/series?run_ids={ids}&min_step=9990")
    assert open_ended["items"][1]["series"]["val/loss"]["step"] == list(range(9_990, 10_000))


@pytest.mark.parametrize(
    "query", ["min_step=5&max_step=4", "min_step=-1", "max_step=abc", f"max_step={2**63}"]
)
def test_a_bad_step_range_is_refused(client: ApiClient, query: str) -> None:
    run = create_external(client)
    for url in (f"/api/v1/runs/{run['id']}/metrics", f"/api/v1/metrics/series?run_ids={run['id']}"):
        response = client.get(f"{url}{'&' if '?' in url else '?'}{query}")
        assert response.status_code == 422, response.text
    empty = client.get(f"/api/v1/runs/{run['id']}/metrics?min_step=5&max_step=4").json()
    assert "min_step (5) must be at most max_step (4)" in empty["error"]["message"]
