"""MLflow's tracking server as the peer of the API benchmark: started from its own virtual
environment on a store of its own, settled (tables made, job runner up), and the benchmark's
workload prepared as MLflow REST calls (`log-metric`, `log-batch`, `get-history`)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.comparison import (
    BATCH,
    HISTORY_KEY,
    HISTORY_POINTS,
    READ,
    SINGLE,
    Call,
    Point,
    Side,
    Workload,
    send,
)
from bench.harness import command_lines, free_port, process_tree, stop_process_group, wait_ready

VERSION = "3.17.2"
INSTALL = (
    "python3 -m venv /tmp/mlflow && "
    f"/tmp/mlflow/bin/pip install mlflow=={VERSION} 'psycopg[binary]'"
)
"""MLflow's own environment, away from segtrack's dependencies; psycopg for its PostgreSQL store."""
TIMESTAMP_MS = 1_700_000_000_000
"""MLflow wants a timestamp per point: a fixed one (plus the step) keeps the bodies identical."""


@contextmanager
def server(python: str, store_uri: str, work: Path) -> Iterator[tuple[str, int]]:
    """`mlflow server` on 127.0.0.1 once it answers, has its tables and runs its job runner."""
    port = free_port()
    command = [
        python, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", store_uri,
        "--default-artifact-root", str(work / "mlartifacts"), "--workers", "1",
    ]  # fmt: skip
    env = {name: value for name, value in os.environ.items() if not name.startswith("MLFLOW_")}
    with (work / "mlflow.log").open("wb") as log:
        process = subprocess.Popen(
            command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            ready = wait_ready(f"{base}/health", process, 300)
            # Tables: a search answers only once the store's migrations have run.
            search = {"max_results": 1}
            httpx.post(
                f"{base}/api/2.0/mlflow/experiments/search", json=search, timeout=60
            ).raise_for_status()
            runner = _wait_for_job_runner(process.pid, limit_s=120)
            print(f"MLflow answered after {ready:.1f} s; job runner: {runner}", flush=True)
            yield base, process.pid
        finally:
            stop_process_group(process)


def _wait_for_job_runner(pid: int, limit_s: float) -> str:
    """MLflow 3 starts a job runner (huey consumers) beside its server: wait for it to start."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        consumers = [line for line in command_lines(process_tree(pid)) if "huey_consumer" in line]
        if consumers:
            return f"{len(consumers)} huey consumers"
        time.sleep(0.5)
    return f"none after {limit_s:.0f} s (job execution off?)"


def _metrics(points: list[Point]) -> list[dict[str, object]]:
    return [
        {"key": key, "value": value, "timestamp": TIMESTAMP_MS + step, "step": step}
        for key, step, value in points
    ]


def prepare(http: httpx.Client, work: Workload, warm: Workload) -> Side:
    """An experiment with a run per measurement, the 10,000-point series loaded (untimed) and
    checked, and every call of `work` and `warm` as MLflow REST bodies."""
    experiment = send(http, Call("POST", "/experiments/create", b'{"name": "bench"}')).json()

    def new_run() -> str:
        body = json.dumps({"experiment_id": experiment["experiment_id"], "start_time": 0})
        created = send(http, Call("POST", "/runs/create", body.encode())).json()
        run_id: str = created["run"]["info"]["run_id"]
        return run_id

    def singles(run_id: str, points: list[Point]) -> list[Call]:
        return [
            Call("POST", "/runs/log-metric", json.dumps({"run_id": run_id, **m}).encode())
            for m in _metrics(points)
        ]

    def batches(run_id: str, batches: list[list[Point]]) -> list[Call]:
        return [
            Call(
                "POST",
                "/runs/log-batch",
                json.dumps({"run_id": run_id, "metrics": _metrics(b)}).encode(),
            )
            for b in batches
        ]

    history = new_run()
    for start in range(0, HISTORY_POINTS, 1000):
        send(http, batches(history, [work.history[start : start + 1000]])[0])
    query = f"run_id={history}&metric_key={HISTORY_KEY}&max_results={HISTORY_POINTS * 2}"
    read = Call("GET", f"/metrics/get-history?{query}")
    stored = send(http, read).json()["metrics"]
    assert len(stored) == HISTORY_POINTS, f"MLflow returned {len(stored)} points"
    warm_run = new_run()
    return Side(
        name="mlflow",
        http=http,
        calls={
            SINGLE: singles(new_run(), work.singles),
            BATCH: batches(new_run(), work.batches),
            READ: [read] * work.reads,
        },
        warm_up=[*singles(warm_run, warm.singles), *batches(warm_run, warm.batches)]
        + [read] * warm.reads,
    )


def check_python(python: str, sqlite: bool) -> None:
    """Exit with the install command when `python` lacks mlflow (or psycopg for PostgreSQL)."""
    imports = "import mlflow" if sqlite else "import mlflow, psycopg"
    done = subprocess.run([python, "-c", imports], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(
            f"{python} cannot `{imports}`: install them in MLflow's own environment "
            f"({INSTALL}), or pass --no-mlflow"
        )
