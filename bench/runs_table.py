"""The runs table at scale: 100,000 runs on PostgreSQL, listed through the real HTTP API with
chosen config columns and filter-language filters (`server.run.filter_language`).

    .venv/bin/python -m bench.runs_table                 # 100,000 runs
    .venv/bin/python -m bench.runs_table --runs 20000 --explain

What it does, so that the figures mean something:
- A scratch PostgreSQL database of its own (`segtrack_bench_runs_<pid>` on the shared server,
  dropped at the end), the schema made by `segtrack db upgrade`, the API started as an operator
  starts it (`segtrack serve`, one process, bearer token from `segtrack token create`).
- Runs inserted in SQL before the timer: each a full TrainConfig (about 1.2 kB of jsonb) that
  differs in learning_rate, batch_size, model, optimizer, weight_decay, loss and seed, four
  metric summaries (val/iou, val/dice, val/loss, train/loss), one or two tags (one key:value
  `lr=...`), then ANALYZE.
- Each query is asked 3 times untimed (warm-up), then 20 times timed over HTTP from this
  process (a keep-alive client): median and p95 of the whole request, JSON body read.

The target of issue 12: the first page (50 rows) with three config columns, filtered with an
`or`, in at most 100 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from bench.harness import (
    ms,
    percentile,
    print_table,
    scratch_database,
    segtrack_api,
    segtrack_env,
    wait_quiet,
)
from server.db import create_db_engine
from server.errors import InvalidInput
from server.models import MetricSummary, Run, RunTag, utcnow
from server.run import run_list, service
from trainer.config import TrainConfig

TRIES = 20
WARM_UP = 3
CHUNK = 5000
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
BATCH_SIZES = [4, 8, 16, 32]
MODELS = ["unet", "unet++", "vgg16-unet"]
OPTIMIZERS = ["adam", "adamw", "sgd", "rmsprop"]
LOSSES = ["ce", "dice", "ce+dice", "focal"]
COLUMNS = "config.learning_rate,config.batch_size,config.model"

QUERIES: list[tuple[str, str]] = [
    (
        "target: 3 config columns, filter with an or",
        f"columns={COLUMNS}&filter=config.learning_rate = 1e-3 or config.model = 'unet++'",
    ),
    ("  no filter, 3 config columns", f"columns={COLUMNS}"),
    (
        "  selective or (about 1 run in 160 matches)",
        f"columns={COLUMNS}&filter=(config.learning_rate = 1e-4 and config.batch_size = 32"
        " and config.optimizer = 'sgd') or (config.seed = 7 and config.model = 'unet')",
    ),
    (
        "  or over config and a metric",
        f"columns={COLUMNS},metrics.val/iou.best"
        "&filter=metrics.val/iou.best > 0.9 or config.model = 'vgg16-unet'",
    ),
    (
        "  or over a key:value tag and status",
        f"columns={COLUMNS},tag.lr&filter=tag.lr = 1e-3 or status = 'failed'",
    ),
    (
        "  sorted by a config column, filter with an or",
        f"columns={COLUMNS}&sort=-config.learning_rate"
        "&filter=config.batch_size = 8 or config.model = 'unet++'",
    ),
    (
        "  sorted by a key:value tag column (numbers first)",
        f"columns={COLUMNS},tag.lr&sort=-tag.lr",
    ),
    (
        "  sorted by a metric column",
        f"columns={COLUMNS},metrics.val/iou.best&sort=-metrics.val/iou.best",
    ),
    (
        "  grouped by config.model (first page, with counts)",
        f"columns={COLUMNS}&group_by=config.model&filter=config.batch_size = 16 or"
        " config.learning_rate = 1e-2",
    ),
    ("  unknown key (422 listing the keys)", "filter=config.lerning_rate = 1"),
]


def _config(rng: random.Random, index: int) -> dict[str, Any]:
    config = TrainConfig(dataset="/data/shapes").model_dump(mode="json")
    config.update(
        learning_rate=rng.choice(LEARNING_RATES),
        batch_size=rng.choice(BATCH_SIZES),
        model=rng.choice(MODELS),
        optimizer=rng.choice(OPTIMIZERS),
        weight_decay=rng.choice([0.0, 1e-5, 1e-4]),
        loss=rng.choice(LOSSES),
        seed=index % 50,
    )
    return config


def fill(database_url: str, count: int) -> float:
    """Insert `count` runs with configs, metric summaries and tags; returns the seconds taken."""
    started = time.perf_counter()
    engine = create_db_engine(database_url)
    rng = random.Random(12)
    now = utcnow()
    statuses = ["succeeded"] * 6 + ["failed", "running", "cancelled", "queued"]
    with engine.begin() as connection:
        first_id = 1
        for chunk_start in range(0, count, CHUNK):
            runs, summaries, tags = [], [], []
            for index in range(chunk_start, min(count, chunk_start + CHUNK)):
                run_id = first_id + index
                config = _config(rng, index)
                iou = rng.random()
                runs.append(
                    {
                        "id": run_id,
                        "name": f"run-{index}",
                        "status": statuses[index % len(statuses)],
                        "external": False,
                        "notes": "",
                        "priority": 0,
                        "queue": "gpu",
                        "attempt": 0,
                        "max_retries": 0,
                        "resume_requested": False,
                        "created_at": now - timedelta(seconds=count - index),
                        "updated_at": now,
                        "epochs_done": 50,
                        "best_val_iou": iou,
                        "last_val_iou": iou * 0.95,
                        "model": config["model"],
                        "dataset_name": "shapes",
                        "config": config,
                    }
                )
                for key, last, low, high in (
                    ("val/iou", iou * 0.95, 0.1, iou),
                    ("val/dice", iou, 0.1, min(1.0, iou * 1.1)),
                    ("val/loss", 1 - iou, 1 - iou, 2.0),
                    ("train/loss", 0.9 - iou / 2, 0.9 - iou / 2, 2.5),
                ):
                    summaries.append(
                        {
                            "run_id": run_id,
                            "key": key,
                            "last_step": 50,
                            "last_value": last,
                            "min_value": low,
                            "max_value": high,
                            "count": 50,
                        }
                    )
                tags.append({"run_id": run_id, "tag": f"lr={config['learning_rate']:g}"})
                if index % 7 == 0:
                    tags.append({"run_id": run_id, "tag": "baseline"})
            connection.execute(insert(Run), runs)
            connection.execute(insert(MetricSummary), summaries)
            connection.execute(insert(RunTag), tags)
        connection.execute(text("SELECT setval('runs_id_seq', (SELECT max(id) FROM runs))"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE runs"))
        connection.execute(text("VACUUM ANALYZE metric_summaries"))
        connection.execute(text("VACUUM ANALYZE run_tags"))
    engine.dispose()
    return time.perf_counter() - started


def _path(query: str) -> str:
    parts = []
    for part in query.split("&"):
        name, _, value = part.partition("=")
        parts.append(f"{name}={quote(value, safe=',')}")
    return "/api/v1/runs?limit=50&" + "&".join(parts)


def time_query(http: httpx.Client, query: str) -> tuple[list[float], int, int]:
    """Seconds of each timed try, the status code and the rows of the last answer."""
    path = _path(query)
    for _ in range(WARM_UP):
        http.get(path)
    times = []
    response = None
    for _ in range(TRIES):
        started = time.perf_counter()
        response = http.get(path)
        response.json()
        times.append(time.perf_counter() - started)
    assert response is not None
    rows = len(response.json().get("items", [])) if response.status_code == 200 else 0
    return times, response.status_code, rows


def explain(database_url: str) -> None:
    """EXPLAIN ANALYZE of each query's list statement, built by the server's own code."""
    engine = create_db_engine(database_url)
    for label, query in QUERIES:
        parameters = dict(part.partition("=")[::2] for part in query.split("&"))
        with Session(engine) as session:
            try:
                run_filter = service.build_filter(
                    session,
                    statuses=[],
                    tags=[],
                    text=None,
                    dataset=None,
                    model=None,
                    metrics=[],
                    expression=parameters.get("filter"),
                )
            except InvalidInput:
                continue
            sort = service.parse_sort(
                parameters.get("sort", "-created_at"), parameters.get("group_by")
            )
            statement = run_list.first_page_statement(session, run_filter, sort, limit=50)
            compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
            cursor = session.connection().connection.cursor()
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")
            print(f"\nplan of {label.strip()!r}:")
            for (line,) in cursor.fetchall():
                print("  " + line)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--explain", action="store_true", help="print each query's plan")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, scratch_database("segtrack_bench_runs") as url:
        env = segtrack_env(url, Path(folder) / "data", None)
        with segtrack_api(env, Path(folder) / "api.log") as api:
            seconds = fill(url, args.runs)
            print(
                f"inserted {args.runs:,} runs (configs, metric summaries, tags) in {seconds:.0f} s"
            )
            wait_quiet([api.pid])
            with httpx.Client(base_url=api.url, headers=api.headers, timeout=60) as http:
                rows = []
                for label, query in QUERIES:
                    times, status, count = time_query(http, query)
                    rows.append(
                        (
                            label,
                            str(status),
                            str(count),
                            ms(statistics.median(times)),
                            ms(percentile(times, 0.95)),
                        )
                    )
                print_table(
                    f"runs list through HTTP, {args.runs:,} runs, first page of 50, "
                    f"{TRIES} tries after {WARM_UP} warm-up (ms)",
                    ["query", "status", "rows", "median", "p95"],
                    rows,
                )
                if args.explain:
                    explain(url)


if __name__ == "__main__":
    main()
