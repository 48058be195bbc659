"""`segtrack up`: SQLite, the filesystem broker, the API and a worker, all from one command;
runs train in priority order although that broker has no priorities. Under its supervisor a run
trains every epoch while 50 writers hammer the API, a killed worker comes back while the API stays
up, and Ctrl-C during a run stops everything within 5 s, leaving the run resumable."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from segtrack.client import SegtrackClient

TINY = {
    "dataset": "demo",
    "base_channels": 8,
    "depth": 2,
    "num_workers": 0,
    "preview_count": 1,
    "augment": "none",
}
STOP_WITHIN_S = 5.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Up:
    """One `segtrack up` process on a free port, its output in a log file."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{_free_port()}"
        self._log: IO[str] = log_path.open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "segtrack", "up", "--data-dir", str(data_dir),
             "--port", self.url.rsplit(":", 1)[1]],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1",
                 "SEGTRACK_HOME": str(data_dir / "home")},
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while f"segtrack is running: open {self.url}/?token=st_" not in self.log():
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, "segtrack up printed no URL in 90 s"
            time.sleep(0.3)

    def log(self) -> str:
        return self.log_path.read_text()

    @property
    def token(self) -> str:
        """The embedded mode's own token, from its data folder (the printed URL carries it)."""
        token = (self.data_dir / "token").read_text().strip()
        assert f"{self.url}/?token={token}" in self.log()
        return token

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> SegtrackClient:
        return SegtrackClient(self.url, token=self.token)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=60)

    def worker_pid(self) -> int | None:
        workers = [
            pid for pid in _descendants(self.process.pid) if "segtrack worker" in _command_line(pid)
        ]
        return min(workers) if workers else None

    def interrupt(self) -> float:
        """Ctrl-C; returns how long `segtrack up` took to exit (asserting it exited cleanly)."""
        children = _descendants(self.process.pid)
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(timeout=30) == 0, self.log()
        took = time.monotonic() - started
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in children if _alive(pid)], "processes left behind"
        assert "segtrack stopped" in self.log()
        return took

    def close(self) -> None:
        if self.process.poll() is None:
            for pid in _descendants(self.process.pid):
                os.kill(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[Any]:
    started: list[Up] = []

    def start() -> Up:
        up = Up(tmp_path / "data", tmp_path / "up.log")
        started.append(up)
        return up

    yield start
    for up in started:
        up.close()


def _wait_for(client: SegtrackClient, run_id: int, done: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get_run(run_id)
        if done(run):
            return run
        assert time.monotonic() < deadline, f"run {run_id} is still {run['status']}"
        time.sleep(0.3)


def _finished(client: SegtrackClient, run_id: int) -> dict[str, Any]:
    run: dict[str, Any] = _wait_for(
        client, run_id, lambda run: run["status"] in ("succeeded", "failed", "cancelled")
    )
    return run


def _priorities_hold(client: SegtrackClient) -> int:
    """The filesystem broker delivers in sending order; the urgent run still goes first.
    Returns the id of the urgent run (trained to the end)."""
    blocker = client.submit({**TINY, "epochs": 500}, name="keeps the worker busy")
    _wait_for(client, blocker["id"], lambda run: run["status"] == "running", timeout=60)
    low = client.submit({**TINY, "epochs": 1}, name="low", priority=0)
    high = client.submit({**TINY, "epochs": 1}, name="high", priority=9)
    client.cancel(blocker["id"])
    low_final = _finished(client, low["id"])
    high_final = _finished(client, high["id"])
    assert low_final["status"] == high_final["status"] == "succeeded"
    assert high_final["started_at"] < low_final["started_at"]
    return int(high["id"])


def test_up_trains_runs_and_ctrl_c_during_a_run_leaves_it_resumable(start_up: Any) -> None:
    up = start_up()
    assert len(_descendants(up.process.pid)) >= 2  # the API and the worker
    with up.client() as client:
        datasets = client._call("GET", "/api/v1/datasets")["items"]
        assert [dataset["name"] for dataset in datasets] == ["demo"]
        trained = _priorities_hold(client)
        long = client.submit({**TINY, "epochs": 6}, name="stopped by Ctrl-C")
        _wait_for(client, long["id"], lambda run: run["epochs_done"] >= 1)
    data = up.data_dir
    assert (data / "segtrack.db").exists()
    assert any((data / "artifacts" / "runs" / str(trained)).rglob("*.pt"))

    assert up.interrupt() < STOP_WITHIN_S

    up = start_up()
    with up.client() as client:
        stopped = client.get_run(long["id"])
        assert stopped["status"] == "cancelled", stopped
        assert stopped["failure_reason"].startswith("stopped: "), stopped["failure_reason"]
        assert 1 <= stopped["epochs_done"] < 6
        client.resume(long["id"])
        resumed = _finished(client, long["id"])
        assert resumed["status"] == "succeeded", resumed.get("failure_reason")
        assert resumed["epochs_done"] == 6
        assert resumed["run_info"]["start_epoch"] == stopped["epochs_done"] + 1
    up.interrupt()


def _hammer(up: Up, run_id: int, writers: int, stop: threading.Event) -> list[int]:
    """`writers` clients posting 100-point batches to run `run_id` until `stop` (at most 30
    each); returns every status code."""

    def write(writer: int) -> list[int]:
        codes = []
        with up.http() as http:
            for batch in range(30):
                if stop.is_set():
                    break
                points = [
                    {"key": f"hammer/{writer}", "step": batch * 100 + index, "value": 1.0}
                    for index in range(100)
                ]
                response = http.post(f"/api/v1/runs/{run_id}/metrics", json={"points": points})
                codes.append(response.status_code)
        return codes

    with ThreadPoolExecutor(max_workers=writers) as pool:
        return [code for codes in pool.map(write, range(writers)) for code in codes]


def test_training_outlasts_50_writers_and_a_killed_worker_comes_back(start_up: Any) -> None:
    up = start_up()
    with up.client() as client:
        target = client._call("POST", "/api/v1/runs", json={"name": "hammered", "external": True})
        training = client.submit({**TINY, "epochs": 3}, name="trains under load")
        _wait_for(client, training["id"], lambda run: run["status"] == "running", timeout=60)
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=1) as pool:
            codes = pool.submit(_hammer, up, target["id"], 50, stop)
            try:
                final = _finished(client, training["id"])
            finally:
                stop.set()
            statuses = codes.result()
        assert final["status"] == "succeeded", final.get("failure_reason")
        assert final["epochs_done"] == 3 and final["metrics"]["val/iou"]["count"] == 3
        assert statuses and set(statuses) == {200}
        stored = client.get_run(target["id"])["metrics"]
        assert sum(summary["count"] for summary in stored.values()) == 100 * len(statuses)

        worker = up.worker_pid()
        assert worker is not None
        health: list[int] = []
        watching = threading.Event()

        def watch_health() -> None:
            with up.http() as http:
                while not watching.is_set():
                    health.append(http.get("/healthz").status_code)
                    time.sleep(0.1)

        watcher = threading.Thread(target=watch_health)
        watcher.start()
        try:
            os.kill(worker, signal.SIGKILL)
            after = client.submit({**TINY, "epochs": 1}, name="trained by the new worker")
            assert _finished(client, after["id"])["status"] == "succeeded"
        finally:
            watching.set()
            watcher.join(10)
        assert health and set(health) == {200}, "the API went away while the worker restarted"
        assert up.worker_pid() not in (None, worker)
        assert "the worker exited unexpectedly (killed by SIGKILL)" in up.log()
    up.interrupt()
