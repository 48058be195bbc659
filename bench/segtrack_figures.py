"""Figures of segtrack alone that the API benchmark prints after the comparison: the first page
of a long run list (runs inserted in SQL), the delay from a worker's commit to an SSE client, and
whether the server loaded torch."""

from __future__ import annotations

import json
import queue
import random
import statistics
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert, text

from bench.harness import SegtrackApi, ms, percentile
from server.db import create_db_engine, make_session_factory, session_scope
from server.events import notify_committed, record_event
from server.models import Run, utcnow


def _median_get(http: httpx.Client, path: str, repeat: int = 15) -> float:
    http.get(path).raise_for_status()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        http.get(path).raise_for_status()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_list(http: httpx.Client, database_url: str, count: int) -> list[tuple[str, str]]:
    """The first page of a `count`-run list, plain, sorted and filtered (runs inserted in SQL)."""
    engine = create_db_engine(database_url)
    now = utcnow()
    statuses = ["succeeded", "failed", "running", "queued", "cancelled"]
    rng = random.Random(7)
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
            "best_val_iou": rng.random() if index % 3 else None,
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
    figures = []
    for label, query in (
        (f"first page of a {count:,}-run list", "limit=50"),
        ("  same, sorted by best val/iou", "limit=50&sort=-best_val_iou"),
        ("  same, status + text filter", "limit=50&status=running&q=run-1"),
    ):
        figures.append((label, f"{ms(_median_get(http, f'/api/v1/runs?{query}'))} ms"))
    return figures


def commit_to_stream(api: SegtrackApi, database_url: str, redis_url: str | None) -> tuple[str, str]:
    """A worker-style commit (own session, then notify) until the SSE client has the event."""
    engine = create_db_engine(database_url)
    factory = make_session_factory(engine)
    received: queue.Queue[tuple[str, float]] = queue.Queue()
    ready, stop = threading.Event(), threading.Event()

    def listen() -> None:
        try:
            with (
                httpx.Client(base_url=api.url, headers=api.headers, timeout=30) as http,
                http.stream("GET", "/api/v1/events") as response,
            ):
                for line in response.iter_lines():
                    if line.startswith("retry:"):
                        ready.set()
                    elif line.startswith("data:") and (
                        marker := json.loads(line[5:]).get("marker")
                    ):
                        received.put((marker, time.perf_counter()))
                    if stop.is_set():
                        return
        except httpx.HTTPError:
            if not stop.is_set():
                raise

    threading.Thread(target=listen, daemon=True).start()
    if not ready.wait(10):
        raise RuntimeError("the event stream did not open")
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
    mode = "Redis pub/sub" if redis_url else "database poll"
    label = f"worker commit -> SSE client ({mode}) p50 / max"
    return label, f"{ms(percentile(delays, 0.5))} / {ms(max(delays))} ms"


def loaded_torch(pid: int) -> bool:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return "libtorch" in maps or "/torch/" in maps
