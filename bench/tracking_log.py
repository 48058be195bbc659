"""What tracking costs a training script: the time one `run.log()` call takes (server up, and
server down so every point is only spooled), the delay from `log()` until the point is visible
through the API the run page reads, and a large file's upload throughput next to `cp` of the
same file on the same disk.

`segtrack serve` runs as an operator starts it (see bench/harness.py) on a scratch PostgreSQL
database; the file, the spool and the server's artifacts share one temporary folder, so `cp`
and the upload read and write the same disk. `log()` is timed call by call with
perf_counter_ns (its own cost, about 50-100 ns, is included and printed).

    .venv/bin/python -m bench.tracking_log [--calls 100000] [--size-mib 256] [--piece-mib 64]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import (
    free_port,
    percentile,
    print_table,
    scratch_database,
    segtrack_api,
    segtrack_env,
)
from segtrack import TrackedRun, track

E2E_SAMPLES = 20


def _time_logs(run: TrackedRun, calls: int) -> list[float]:
    """Nanoseconds of each of `calls` log() calls of two keys (after a warm-up)."""
    clock = time.perf_counter_ns
    for step in range(1000):
        run.log({"train/loss": 1.0 / (step + 1), "lr": 0.01}, step=step)
    durations = []
    for step in range(1000, 1000 + calls):
        started = clock()
        run.log({"train/loss": 1.0 / (step + 1), "lr": 0.01}, step=step)
        durations.append(float(clock() - started))
    return durations


def _clock_cost_ns() -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(10_000):
        started = clock()
        samples.append(float(clock() - started))
    return percentile(samples, 0.5)


def _visible_delays(run: TrackedRun, url: str, headers: dict[str, str]) -> list[float]:
    """Seconds from log() until GET metrics shows the point, E2E_SAMPLES times."""
    assert run.id is not None
    delays = []
    with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        for step in range(E2E_SAMPLES):
            started = time.perf_counter()
            run.log({"bench/e2e": float(step)}, step=step)
            params: dict[str, str | int] = {"keys": "bench/e2e", "after_step": step - 1}
            while True:
                series = http.get(f"/api/v1/runs/{run.id}/metrics", params=params).json()
                if series["series"].get("bench/e2e", {}).get("step"):
                    break
                time.sleep(0.002)
            delays.append(time.perf_counter() - started)
            time.sleep(0.3)  # points do not queue behind each other
    return delays


def _cp_seconds(source: Path, target: Path) -> tuple[float, float]:
    """`cp` alone, and `cp` plus syncing the copy to disk (as the server syncs an upload)."""
    started = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True)
    copied = time.perf_counter() - started
    descriptor = os.open(target, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    synced = time.perf_counter() - started
    target.unlink()
    return copied, synced


def _upload_seconds(run: TrackedRun, source: Path) -> float:
    """From log_file() until the server has the file whole and checked."""
    started = time.perf_counter()
    run.log_file(source, kind="last", epoch=1)
    if not run.flush(timeout=600):
        raise RuntimeError("the upload did not finish in 10 minutes")
    return time.perf_counter() - started


def _us(nanoseconds: float) -> str:
    return f"{nanoseconds / 1000:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000, help="log() calls timed")
    parser.add_argument("--size-mib", type=int, default=256, help="the uploaded file's size")
    parser.add_argument("--piece-mib", type=int, default=64, help="bytes per upload request")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="segtrack-tracking-bench-") as folder:
        root = Path(folder)
        with scratch_database("segtrack_bench_tracking") as database:
            env = segtrack_env(database, root / "server", None)
            with segtrack_api(env, root / "server.log") as api:
                up = track(
                    name="bench-log",
                    server=api.url,
                    token=api.token,
                    spool_dir=root / "spool",
                    piece_bytes=args.piece_mib * 1024 * 1024,
                )
                up_ns = _time_logs(up, args.calls)
                up.flush(timeout=120)
                delays = _visible_delays(up, api.url, api.headers)

                source = root / "checkpoint.bin"
                with source.open("wb") as handle:
                    for _ in range(args.size_mib):
                        handle.write(os.urandom(1024 * 1024))
                copied, synced = _cp_seconds(source, root / "copy.bin")
                uploaded = _upload_seconds(up, source)
                up.finish()

            down = track(
                name="bench-log-down",
                server=f"http://127.0.0.1:{free_port()}",  # nothing listens there
                spool_dir=root / "spool",
                finish_timeout_s=0.5,
            )
            down_ns = _time_logs(down, args.calls)
            down.finish()

    clock_ns = _clock_cost_ns()
    rows = [
        [name, _us(percentile(values, 0.5)), _us(percentile(values, 0.99)), _us(max(values))]
        for name, values in (("server up", up_ns), ("server down", down_ns))
    ]
    print_table(
        f"run.log() of 2 keys, {args.calls} calls (clock read: {clock_ns:.0f} ns)",
        ["", "median us", "p99 us", "max us"],
        rows,
    )
    print_table(
        f"log() -> visible through GET /runs/{{id}}/metrics, {E2E_SAMPLES} points",
        ["median ms", "p95 ms", "max ms"],
        [
            [f"{percentile(delays, q) * 1000:.0f}" for q in (0.5, 0.95)]
            + [f"{max(delays) * 1000:.0f}"]
        ],
    )
    mib = args.size_mib
    print_table(
        f"a {mib} MiB file on one disk (upload pieces of {args.piece_mib} MiB)",
        ["", "seconds", "MiB/s"],
        [
            [name, f"{seconds:.2f}", f"{mib / seconds:.0f}"]
            for name, seconds in (
                ("cp", copied),
                ("cp + fsync", synced),
                ("log_file -> on the server (hash, send, check)", uploaded),
            )
        ],
    )


if __name__ == "__main__":
    main()
