"""Speed of segtrack's tracking API next to MLflow's tracking server, measured fairly, as a table.

    .venv/bin/python -m bench.api_bench --mlflow-python /tmp/mlflow/bin/python   # PostgreSQL
    .venv/bin/python -m bench.api_bench --sqlite --mlflow-python /tmp/mlflow/bin/python
    .venv/bin/python -m bench.api_bench --no-mlflow                              # segtrack only

MLflow runs from a virtual environment of its own, so its dependencies stay out of segtrack's:
`python3 -m venv /tmp/mlflow && /tmp/mlflow/bin/pip install mlflow==3.17.2 'psycopg[binary]'`.

What makes the comparison fair:
- The same storage on both sides: each server gets a scratch PostgreSQL database of its own on the
  shared server at 127.0.0.1:5432 (`segtrack_bench_api_<pid>`, `mlflow_bench_api_<pid>`, dropped
  at the end), or with `--sqlite` a SQLite file each. segtrack gets a Redis db number of its own
  (`--redis-url`).
- One server process each, as their operators start them: segtrack with the CLI (`segtrack db
  upgrade`, an admin and a token made with `segtrack user/token create`, then `segtrack serve`),
  MLflow with `mlflow server --workers 1`. Every segtrack request carries the bearer token.
- Both settled before anything is timed: each answers its health check, MLflow has created its
  tables and started its job runner, both process trees have gone quiet (under a tenth of a core
  for three seconds), then a few untimed warm-up calls of every kind go to each.
- Identical workloads built before the timer: the same points (keys, steps, values from a seeded
  generator), serialised into each API's JSON body ahead of time. Batches are 1,000 points (10 keys
  x 100 steps, MLflow's `log-batch` limit); reads fetch one 10,000-point series whole.
- Interleaved rounds (segtrack, MLflow, segtrack, MLflow, ...), each round a slice of every
  measurement, and equal sample counts on both sides.

Figures on a shared 2-core machine are noisy: compare the two columns of one run, not runs.
segtrack-only figures follow the comparison (start-up, memory, a 10,000-run list, commit-to-SSE).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from contextlib import ExitStack
from pathlib import Path

import httpx
import redis

from bench import mlflow_peer, segtrack_figures
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
    build_workload,
    compare,
    print_comparison,
    send,
)
from bench.harness import (
    print_table,
    rss_mb,
    scratch_database,
    segtrack_api,
    segtrack_env,
    wait_quiet,
)

SEGTRACK_DATABASE = "segtrack_bench_api"
MLFLOW_DATABASE = "mlflow_bench_api"
REDIS_URL = "redis://127.0.0.1:6379/14"
"""segtrack's Redis db number in the benchmark: none of the tests' or the other benches'."""


def _segtrack_points(points: list[Point]) -> bytes:
    return json.dumps(
        {"points": [{"key": key, "step": step, "value": value} for key, step, value in points]}
    ).encode()


def prepare_segtrack(http: httpx.Client, work: Workload, warm: Workload) -> Side:
    """An external run per measurement, the 10,000-point series loaded (untimed) and checked,
    and every call of `work` and `warm` as segtrack ingest bodies."""

    def new_run(name: str) -> int:
        response = http.post("/api/v1/runs", json={"name": name, "external": True})
        response.raise_for_status()
        run_id: int = response.json()["id"]
        return run_id

    def calls(run_id: int, batches: list[list[Point]]) -> list[Call]:
        return [
            Call("POST", f"/api/v1/runs/{run_id}/metrics", _segtrack_points(b)) for b in batches
        ]

    history = new_run("history")
    for start in range(0, HISTORY_POINTS, 1000):
        send(http, calls(history, [work.history[start : start + 1000]])[0])
    read = Call("GET", f"/api/v1/runs/{history}/metrics?keys={HISTORY_KEY}")
    stored = send(http, read).json()["series"][HISTORY_KEY]["step"]
    assert len(stored) == HISTORY_POINTS, f"segtrack returned {len(stored)} points"
    warm_run = new_run("warm-up")
    return Side(
        name="segtrack",
        http=http,
        calls={
            SINGLE: calls(new_run("singles"), [[point] for point in work.singles]),
            BATCH: calls(new_run("batches"), work.batches),
            READ: [read] * work.reads,
        },
        warm_up=[
            *calls(warm_run, [[point] for point in warm.singles]),
            *calls(warm_run, warm.batches),
            *[read] * warm.reads,
        ],
    )


def _redis_or_none(url: str) -> str | None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        print(f"Redis at {url} unreachable: segtrack's events by database poll")
        return None
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sqlite", action="store_true", help="SQLite files on both sides")
    parser.add_argument("--singles", type=int, default=400, help="single writes per server")
    parser.add_argument("--batches", type=int, default=60, help="1,000-point batches per server")
    parser.add_argument("--reads", type=int, default=60, help="10,000-point reads per server")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    parser.add_argument("--seed", type=int, default=0, help="of the points' values")
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the list (segtrack)")
    parser.add_argument("--redis-url", default=REDIS_URL, help="segtrack's own Redis db")
    parser.add_argument("--mlflow-python", help="Python of a virtual environment with mlflow")
    parser.add_argument("--no-mlflow", action="store_true", help="segtrack only")
    args = parser.parse_args()
    for name in ("singles", "batches", "reads"):
        if getattr(args, name) % args.rounds:
            parser.error(f"--{name} must be a multiple of --rounds ({args.rounds})")
    if not args.no_mlflow:
        if not args.mlflow_python:
            parser.error("pass --mlflow-python PATH (MLflow's own environment) or --no-mlflow")
        mlflow_peer.check_python(args.mlflow_python, args.sqlite)

    work = build_workload(args.singles, args.batches, args.reads, args.seed)
    warm = build_workload(20, 3, 3, args.seed + 1)
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    with tempfile.TemporaryDirectory(prefix="segtrack-bench-") as temporary, ExitStack() as stack:
        folder = Path(temporary)
        if args.sqlite:
            database_url, redis_url = f"sqlite:///{folder / 'segtrack.db'}", None
            mlflow_store = f"sqlite:///{folder / 'mlflow.db'}"
        else:
            database_url = stack.enter_context(scratch_database(SEGTRACK_DATABASE))
            redis_url = _redis_or_none(args.redis_url)
            mlflow_store = stack.enter_context(scratch_database(MLFLOW_DATABASE))
        env = segtrack_env(database_url, folder / "data", redis_url)
        api = stack.enter_context(segtrack_api(env, folder / "segtrack.log"))
        ready_mb = rss_mb(api.pid)
        print(f"segtrack on {backend} answered after {api.ready_s:.1f} s", flush=True)
        http = stack.enter_context(httpx.Client(base_url=api.url, headers=api.headers, timeout=120))
        sides = [prepare_segtrack(http, work, warm)]
        roots = [api.pid]
        if not args.no_mlflow:
            base, mlflow_pid = stack.enter_context(
                mlflow_peer.server(args.mlflow_python, mlflow_store, folder)
            )
            peer = stack.enter_context(httpx.Client(base_url=f"{base}/api/2.0/mlflow", timeout=120))
            sides.append(mlflow_peer.prepare(peer, work, warm))
            roots.append(mlflow_pid)
        waited = wait_quiet(roots)
        print(
            f"servers settled ({waited:.0f} s until quiet); timing {args.rounds} rounds", flush=True
        )
        latencies = compare(sides, args.rounds)
        print_comparison(
            latencies, f"segtrack vs MLflow, both on {backend} (one server process each)"
        )

        extras = [
            ("server ready after start", f"{api.ready_s:.2f} s"),
            ("resident memory when ready", f"{ready_mb:.0f} MB"),
            *segtrack_figures.run_list(http, database_url, args.runs),
            segtrack_figures.commit_to_stream(api, database_url, redis_url),
            ("resident memory after the benchmark", f"{rss_mb(api.pid):.0f} MB"),
            (
                "torch loaded by the server",
                "yes" if segtrack_figures.loaded_torch(api.pid) else "no",
            ),
        ]
        print_table(f"segtrack only ({backend})", ("measurement", "segtrack"), extras)


if __name__ == "__main__":
    main()
