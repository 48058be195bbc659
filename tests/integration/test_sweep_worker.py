"""Sweeps end to end: a real API process (its sweep controller in the lifespan) and a real Celery
worker through Redis and PostgreSQL. A 6-run grid with `parallel: 2` runs to completion across a
restart of the API; median pruning stops runs whose learning rate leaves them behind at an epoch
end, ending them `pruned` with their epochs and checkpoints kept."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest

from segtrack.client import SegtrackClient
from tests.integration.services import (
    TINY,
    Service,
    answers,
    serving,
    wait_for,
)
from trainer.data.demo import make_demo_dataset


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data_dir = tmp_path_factory.mktemp("sweeps")
    make_demo_dataset(data_dir / "datasets" / "demo", count=16, size=32, seed=7)
    settings = {"SEGTRACK_REAPER_INTERVAL_S": "0.5", "SEGTRACK_SWEEP_INTERVAL_S": "0.2"}
    with serving(data_dir, "sweeps", settings, ["--slots", "2"]) as running:
        yield running


@pytest.fixture
def client(service: Service) -> Iterator[SegtrackClient]:
    with SegtrackClient(service.url, token=service.token, timeout=30) as opened:
        yield opened


def restart_api(service: Service) -> None:
    """Stop the API process and start a new one on the same database and port."""
    assert service.api is not None
    service.api.send_signal(signal.SIGTERM)
    service.api.wait(timeout=30)
    service.start_api(int(service.url.rsplit(":", 1)[1]))


def finished(client: SegtrackClient, sweep_id: int) -> dict[str, Any] | None:
    try:
        sweep = client.get_sweep(sweep_id)
    except Exception:  # the API is restarting
        return None
    return sweep if sweep["status"] == "finished" else None


def test_a_grid_of_six_runs_two_at_a_time_survives_an_api_restart(
    client: SegtrackClient, service: Service
) -> None:
    sweep = client.create_sweep(
        {
            "name": "grid",
            "config": {**TINY, "epochs": 1},
            "method": "grid",
            "parameters": {
                "learning_rate": {"values": [0.03, 0.01, 0.003]},
                "batch_size": {"values": [4, 8]},
            },
            "parallel": 2,
        }
    )
    assert sweep["max_runs"] == 6

    def two_done() -> bool:
        runs: list[dict[str, Any]] = client.get_sweep(sweep["id"])["runs"]
        return len([run for run in runs if run["status"] == "succeeded"]) >= 2

    wait_for(two_done, 120, "two finished runs")
    restart_api(service)
    wait_for(lambda: answers(client), 60, "the restarted API")
    final = wait_for(lambda: finished(client, sweep["id"]), 240, "the sweep to finish")

    runs = final["runs"]
    assert [run["trial_number"] for run in runs] == [0, 1, 2, 3, 4, 5]
    assert {run["status"] for run in runs} == {"succeeded"}, [r["failure_reason"] for r in runs]
    assert len({tuple(sorted(run["params"].items())) for run in runs}) == 6
    assert final["counts"]["done"] == 6
    assert final["best_run"] is not None and final["best_value"] == max(
        run["value"] for run in runs
    )
    assert final["importance"] is not None and len(final["best_so_far"]) == 6
    for run in runs:
        stored = client.get_run(run["id"])
        assert stored["config"]["learning_rate"] == run["params"]["learning_rate"]
        assert stored["started_at"] is not None


def test_median_pruning_stops_a_run_left_behind_at_an_epoch_end(client: SegtrackClient) -> None:
    epochs = 8
    sweep = client.create_sweep(
        {
            "name": "pruned",
            "config": {**TINY, "epochs": epochs, "batch_size": 2, "learning_rate": 0.01},
            "method": "grid",
            # The first two learn; the last two hardly move from where they started.
            "parameters": {"learning_rate": {"values": [0.02, 0.01, 1e-7, 1e-8]}},
            "early_terminate": {"type": "median", "min_iter": 1, "n_startup_trials": 2},
            "parallel": 2,
        }
    )
    final = wait_for(lambda: finished(client, sweep["id"]), 240, "the sweep to finish")
    pruned = [run for run in final["runs"] if run["status"] == "pruned"]
    assert pruned, [(run["status"], run["value"], run["epochs_done"]) for run in final["runs"]]
    assert {run["params"]["learning_rate"] for run in pruned} <= {1e-7, 1e-8}
    assert final["counts"]["pruned"] == len(pruned) and final["counts"]["done"] >= 2
    for run in pruned:
        stored = client.get_run(run["id"])
        assert 1 <= stored["epochs_done"] < epochs
        assert (
            stored["failure_reason"] == f"pruned by its sweep after epoch {stored['epochs_done']}"
        )
        series = client.metrics(run["id"], keys=["val/iou"])
        assert series["val/iou"]["step"] == list(range(1, stored["epochs_done"] + 1))
        checkpoints = client._call("GET", f"/api/v1/runs/{run['id']}/checkpoints")
        last = [item for item in checkpoints["checkpoints"] if item["kind"] == "last"]
        assert last and last[0]["epoch"] == stored["epochs_done"]
