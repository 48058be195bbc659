"""Sweeps in embedded mode: on SQLite the controller runs in the app's lifespan (no advisory
lock: one process), queues `parallel` runs, goes on as they finish and finishes the sweep."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server.app import create_app
from server.db import session_scope, upgrade_database
from server.metric.points import MetricPoint
from server.metric.service import record_metrics
from server.run.lifecycle import claim_run, finish_run
from server.settings import Settings
from tests.server.helpers import (
    ApiClient,
    RecordingTaskQueue,
    issue_token,
    valid_config,
    write_dataset,
)


def until(condition: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


def test_a_sweep_runs_to_its_end_on_sqlite(tmp_path: Path, task_queue: RecordingTaskQueue) -> None:
    settings = Settings(
        data_dir=tmp_path / "embedded",
        broker_url="memory://",
        dataset_roots=[tmp_path / "roots"],
        reaper_interval_s=0,
        sweep_interval_s=0.02,
        allowed_hosts=["testserver"],
    )
    upgrade_database(settings.database_url)
    write_dataset(tmp_path / "roots" / "shapes")
    app = create_app(settings, task_queue=task_queue)  # the controller's queue too
    spec = {
        "config": valid_config(),
        "method": "grid",
        "parameters": {"learning_rate": {"values": [0.1, 0.01, 0.001]}},
        "parallel": 2,
    }
    with ApiClient(app, issue_token(app.state.session_factory)) as client:
        created = client.post("/api/v1/sweeps", json=spec)
        assert created.status_code == 201, created.text
        url = f"/api/v1/sweeps/{created.json()['id']}"

        def queued() -> list[int]:
            runs = client.get(url).json()["runs"]
            return [run["id"] for run in runs if run["status"] == "queued"]

        trained: set[int] = set()
        while len(trained) < 3:
            for run_id in until(lambda: set(queued()) - trained, "queued runs"):
                with session_scope(app.state.session_factory) as session:
                    claim_run(session, run_id, worker="w", device="cpu")
                    record_metrics(session, run_id, [MetricPoint("val/iou", 1, 0.5, 1)])
                    finish_run(session, run_id, "succeeded")
                trained.add(run_id)
        sweep = until(
            lambda: (body := client.get(url).json())["status"] == "finished" and body, "end"
        )
    assert [run["trial_number"] for run in sweep["runs"]] == [0, 1, 2]
    assert sweep["counts"]["done"] == 3 and len(task_queue.sent) == 3
