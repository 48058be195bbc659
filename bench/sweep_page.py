"""A sweep with 1,000 finished trials, read through the real HTTP API: what its page loads.

    .venv/bin/python -m bench.sweep_page              # 1,000 trials of 10 epochs
    .venv/bin/python -m bench.sweep_page --trials 200

What it does, so that the figures mean something:
- A scratch PostgreSQL database of its own (`segtrack_bench_sweep_<pid>` on the shared server,
  dropped at the end), the schema made by `segtrack db upgrade`, the API started as an operator
  starts it (`segtrack serve`, one process, bearer token from `segtrack token create`).
- One bayes sweep over three keys (learning_rate, batch_size, loss) whose runs are inserted in SQL
  before the timer: each with its config and swept values, a val/iou summary and 10 per-epoch
  val/iou points; 85 % succeeded, 10 % pruned, 5 % failed. Then ANALYZE.
- `GET /api/v1/sweeps/{id}` (every run with its values and score, best run, best-so-far curve,
  parameter importance) asked 3 times untimed, then 20 times timed from this process over a
  keep-alive client: median and p95 of the whole request, JSON body read.

The target of issue 12: a sweep of 1,000 finished trials, its page ready in at most 300 ms (this
is the data the page draws from).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text

from bench.harness import ms, percentile, print_table, scratch_database, segtrack_api, segtrack_env
from server.db import create_db_engine
from server.models import Metric, MetricSummary, Run, Sweep, utcnow

TRIES = 20
WARM_UP = 3
EPOCHS = 10
SPEC: dict[str, Any] = {
    "name": "bench",
    "config": {"dataset": "shapes", "epochs": EPOCHS},
    "method": "bayes",
    "metric": {"name": "val/iou", "goal": "maximize"},
    "parameters": {
        "learning_rate": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
        "batch_size": {"values": [4, 8, 16, 32]},
        "loss": {"values": ["ce", "dice", "ce+dice"]},
    },
    "max_runs": 1000,
    "parallel": 4,
    "seed": 1,
}


def fill(database_url: str, trials: int) -> int:
    """Insert the sweep and its `trials` finished runs; returns the sweep's id."""
    engine = create_db_engine(database_url)
    rng = random.Random(5)
    now = utcnow()
    with engine.begin() as connection:
        sweep_id = connection.execute(
            insert(Sweep).returning(Sweep.id),
            {
                "name": "bench",
                "status": "finished",
                "method": "bayes",
                "metric": "val/iou",
                "goal": "maximize",
                "spec": {**SPEC, "max_runs": trials},
                "max_runs": trials,
                "parallel": 4,
                "seed": 1,
                "created_at": now,
                "updated_at": now,
            },
        ).scalar_one()
        runs, summaries, points = [], [], []
        for number in range(trials):
            learning_rate = 10 ** rng.uniform(-5, -1)
            swept: dict[str, Any] = {
                "learning_rate": learning_rate,
                "batch_size": rng.choice([4, 8, 16, 32]),
                "loss": rng.choice(["ce", "dice", "ce+dice"]),
            }
            status = "failed" if number % 20 == 0 else "pruned" if number % 10 == 1 else "succeeded"
            epochs = 0 if status == "failed" else 3 if status == "pruned" else EPOCHS
            peak = max(0.0, 0.9 - abs(learning_rate - 3e-3) * 50) * rng.uniform(0.8, 1)
            curve = [peak * (1 - 0.5**epoch) for epoch in range(1, epochs + 1)]
            run_id = number + 1
            runs.append(
                {
                    "id": run_id,
                    "name": f"bench #{number}",
                    "status": status,
                    "external": False,
                    "notes": "",
                    "priority": 0,
                    "queue": "gpu",
                    "attempt": 0,
                    "max_retries": 0,
                    "resume_requested": False,
                    "created_at": now,
                    "updated_at": now,
                    "epochs_done": epochs,
                    "config": {**SPEC["config"], **swept},
                    "sweep_id": sweep_id,
                    "trial_number": number,
                    "sweep_params": swept,
                }
            )
            if curve:
                summaries.append(
                    {
                        "run_id": run_id,
                        "key": "val/iou",
                        "last_step": epochs,
                        "last_value": curve[-1],
                        "min_value": min(curve),
                        "max_value": max(curve),
                        "count": epochs,
                    }
                )
            points += [
                {"run_id": run_id, "key": "val/iou", "step": e, "value": v, "epoch": e}
                for e, v in enumerate(curve, 1)
            ]
        connection.execute(insert(Run), runs)
        connection.execute(insert(MetricSummary), summaries)
        connection.execute(insert(Metric), points)
        connection.execute(text("SELECT setval('runs_id_seq', (SELECT max(id) FROM runs))"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))
    engine.dispose()
    return int(sweep_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, scratch_database("segtrack_bench_sweep") as url:
        env = segtrack_env(url, Path(folder) / "data", None, {"SEGTRACK_SWEEP_INTERVAL_S": "0"})
        with segtrack_api(env, Path(folder) / "api.log") as api:
            sweep_id = fill(url, args.trials)
            with httpx.Client(base_url=api.url, headers=api.headers, timeout=60) as http:
                times = []
                for attempt in range(WARM_UP + TRIES):
                    started = time.perf_counter()
                    response = http.get(f"/api/v1/sweeps/{sweep_id}")
                    body = response.json()
                    if attempt >= WARM_UP:
                        times.append(time.perf_counter() - started)
            importance = body.get("importance") or {}
            print_table(
                f"GET /api/v1/sweeps/{{id}}, {args.trials:,} finished trials of {EPOCHS} epochs, "
                f"{TRIES} tries after {WARM_UP} warm-up (ms)",
                ["status", "runs", "bytes", "median", "p95"],
                [
                    (
                        str(response.status_code),
                        str(len(body.get("runs", []))),
                        f"{len(response.content):,}",
                        ms(statistics.median(times)),
                        ms(percentile(times, 0.95)),
                    )
                ],
            )
            print("importance:", {key: round(value, 3) for key, value in importance.items()})


if __name__ == "__main__":
    main()
