"""Open event streams survive a Redis restart: while Redis is away events still arrive (read from
the table), and once it is back the stream, still the same connection, hears notifications again.

Runs its own redis-server on a free port; the shared one on 6379 is never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from server.event_hub import EventHub
from tests.server.helpers import LiveServer, sse_messages

Start = Callable[..., LiveServer]


class OwnRedis:
    """A throw-away redis-server on its own port, which a test may kill and start again."""

    def __init__(self, folder: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.folder = folder
        self.pidfile = folder / "redis.pid"
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "yes",
                "--pidfile", str(self.pidfile), "--dir", str(self.folder),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL, as a crash would: no goodbye to the subscribers."""
        if not self.pidfile.exists():
            return
        pid = int(self.pidfile.read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid):
            assert time.monotonic() < deadline, "redis-server did not stop"
            time.sleep(0.02)
        self.pidfile.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed daemon is reaped by init; until then it is a zombie, which is gone for us.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rpartition(")")[2].split()[0] != "Z"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("this test needs redis-server on the PATH (apt-get install redis-server)")
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
