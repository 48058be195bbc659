"""Speed of the tracking API, printed as a table, next to MLflow's tracking server when installed.

    .venv/bin/python bench/api_bench.py            # PostgreSQL (database segtrack_bench) + Redis
    .venv/bin/python bench/api_bench.py --sqlite   # embedded mode: SQLite, events by polling

Starts the API with uvicorn (one worker) in a subprocess on a throw-away database, then measures
single metric writes, batched ingest, history reads, the first page of a 10,000-run list, the delay
from a worker's commit to an SSE client, start-up time and memory. With `mlflow` importable it
runs `mlflow server` (SQLite backend) and measures the comparable calls over the same REST path.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import queue
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import redis
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from server.db import create_db_engine, make_session_factory, session_scope, upgrade_database
from server.events import notify_committed, record_event
from server.models import Run, utcnow

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BENCH_DATABASE = "segtrack_bench"
REDIS_URL = "redis://127.0.0.1:6379/0"
SINGLE = "single metric write p50 / p95"
BATCHED = "batched ingest (10,000-point batches)"
HISTORY = "10,000-point history read"


@dataclass
class Results:
    """Rows of the printed table; `peer` holds MLflow's figures by measurement name."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)
    peer: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, ours: str, target: str) -> None:
        self.rows.append((name, ours, target))
        print(f"  {name}: {ours}", flush=True)

    def print(self, title: str) -> None:
        headers = ("measurement", "segtrack", "target", "mlflow (same run)")
        table = [headers, *((*row, self.peer.get(row[0], "")) for row in self.rows)]
        widths = [max(len(row[index]) for row in table) for index in range(4)]
        line = "  ".join("-" * width for width in widths)
        print(f"\n{title}\n{line}")
        for row in table:
            cells = (str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
            print("  ".join(cells))
        print(line)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _loaded_torch(pid: int) -> bool:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return "libtorch" in maps or "/torch/" in maps


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _median_time(call: Callable[[], object], repeat: int = 15) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _wait_ready(url: str, process: subprocess.Popen[bytes], limit: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{url} not ready after {limit} s")


@contextmanager
def bench_database(sqlite: bool, data_dir: Path) -> Iterator[str]:
    if sqlite:
        url = f"sqlite:///{data_dir / 'segtrack.db'}"
        upgrade_database(url)
        yield url
        return
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {BENCH_DATABASE}"))
    url = make_url(POSTGRES_ADMIN).set(database=BENCH_DATABASE).render_as_string(False)
    upgrade_database(url)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)"))
        admin.dispose()


@contextmanager
def segtrack_server(env: dict[str, str], results: Results) -> Iterator[tuple[str, int]]:
    port = _free_port()
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "server.app:build_app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning",
        "--timeout-graceful-shutdown", "2",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    try:
        url = f"http://127.0.0.1:{port}"
        ready = _wait_ready(f"{url}/healthz", process, 30)
        results.add("server ready after start", f"{ready:.2f} s", "<= 3 s")
        results.add("resident memory when ready", f"{_rss_mb(process.pid):.0f} MB", "< 250 MB")
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)


def _external_run(http: httpx.Client, name: str) -> int:
    response = http.post("/api/v1/runs", json={"name": name, "external": True})
    response.raise_for_status()
    run_id: int = response.json()["id"]
    return run_id


def _batch_body(start_step: int, count: int, keys: int = 10) -> bytes:
    per_key = count // keys
    points = [
        {"key": f"metric_{key}", "step": start_step + step, "value": random.random()}
        for key in range(keys)
        for step in range(per_key)
    ]
    return json.dumps({"points": points}).encode()


def bench_segtrack(http: httpx.Client, results: Results, writes: int, batches: int) -> None:
    headers = {"content-type": "application/json"}
    run_id = _external_run(http, "single-writes")
    latencies = []
    for step in range(writes + 20):
        point = {"key": "loss", "step": step, "value": random.random()}
        started = time.perf_counter()
        http.post(f"/api/v1/runs/{run_id}/metrics", json={"points": [point]}).raise_for_status()
        if step >= 20:
            latencies.append(time.perf_counter() - started)
    latencies.sort()
    p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95)]
    results.add(SINGLE, f"{_ms(p50)} / {_ms(p95)}", "p50 <= 5 ms")

    run_id = _external_run(http, "batched")
    bodies = [_batch_body(index * 1000, 10_000) for index in range(batches)]
    started = time.perf_counter()
    for body in bodies:
        response = http.post(f"/api/v1/runs/{run_id}/metrics", content=body, headers=headers)
        response.raise_for_status()
    rate = batches * 10_000 / (time.perf_counter() - started)
    results.add(BATCHED, f"{rate:,.0f} points/s", ">= 50,000/s")

    run_id = _external_run(http, "history")
    history = [{"key": "loss", "step": step, "value": random.random()} for step in range(10_000)]
    http.post(f"/api/v1/runs/{run_id}/metrics", json={"points": history}).raise_for_status()
    url = f"/api/v1/runs/{run_id}/metrics?keys=loss"
    full = _median_time(lambda: http.get(url).raise_for_status())
    results.add(HISTORY, _ms(full), "<= 100 ms")
    thin = _median_time(lambda: http.get(f"{url}&max_points=500").raise_for_status())
    results.add("500-point downsampled read of it", _ms(thin), "<= 20 ms")


def bench_run_list(http: httpx.Client, database_url: str, results: Results, count: int) -> None:
    engine = create_db_engine(database_url)
    now = utcnow()
    statuses = ["succeeded", "failed", "running", "queued", "cancelled"]
    rows = [
        {
            "name": f"run-{index}",
            "status": statuses[index % 5],
            "external": True,
            "notes": "",
            "priority": index % 10,
            "queue": "gpu",
            "attempt": 0,
            "max_retries": 0,
            "resume_requested": False,
            "created_at": now - timedelta(seconds=count - index),
            "updated_at": now,
            "started_at": now - timedelta(seconds=count - index),
            "epochs_done": index % 50,
            "best_val_iou": random.random() if index % 3 else None,
            "model": "unet",
            "config": {"dataset": "demo", "epochs": 50, "learning_rate": 0.001},
        }
        for index in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(insert(Run), rows)
        if engine.dialect.name == "postgresql":
            connection.execute(text("ANALYZE runs"))
    engine.dispose()
    first = _median_time(lambda: http.get("/api/v1/runs?limit=50").raise_for_status())
    results.add(f"first page of a {count:,}-run list", _ms(first), "<= 50 ms")
    best = _median_time(
        lambda: http.get("/api/v1/runs?limit=50&sort=-best_val_iou").raise_for_status()
    )
    results.add("  same, sorted by best val/iou", _ms(best), "<= 50 ms")
    filtered = _median_time(
        lambda: http.get("/api/v1/runs?limit=50&status=running&q=run-1").raise_for_status()
    )
    results.add("  same, status + text filter", _ms(filtered), "<= 50 ms")


def bench_sse(url: str, database_url: str, redis_url: str | None, results: Results) -> None:
    """A worker-style commit (own session, then notify) until the SSE client has the event."""
    engine = create_db_engine(database_url)
    factory = make_session_factory(engine)
    received: queue.Queue[tuple[str, float]] = queue.Queue()
    ready = threading.Event()
    stop = threading.Event()

    def listen() -> None:
        try:
            with (
                httpx.Client(base_url=url, timeout=30) as http,
                http.stream("GET", "/api/v1/events") as response,
            ):
                for line in response.iter_lines():
                    if line.startswith("retry:"):
                        ready.set()
                    elif line.startswith("data:"):
                        marker = json.loads(line[5:]).get("marker")
                        if marker:
                            received.put((marker, time.perf_counter()))
                    if stop.is_set():
                        return
        except httpx.HTTPError:
            if not stop.is_set():
                raise

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    ready.wait(10)
    delays = []
    for index in range(30):
        marker = f"probe-{index}"
        started = time.perf_counter()
        with session_scope(factory) as session:
            record_event(session, "status", None, {"marker": marker})
        notify_committed(redis_url)
        got, at = received.get(timeout=10)
        assert got == marker
        delays.append(at - started)
        time.sleep(0.02)
    stop.set()
    engine.dispose()
    delays.sort()
    mode = "Redis pub/sub" if redis_url else "database poll"
    results.add(
        f"worker commit -> SSE client ({mode}) p50 / max",
        f"{_ms(delays[len(delays) // 2])} / {_ms(delays[-1])}",
        "<= 250 ms",
    )


def bench_mlflow(results: Results, work: Path, writes: int, python: str | None) -> None:
    """The same calls against `mlflow server` (SQLite backend), over its REST API.

    `python` is an interpreter that has mlflow (its own virtual environment keeps its
    dependencies away from segtrack's); by default this one, when mlflow is importable here.
    """
    if python is None:
        if importlib.util.find_spec("mlflow") is None:
            print("mlflow not installed; pip install mlflow (or pass --mlflow-python) to compare")
            return
        python = sys.executable
    port = _free_port()
    command = [
        python, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
        "--default-artifact-root", str(work / "mlartifacts"), "--workers", "1",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=work, stdout=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(f"{base}/health", process, 120)
        with httpx.Client(base_url=f"{base}/api/2.0/mlflow", timeout=120) as http:
            experiment = http.post("/experiments/create", json={"name": "bench"}).json()

            def new_run() -> str:
                body = {"experiment_id": experiment["experiment_id"], "start_time": 0}
                run_id: str = http.post("/runs/create", json=body).json()["run"]["info"]["run_id"]
                return run_id

            run_id = new_run()
            latencies = []
            for step in range(min(writes, 200) + 10):
                body = {"run_id": run_id, "key": "loss", "value": random.random(),
                        "timestamp": 0, "step": step}  # fmt: skip
                started = time.perf_counter()
                http.post("/runs/log-metric", json=body).raise_for_status()
                if step >= 10:
                    latencies.append(time.perf_counter() - started)
            latencies.sort()
            results.peer[SINGLE] = f"{_ms(latencies[len(latencies) // 2])} / " + _ms(
                latencies[int(len(latencies) * 0.95)]
            )
            run_id = new_run()
            started = time.perf_counter()
            for batch in range(10):
                metrics = [
                    {"key": "loss", "value": random.random(), "timestamp": 0, "step": step}
                    for step in range(batch * 1000, (batch + 1) * 1000)
                ]
                body = {"run_id": run_id, "metrics": metrics}
                http.post("/runs/log-batch", json=body).raise_for_status()
            rate = 10_000 / (time.perf_counter() - started)
            results.peer[BATCHED] = f"{rate:,.0f} points/s (log_batch of 1000)"

            def history() -> None:
                params: dict[str, str | int] = {
                    "run_id": run_id,
                    "metric_key": "loss",
                    "max_results": 25_000,
                }
                http.get("/metrics/get-history", params=params).raise_for_status()

            results.peer[HISTORY] = _ms(_median_time(history, repeat=5))
    finally:
        process.terminate()
        process.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sqlite", action="store_true", help="embedded mode: SQLite, no Redis")
    parser.add_argument("--writes", type=int, default=500, help="single metric writes")
    parser.add_argument("--batches", type=int, default=20, help="10,000-point batches")
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the list")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow comparison")
    parser.add_argument(
        "--mlflow-python", help="Python of a virtual environment with mlflow, for its server"
    )
    args = parser.parse_args()

    results = Results()
    with tempfile.TemporaryDirectory(prefix="segtrack-bench-") as temporary:
        work = Path(temporary)
        with bench_database(args.sqlite, work) as database_url:
            redis_url = None
            if not args.sqlite:
                try:
                    redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
                    redis_url = REDIS_URL
                except redis.RedisError:
                    print(f"Redis at {REDIS_URL} unreachable: events by database poll")
            env = {
                "SEGTRACK_DATA_DIR": str(work / "data"),
                "SEGTRACK_DATABASE_URL": database_url,
                "SEGTRACK_BROKER_URL": "memory://",
                **({"SEGTRACK_REDIS_URL": redis_url} if redis_url else {}),
            }
            backend = "SQLite (WAL)" if args.sqlite else "PostgreSQL"
            print(f"segtrack API on {backend}, one uvicorn worker", flush=True)
            with segtrack_server(env, results) as (url, pid):
                with httpx.Client(base_url=url, timeout=60) as http:
                    bench_segtrack(http, results, args.writes, args.batches)
                    bench_run_list(http, database_url, results, args.runs)
                bench_sse(url, database_url, redis_url, results)
                memory = f"{_rss_mb(pid):.0f} MB"
                results.add("resident memory after the benchmark", memory, "< 250 MB")
                torch = "yes" if _loaded_torch(pid) else "no"
                results.add("torch loaded by the server", torch, "no")
        if not args.no_mlflow:
            bench_mlflow(results, work, args.writes, args.mlflow_python)
    results.print(f"segtrack API benchmark ({backend})")


if __name__ == "__main__":
    main()
