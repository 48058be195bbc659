"""A fair timing of two tracking servers: one workload of points built before the timer, requests
prepared as bytes, untimed warm-up, interleaved rounds and equal sample counts per server."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import httpx

from bench.harness import ms, percentile, print_table

BATCH_KEYS = 10
BATCH_STEPS = 100
"""A batch: BATCH_KEYS keys x BATCH_STEPS steps = 1,000 points, MLflow's log-batch maximum."""
HISTORY_POINTS = 10_000
HISTORY_KEY = "loss"
JSON = {"content-type": "application/json"}
SINGLE, BATCH, READ = "single metric write", "1,000-point batch", "10,000-point series read"
KINDS = (SINGLE, BATCH, READ)

Point = tuple[str, int, float]
"""(key, step, value)"""


@dataclass(frozen=True)
class Workload:
    """The points every server receives, built once before anything is timed."""

    singles: list[Point]
    batches: list[list[Point]]
    history: list[Point]
    reads: int


def build_workload(singles: int, batches: int, reads: int, seed: int) -> Workload:
    rng = random.Random(seed)
    return Workload(
        singles=[("loss", step, rng.random()) for step in range(singles)],
        batches=[
            [
                (f"metric_{key}", batch * BATCH_STEPS + step, rng.random())
                for key in range(BATCH_KEYS)
                for step in range(BATCH_STEPS)
            ]
            for batch in range(batches)
        ],
        history=[(HISTORY_KEY, step, rng.random()) for step in range(HISTORY_POINTS)],
        reads=reads,
    )


@dataclass(frozen=True)
class Call:
    """One prepared request: its body is already bytes."""

    method: str
    path: str
    body: bytes | None = None


def timed(http: httpx.Client, call: Call) -> float:
    """Seconds from sending `call` to having read its whole response; checked after the timer."""
    headers = JSON if call.body is not None else None
    started = time.perf_counter()
    response = http.request(call.method, call.path, content=call.body, headers=headers)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


def send(http: httpx.Client, call: Call) -> httpx.Response:
    response = http.request(call.method, call.path, content=call.body, headers=JSON)
    response.raise_for_status()
    return response


@dataclass
class Side:
    """A server under test: its client and its prepared calls per measurement."""

    name: str
    http: httpx.Client
    calls: dict[str, list[Call]]
    warm_up: list[Call]


def compare(sides: list[Side], rounds: int) -> dict[tuple[str, str], list[float]]:
    """Warm every side up, then time the rounds: in each, every side in turn (A, B, A, B, ...)
    sends its next slice of every measurement. Returns latencies by (side, measurement)."""
    for side in sides:
        for call in side.warm_up:
            send(side.http, call)
    latencies: dict[tuple[str, str], list[float]] = {
        (side.name, kind): [] for side in sides for kind in KINDS
    }
    for round_number in range(rounds):
        for side in sides:
            for kind in KINDS:
                calls = side.calls[kind]
                per_round = len(calls) // rounds
                for call in calls[round_number * per_round : (round_number + 1) * per_round]:
                    latencies[(side.name, kind)].append(timed(side.http, call))
    for kind in KINDS:
        counts = {len(values) for (_, measured), values in latencies.items() if measured == kind}
        assert len(counts) == 1, f"unequal sample counts for {kind}: {counts}"
    return latencies


def print_comparison(latencies: dict[tuple[str, str], list[float]], title: str) -> None:
    rows = []
    for kind in KINDS:
        for (side, measured), values in latencies.items():
            if measured != kind:
                continue
            rate = len(values) / sum(values)
            throughput = f"{rate:,.0f} req/s"
            if kind == BATCH:
                throughput += f" = {rate * BATCH_KEYS * BATCH_STEPS:,.0f} points/s"
            percentiles = (ms(percentile(values, q)) for q in (0.5, 0.95, 0.99))
            rows.append((kind, side, str(len(values)), *percentiles, throughput))
    headers = ("measurement", "server", "n", "p50 ms", "p95 ms", "p99 ms", "throughput")
    print_table(title, headers, rows)
