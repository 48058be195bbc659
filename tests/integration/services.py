"""A real API process and real worker processes for the integration tests: the service they
make (`serving`: on a scratch database and a queue of its own), a tiny run config, and waiting
for conditions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import redis

from segtrack.client import SegtrackClient
from server.auth.service import create_token, create_user
from server.db import create_db_engine, make_session_factory, session_scope, upgrade_database
from tests.conftest import create_scratch_database, drop_scratch_database
from tests.own_servers import free_port

REDIS_URL = os.environ.get("SEGTRACK_TEST_REDIS", "redis://127.0.0.1:6379/0")
SEGTRACK = [sys.executable, "-m", "segtrack"]
TINY = {
    "dataset": "demo",
    "base_channels": 8,
    "depth": 2,
    "batch_size": 8,
    "num_workers": 0,
    "augment": "none",
    "preview_count": 2,
    "preview_worst": 0,
}
"""A run that trains in seconds on a CPU."""


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `condition` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def answers(client: SegtrackClient) -> bool:
    """Whether the API answers at all."""
    try:
        client._call("GET", "/healthz")
    except Exception:
        return False
    return True


def admin_token(environment: dict[str, str], name: str) -> str:
    """Bring the database of `environment` to the head migration, create an admin and return
    a token of theirs named `name` (what `segtrack db upgrade`, `user create` and `token create`
    do, here in the test process rather than in three fresh ones)."""
    url = environment["SEGTRACK_DATABASE_URL"]
    upgrade_database(url)
    engine = create_db_engine(url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            admin = create_user(session, "admin", "admin", None)
            return create_token(session, admin.id, name).token
    finally:
        engine.dispose()


@dataclass
class Service:
    """An API process and worker processes sharing one database, broker and artifacts folder."""

    environment: dict[str, str]
    url: str
    logs: Path
    token: str
    api: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log_files: list[BinaryIO] = field(default_factory=list)

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        self.log_files.append(log)
        return subprocess.Popen(command, env=self.environment, stdout=log, stderr=subprocess.STDOUT)

    def start_api(self, port: int) -> None:
        self.api = self._spawn("api", [*SEGTRACK, "serve", "--port", str(port)])

    def start_worker(self, *options: str) -> subprocess.Popen[bytes]:
        worker = self._spawn(f"worker{len(self.workers)}", [*SEGTRACK, "worker", *options])
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for process in [*self.workers, self.api]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.workers, self.api]:
            if process is not None:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for log in self.log_files:
            log.close()


@contextmanager
def serving(
    data_dir: Path,
    name: str,
    settings: Mapping[str, str],
    worker_options: Sequence[str] = (),
) -> Iterator[Service]:
    """An API and one worker (started with `worker_options`) on a scratch PostgreSQL database
    and a Redis queue named after `name`, with the `SEGTRACK_*` `settings` given, and the demo
    dataset written under `data_dir/datasets/demo` registered; all removed afterwards."""
    database = f"segtrack_{name}_{os.getpid()}"
    queue = f"{name}-{os.getpid()}"
    broker = redis.Redis.from_url(REDIS_URL)
    broker.delete(queue)
    port = free_port()
    environment = {
        **os.environ,
        "SEGTRACK_DATA_DIR": str(data_dir),
        "SEGTRACK_DATABASE_URL": create_scratch_database(database),
        "SEGTRACK_BROKER_URL": REDIS_URL,
        "SEGTRACK_REDIS_URL": REDIS_URL,
        "SEGTRACK_DEFAULT_QUEUE": queue,
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "OMP_NUM_THREADS": "1",
        **settings,
    }
    token = admin_token(environment, name)
    running = Service(environment, f"http://127.0.0.1:{port}", data_dir, token)
    client = SegtrackClient(running.url, token=token, timeout=10)
    try:
        running.start_api(port)
        running.start_worker(*worker_options)
        wait_for(lambda: answers(client), 60, "the API to start")
        client._call("POST", "/api/v1/datasets", json={"name": "demo", "path": "demo"})
        wait_for(lambda: client._call("GET", "/api/v1/workers")["workers"], 90, "a worker")
        yield running
    finally:
        client.close()
        running.stop()
        broker.delete(queue)
        broker.close()
        drop_scratch_database(database)
