"""The compare page at scale: 50 runs x 10,000 points per metric on PostgreSQL, opened in
Chromium, timed from navigation to the page's "compare-first-chart-drawn" mark (its first
chart, val/iou, has every run's series and has drawn them) and to "compare-charts-drawn" (all
four default charts have).

    .venv/bin/python -m bench.compare_page
    .venv/bin/python -m bench.compare_page --runs 20 --points 2000 --tries 5

What it does, so that the figure means something:
- A scratch PostgreSQL database of its own (`segtrack_bench_compare_<pid>` on the shared server,
  dropped at the end), the schema made by `segtrack db upgrade`, the API started as an operator
  starts it (`segtrack serve`, one process, bearer token from `segtrack token create`).
- Runs inserted in SQL before the timer, each with a full TrainConfig that differs in
  learning_rate and seed, and 10,000 epochs of `val/iou`, `val/loss`, `train/loss` and `lr`
  (COPY into `metrics`, with their summaries and rollups), then ANALYZE.
- Debian's Chromium (headless, through Playwright) with a 1440x900 window, the token sent as an
  `Authorization` header. Each try opens a fresh page; 2 untimed warm-up tries, then the timed
  ones (a fresh context: no cached scripts). The page reads its runs in one call
  (`GET /api/v1/compare/runs`) and asks for each chart's series of every run in one call
  (`GET /api/v1/metrics/series`), downsampled to the chart's width in pixels (`max_points`),
  so the figure includes the server's reads and downsampling of every point; the runs and the
  first chart's series go out together, the other charts' once the first has come.
- Printed: median and p95 of navigation -> the first chart drawn (the target of issue 12:
  <= 500 ms to a drawn chart), -> all four drawn, of navigation -> DOMContentLoaded, of the
  slowest series request and of when the runs and the series were asked for and read.
  The machine is shared: print `uptime` beside the figures.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, sync_playwright
from sqlalchemy import insert, text

from bench.harness import ms, percentile, print_table, scratch_database, segtrack_api, segtrack_env
from server.db import create_db_engine
from server.metric.rollup import rebuild_rollups
from server.models import MetricSummary, Run, utcnow
from trainer.config import TrainConfig

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
KEYS = ("val/iou", "val/loss", "train/loss", "lr")
WARM_UP = 2
DRAWN_MARK = "compare-charts-drawn"
FIRST_MARK = "compare-first-chart-drawn"


def _curve(key: str, run: int, step: int) -> float:
    """A made-up but plausible value of `key` at `step` for run number `run`."""
    progress = 1 - math.exp(-step / (800 + 60 * run))
    wobble = 0.02 * math.sin(step / 37 + run)
    if key == "val/iou":
        return 0.85 * progress + wobble
    if key == "lr":
        return 1e-3 * (1 + math.cos(math.pi * step / 10_000)) / 2
    return 2.0 - 1.6 * progress + wobble


def fill(database_url: str, runs: int, points: int) -> tuple[list[int], float]:
    """Insert `runs` runs with `points` epochs of each of KEYS; their ids and the seconds taken."""
    started = time.perf_counter()
    engine = create_db_engine(database_url)
    now = utcnow()
    ids = list(range(1, runs + 1))
    with engine.begin() as connection:
        rows = []
        summaries = []
        for index, run_id in enumerate(ids):
            config = TrainConfig(
                dataset="/data/shapes", learning_rate=1e-4 * (1 + index % 5), seed=index
            ).model_dump(mode="json")
            rows.append(
                {
                    "id": run_id,
                    "name": f"compare-{index}",
                    "status": "succeeded",
                    "external": False,
                    "notes": "",
                    "priority": 0,
                    "queue": "gpu",
                    "attempt": 0,
                    "max_retries": 0,
                    "resume_requested": False,
                    "created_at": now,
                    "updated_at": now,
                    "epochs_done": points,
                    "epochs_planned": points,
                    "best_epoch": points,
                    "best_val_iou": _curve("val/iou", index, points),
                    "last_val_iou": _curve("val/iou", index, points),
                    "model": config["model"],
                    "dataset_name": "shapes",
                    "config": config,
                }
            )
            for key in KEYS:
                values = [_curve(key, index, step) for step in range(1, points + 1)]
                summaries.append(
                    {
                        "run_id": run_id,
                        "key": key,
                        "last_step": points,
                        "last_value": values[-1],
                        "min_value": min(values),
                        "max_value": max(values),
                        "count": points,
                    }
                )
        connection.execute(insert(Run), rows)
        connection.execute(insert(MetricSummary), summaries)
        connection.execute(text("SELECT setval('runs_id_seq', (SELECT max(id) FROM runs))"))
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        statement = "COPY metrics (run_id, key, step, value, epoch) FROM STDIN"
        with cursor.copy(statement) as copy:
            for index, run_id in enumerate(ids):
                for key in KEYS:
                    for step in range(1, points + 1):
                        copy.write_row((run_id, key, step, _curve(key, index, step), step))
        raw.commit()
    finally:
        raw.close()
    # COPY goes around the ingest, which keeps the rollups charts read: build them as the
    # migration does for stored points.
    with engine.begin() as connection:
        rebuild_rollups(connection, ids)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE metrics"))
        connection.execute(text("VACUUM ANALYZE runs"))
    engine.dispose()
    return ids, time.perf_counter() - started


def open_once(browser: Browser, url: str, token: str) -> dict[str, Any]:
    """Open the compare page in a fresh context; its marks and slowest series request (ms)."""
    context = browser.new_context(
        viewport={"width": 1440, "height": 900},
        extra_http_headers={"Authorization": f"Bearer {token}"},
    )
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        page.wait_for_selector(
            "#compare-page[data-charts-drawn]", state="attached", timeout=120_000
        )
        figures: dict[str, Any] = page.evaluate(
            r"""([mark, FIRST]) => {
                const drawn = performance.getEntriesByName(mark)[0].startTime;
                const first = performance.getEntriesByName(FIRST)[0].startTime;
                const series = performance.getEntriesByType("resource")
                    .filter((entry) => entry.name.includes("/api/v1/metrics/series"));
                const navigation = performance.getEntriesByType("navigation")[0];
                const runs = performance.getEntriesByType("resource")
                    .filter((entry) => entry.name.includes("/api/v1/compare/runs"));
                return { drawn, first, ready: navigation.domContentLoadedEventEnd,
                         runsEnd: Math.max(...runs.map((entry) => entry.responseEnd)),
                         seriesStart: Math.min(...series.map((entry) => entry.startTime)),
                         seriesEnd: Math.max(...series.map((entry) => entry.responseEnd)),
                         series: Math.max(...series.map((entry) => entry.duration)),
                         maxPoints: series.map((entry) =>
                             new URL(entry.name).searchParams.get("max_points"))[0] };
            }""",
            [DRAWN_MARK, FIRST_MARK],
        )
        if errors:
            raise RuntimeError(f"the page failed: {errors}")
        return figures
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--tries", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, scratch_database("segtrack_bench_compare") as url:
        env = segtrack_env(url, Path(folder) / "data", None)
        with segtrack_api(env, Path(folder) / "api.log") as api:
            ids, seconds = fill(url, args.runs, args.points)
            total = args.runs * len(KEYS) * args.points
            print(f"inserted {args.runs} runs x {len(KEYS)} keys x {args.points:,} points ")
            print(f"({total:,} points) in {seconds:.0f} s")
            page_url = f"{api.url}/compare?ids={','.join(map(str, ids))}"
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
                try:
                    for _ in range(WARM_UP):
                        open_once(browser, page_url, api.token)
                    tries = [open_once(browser, page_url, api.token) for _ in range(args.tries)]
                finally:
                    browser.close()
    rows = []
    for label, name in (
        ("navigation -> first chart drawn (target <= 500 ms)", "first"),
        ("navigation -> all 4 charts drawn", "drawn"),
        ("  slowest series request (50 runs, one key)", "series"),
        ("  navigation -> DOMContentLoaded", "ready"),
        ("  navigation -> the runs read (one call)", "runsEnd"),
        ("  navigation -> first series request sent", "seriesStart"),
        ("  navigation -> last series answer read", "seriesEnd"),
    ):
        values = [entry[name] / 1000 for entry in tries]
        rows.append((label, ms(statistics.median(values)), ms(percentile(values, 0.95))))
    print_table(
        f"compare page of {args.runs} runs x {args.points:,} points per metric in Chromium, "
        f"{args.tries} tries after {WARM_UP} warm-up; max_points asked: "
        f"{tries[0]['maxPoints']} (ms)",
        ["measure", "median", "p95"],
        rows,
    )


if __name__ == "__main__":
    main()
