"""Every epoch's validation detail at scale: 5,000 images x 30 classes for 100 epochs of one
run on PostgreSQL, written and read through the real HTTP API.

    .venv/bin/python -m bench.validation_storage
    .venv/bin/python -m bench.validation_storage --images 1000 --classes 10 --epochs 20

What it does, so that the figures mean something:
- A scratch PostgreSQL database of its own (dropped at the end), the schema made by `segtrack db
  upgrade`, the API started as an operator starts it (`segtrack serve`, one process).
- Counts are realistic rather than random noise: each image is 256 x 256 pixels showing 2 to 5
  of the classes, most pixels right, a few percent confused with another present class, a
  little better every epoch. Each epoch is sent as `PUT /runs/{id}/validation/{epoch}` (timed:
  the whole request, body encoded with orjson as the tracking client does).
- Reads are asked 3 times untimed, then 20 times timed: median and p95 of the request, body
  read. Storage is the size of the two tables with their TOAST data (pg_total_relation_size).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy import text

from bench.harness import ms, percentile, print_table, scratch_database, segtrack_api, segtrack_env
from server.db import create_db_engine

Counts = npt.NDArray[np.int64]
SIDE = 256


def epoch_body(
    rng: np.random.Generator, present: npt.NDArray[np.bool_], epoch: int, epochs: int
) -> dict[str, object]:
    """One epoch's counts: every image's pixels split over its present classes, an error rate
    falling from 8% to 1% over the epochs, errors going to another present class."""
    images, classes = present.shape
    share = rng.random((images, classes)) * present
    share /= share.sum(axis=1, keepdims=True)
    truth = np.floor(share * SIDE * SIDE).astype(np.int64)
    rate = 0.08 - 0.07 * (epoch - 1) / max(epochs - 1, 1)
    missed = rng.binomial(truth, rate)
    tp = truth - missed
    # Each class's missed pixels go to the next present class of the image (cyclically).
    fp = np.zeros_like(tp)
    for row in range(images):
        columns = np.flatnonzero(present[row])
        fp[row, np.roll(columns, -1)] += missed[row, columns]
    confusion = np.zeros((classes, classes), dtype=np.int64)
    confusion[np.diag_indices(classes)] = tp.sum(axis=0)
    for row in range(images):
        columns = np.flatnonzero(present[row])
        np.add.at(confusion, (columns, np.roll(columns, -1)), missed[row, columns])
    return {
        "class_names": [f"class_{index}" for index in range(classes)],
        "confusion": confusion,
        "images": {
            "names": [f"image_{index:05d}" for index in range(images)],
            "true_positive": tp,
            "false_positive": fp,
            "false_negative": missed,
        },
    }


def timed(call: Callable[[], httpx.Response], rounds: int = 20) -> tuple[float, float, int]:
    """(median s, p95 s, response bytes) of `call` after 3 untimed calls."""
    for _ in range(3):
        call().raise_for_status()
    times, size = [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        response = call()
        response.raise_for_status()
        size = len(response.content)
        times.append(time.perf_counter() - started)
    return statistics.median(times), percentile(times, 0.95), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--classes", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    present = rng.random((args.images, args.classes)) < 3 / args.classes
    present[:, 0] = True
    with (
        tempfile.TemporaryDirectory(prefix="segtrack-bench-") as folder,
        scratch_database("segtrack_bench_validation") as database_url,
    ):
        env = segtrack_env(database_url, Path(folder) / "data", None)
        with (
            segtrack_api(env, Path(folder) / "api.log") as api,
            httpx.Client(base_url=api.url, headers=api.headers, timeout=120) as http,
        ):
            run = http.post("/api/v1/runs", json={"name": "bench", "external": True}).json()
            run_id = run["id"]
            classes = [f"class_{index}" for index in range(args.classes)]
            http.put(f"/api/v1/runs/{run_id}/info", json={"class_names": classes})
            writes, body_bytes = [], 0
            for epoch in range(1, args.epochs + 1):
                content = orjson.dumps(
                    epoch_body(rng, present, epoch, args.epochs),
                    option=orjson.OPT_SERIALIZE_NUMPY,
                )
                body_bytes = len(content)
                started = time.perf_counter()
                response = http.put(
                    f"/api/v1/runs/{run_id}/validation/{epoch}",
                    content=content,
                    headers={"Content-Type": "application/json"},
                )
                writes.append(time.perf_counter() - started)
                response.raise_for_status()
            base = f"/api/v1/runs/{run_id}"
            middle = args.epochs // 2
            reads = {
                "confusion (latest)": lambda: http.get(f"{base}/confusion"),
                "images, worst 50 (latest)": lambda: http.get(f"{base}/images"),
                "images of class_7, by Dice": lambda: http.get(
                    f"{base}/images?class=class_7&sort=dice"
                ),
                f"images worse than epoch {middle}": lambda: http.get(
                    f"{base}/images?worse_than={middle}"
                ),
                "one image's trend (all epochs)": lambda: http.get(
                    f"{base}/images/{args.images // 2}/trend"
                ),
                "confusion.csv": lambda: http.get(f"{base}/confusion.csv"),
            }
            rows = [
                [name, ms(median), ms(p95), f"{size / 1024:.0f}"]
                for name, (median, p95, size) in (
                    (name, timed(call)) for name, call in reads.items()
                )
            ]
        engine = create_db_engine(database_url)
        with engine.connect() as connection:
            stored = connection.execute(
                text(
                    "SELECT pg_total_relation_size('validation_epochs'), "
                    "pg_total_relation_size('validation_sets')"
                )
            ).one()
        engine.dispose()
    cells = args.images * args.classes
    print(
        f"\n{args.images} images x {args.classes} classes ({cells} counts x 3 per epoch), "
        f"{args.epochs} epochs; one epoch's JSON body {body_bytes / 1e6:.1f} MB"
    )
    print_table(
        "Writes (PUT /runs/{id}/validation/{epoch})",
        ["", "median ms", "p95 ms"],
        [["one epoch", ms(statistics.median(writes)), ms(percentile(writes, 0.95))]],
    )
    print_table("Reads over HTTP", ["request", "median ms", "p95 ms", "body KiB"], rows)
    epochs_bytes, sets_bytes = stored
    print_table(
        "Storage on PostgreSQL (tables + TOAST + indexes)",
        ["table", "total MB", "per epoch KB", "raw int64 counts per epoch KB"],
        [
            [
                "validation_epochs",
                f"{epochs_bytes / 1e6:.1f}",
                f"{epochs_bytes / args.epochs / 1e3:.0f}",
                f"{cells * 3 * 8 / 1e3:.0f}",
            ],
            ["validation_sets", f"{sets_bytes / 1e6:.2f}", "", ""],
        ],
    )


if __name__ == "__main__":
    main()
