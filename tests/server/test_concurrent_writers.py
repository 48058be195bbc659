"""Concurrent writers never stall the API nor lose or double a point (PostgreSQL, a live uvicorn):
100 clients write to one run at once, and then replay the same batches, while other requests go
on being served."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from tests.server.helpers import LiveServer

WRITERS = 100
POINTS_PER_WRITER = 20
PATIENCE_S = 60.0
"""A generous bound: the stalled API took 30-60 s for 50 writers and then answered 500."""


async def _write_all(
    server: LiveServer, run_id: int, writers: int
) -> tuple[list[httpx.Response], list[int]]:
    """`writers` clients post their batches at once while another lists runs; the responses
    and the list calls' statuses."""
    limits = httpx.Limits(max_connections=writers + 10, max_keepalive_connections=writers + 10)
    responses: list[httpx.Response] = []
    listed: list[int] = []
    async with httpx.AsyncClient(
        base_url=server.url, headers=server.headers, timeout=PATIENCE_S, limits=limits
    ) as http:

        async def write(writer: int) -> None:
            points = [
                {"key": f"w/{writer % 5}", "step": writer * POINTS_PER_WRITER + i, "value": i}
                for i in range(POINTS_PER_WRITER)
            ]
            response = await http.post(f"/api/v1/runs/{run_id}/metrics", json={"points": points})
            responses.append(response)

        async def list_runs(until: anyio.Event) -> None:
            while not until.is_set():
                listed.append((await http.get("/api/v1/runs?limit=5")).status_code)
                await anyio.sleep(0.01)

        done = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(list_runs, done)
            async with anyio.create_task_group() as writers_group:
                for writer in range(writers):
                    writers_group.start_soon(write, writer)
            done.set()
    return responses, listed


@pytest.mark.timeout(240)
def test_a_hundred_writers_on_one_run_all_succeed_and_nothing_is_lost_or_doubled(
    start_live: Callable[..., LiveServer],
) -> None:
    server = start_live()
    with server.http() as http:
        run: dict[str, Any] = http.post("/api/v1/runs", json={"name": "w", "external": True}).json()
    started = time.monotonic()
    responses, listed = anyio.run(_write_all, server, run["id"], WRITERS)
    first_round_s = time.monotonic() - started
    assert [r.status_code for r in responses] == [200] * WRITERS, [
        r.text for r in responses if r.status_code != 200
    ][:3]
    assert sum(r.json()["new"] for r in responses) == WRITERS * POINTS_PER_WRITER
    assert listed and set(listed) == {200}
    assert first_round_s < PATIENCE_S

    replayed, _ = anyio.run(_write_all, server, run["id"], WRITERS)
    assert [r.status_code for r in replayed] == [200] * WRITERS
    assert sum(r.json()["new"] for r in replayed) == 0
    with server.http() as http:
        stored = http.get(f"/api/v1/runs/{run['id']}/metrics").json()["series"]
        summary = http.get(f"/api/v1/runs/{run['id']}").json()["metrics"]
    assert sum(len(series["step"]) for series in stored.values()) == WRITERS * POINTS_PER_WRITER
    assert sum(item["count"] for item in summary.values()) == WRITERS * POINTS_PER_WRITER
