"""Nothing is lost when the server is away: unreachable when the run starts and back mid-run,
or killed (SIGKILL, mid-request) and started again while a script keeps logging."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from segtrack import track
from tests.server.helpers import LiveServer
from tests.tracking.helpers import rest, sample, series, wait_for
from tests.tracking.proxy import Proxy


def test_a_server_down_at_start_gets_every_point_and_preview_once_it_is_up(
    server: LiveServer, tmp_path: Path
) -> None:
    proxy = Proxy(int(urlsplit(server.url).port or 0))
    proxy.down()
    try:
        run = track(name="late-server", server=proxy.url, token=server.token, spool_dir=tmp_path)
        for step in range(100):
            run.log({"loss": float(step)}, step=step)
        run.log_previews(1, [sample(0, 1), sample(1, 1)])
        assert not run.flush(timeout=1.0)  # spooled, not sent
        assert run.id is None
        proxy.up()
        for step in range(100, 200):
            run.log({"loss": float(step)}, step=step)
        run.log_previews(2, [sample(0, 2), sample(1, 2)])
        assert run.finish()
    finally:
        proxy.close()
    assert run.id is not None
    loss = series(server.url, server.token, run.id)["loss"]
    assert loss["step"] == list(range(200)) and loss["value"] == [float(s) for s in range(200)]
    for epoch in (1, 2):
        shown = rest(server.url, server.token, f"/api/v1/runs/{run.id}/previews?epoch={epoch}")
        assert [item["sample_index"] for item in shown["samples"]] == [0, 1]
    assert rest(server.url, server.token, f"/api/v1/runs/{run.id}")["status"] == "succeeded"


class ServerProcess:
    """`segtrack serve` in a process of its own, on one port, so it can be killed for real."""

    def __init__(self, database: str, data_dir: Path, logs: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.environment = {
            **os.environ,
            "SEGTRACK_DATABASE_URL": database,
            "SEGTRACK_DATA_DIR": str(data_dir),
            "SEGTRACK_BROKER_URL": "memory://",
            "SEGTRACK_REAPER_INTERVAL_S": "0",
        }
        self.logs = logs
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.logs.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "segtrack", "serve", "--port", str(self.port)],
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._healthy, f"the server on port {self.port} (log: {self.logs})", 60)

    def _healthy(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, self.logs.read_text()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def server_process(database: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(database, tmp_path / "server", tmp_path / "server.log")
    yield process
    process.kill()


def test_a_server_killed_and_restarted_mid_run_loses_nothing(
    server: LiveServer, server_process: ServerProcess, tmp_path: Path
) -> None:
    server_process.start()
    run = track(
        name="killed-server", server=server_process.url, token=server.token, spool_dir=tmp_path
    )
    logged = 0
    stop = threading.Event()

    def train() -> None:
        nonlocal logged
        while not stop.is_set():
            run.log({"train/loss_step": 1.0 / (logged + 1), "lr": 0.01}, step=logged)
            logged += 1
            time.sleep(0.001)

    trainer = threading.Thread(target=train)
    trainer.start()
    try:
        run_id = wait_for(lambda: run.id, "the run to be created")

        def stored() -> int:
            found = series(server_process.url, server.token, run_id).get("lr")
            return 0 if found is None else int(found["count"])

        wait_for(lambda: stored() >= 100, "points to arrive")
        server_process.kill()
        run.log_previews(1, [sample(0, 1)])
        time.sleep(0.5)  # the script goes on logging while nobody answers
        server_process.start()
        run.log_previews(2, [sample(0, 2)])
        wait_for(lambda: stored() > logged // 2, "points sent after the restart")
    finally:
        stop.set()
        trainer.join()
    assert run.finish()
    got = series(server_process.url, server.token, run_id)
    assert got["lr"]["step"] == list(range(logged))
    assert got["train/loss_step"]["count"] == logged
    shown = rest(server_process.url, server.token, f"/api/v1/runs/{run_id}/previews")
    assert shown["epochs"] == [1, 2]
    assert rest(server_process.url, server.token, f"/api/v1/runs/{run_id}")["status"] == (
        "succeeded"
    )
