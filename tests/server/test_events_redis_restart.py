"""Open event streams survive a Redis restart: while Redis is away events still arrive (read from
the table), and once it is back the stream, still the same connection, hears notifications again.

Runs its own redis-server on a free port; the shared one on 6379 is never touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from server.event_hub import EventHub
from tests.own_servers import OwnRedis
from tests.server.helpers import LiveServer, sse_messages

Start = Callable[..., LiveServer]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_stream_survives_a_redis_restart(start_live: Start, own_redis: OwnRedis) -> None:
    server = start_live(redis_url=own_redis.url)
    with server.http() as http:
        run = http.post("/api/v1/runs", json={"external": True, "name": "through"}).json()

        def write(step: int) -> None:
            points = [{"key": "loss", "step": step, "value": 1.0}]
            response = http.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": points})
            assert response.status_code == 200, response.text

        def next_step(stream: Iterator[dict[str, object]]) -> object:
            event = next(stream)
            assert event["kind"] == "metrics"
            return event["points"][0]["step"]  # type: ignore[index]

        with http.stream("GET", f"/api/v1/runs/{run['id']}/events") as response:
            stream = sse_messages(response)
            assert next(stream) == {"ready": True}
            hub: EventHub = server.app.state.event_hub
            _until(lambda: hub.redis_connected, "the hub did not subscribe to Redis")
            write(1)
            assert next_step(stream) == 1

            own_redis.kill()
            _until(lambda: not hub.redis_connected, "the hub did not notice Redis was gone")
            write(2)  # committed while Redis is away: read from the table
            assert next_step(stream) == 2

            own_redis.start()
            _until(lambda: hub.redis_connected, "the hub did not subscribe to Redis again")
            write(3)
            assert next_step(stream) == 3
            assert hub.streams == 1
