"""`segtrack up`: SQLite, the filesystem broker, the API and a worker, all from one command;
runs train in priority order although that broker has no priorities."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from segtrack.client import SegtrackClient


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


TINY = {"dataset": "demo", "base_channels": 8, "depth": 2, "num_workers": 0, "preview_count": 1}


def _priorities_hold(client: SegtrackClient) -> None:
    """The filesystem broker delivers in sending order; the urgent run still goes first."""
    blocker = client.submit({**TINY, "epochs": 500}, name="keeps the worker busy")
    deadline = time.monotonic() + 60
    while client.get_run(blocker["id"])["status"] != "running":
        assert time.monotonic() < deadline, "the blocker never started"
        time.sleep(0.2)
    low = client.submit({**TINY, "epochs": 1}, name="low", priority=0)
    high = client.submit({**TINY, "epochs": 1}, name="high", priority=9)
    client.cancel(blocker["id"])
    low_final = client.wait(low["id"], timeout=120)
    high_final = client.wait(high["id"], timeout=120)
    assert low_final["status"] == high_final["status"] == "succeeded"
    assert high_final["started_at"] < low_final["started_at"]


def test_up_trains_a_run_and_ctrl_c_leaves_nothing_behind(tmp_path: Path) -> None:
    port = _free_port()
    log = (tmp_path / "up.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "segtrack", "up", "--data-dir", str(tmp_path / "data"),
         "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while "segtrack is running: open " + url not in (tmp_path / "up.log").read_text():
            assert process.poll() is None, (tmp_path / "up.log").read_text()
            assert time.monotonic() < deadline, "segtrack up printed no URL in 90 s"
            time.sleep(0.3)
        children = _descendants(process.pid)
        assert len(children) >= 2  # the API and the worker

        with SegtrackClient(url) as client:
            datasets = client._call("GET", "/api/v1/datasets")["items"]
            assert [dataset["name"] for dataset in datasets] == ["demo"]
            run = client.submit(
                {"dataset": "demo", "base_channels": 8, "depth": 2, "epochs": 2, "num_workers": 0},
                name="embedded",
            )
            final = client.wait(run["id"], timeout=120)
            assert final["status"] == "succeeded", final.get("failure_reason")
            _priorities_hold(client)
        assert (tmp_path / "data" / "segtrack.db").exists()
        assert any((tmp_path / "data" / "artifacts" / "runs" / str(run["id"])).rglob("*.pt"))

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in children if _alive(pid)], "processes left behind"
        assert "segtrack stopped" in (tmp_path / "up.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
