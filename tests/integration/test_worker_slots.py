"""A worker owns slots and trains each run in a child process: a real API and a real `--slots 2`
worker through Redis and PostgreSQL.

A 2-slot run takes both slots, two 1-slot runs train at the same time, slots are never shared,
a more urgent 2-slot run is not starved by 1-slot runs, a killed training process fails only its
run, a run whose data loading is stuck (its loader processes suspended) is cancelled within the
grace, and a run wider than every worker says so.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine

from segtrack.client import SegtrackClient
from server.models import Event
from tests.integration.services import (
    TINY,
    Service,
    serving,
    wait_for,
)
from trainer.data.demo import make_demo_dataset

CANCEL_GRACE_S = 2.0


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data_dir = tmp_path_factory.mktemp("slots")
    make_demo_dataset(data_dir / "datasets" / "demo", count=16, size=32, seed=3)
    settings = {
        "SEGTRACK_HEARTBEAT_TIMEOUT_S": "6",
        "SEGTRACK_REAPER_INTERVAL_S": "0.5",
        "SEGTRACK_CANCEL_GRACE_S": str(CANCEL_GRACE_S),
    }
    with serving(data_dir, "slots", settings, ["--slots", "2"]) as running:
        yield running


@pytest.fixture(scope="module")
def database(service: Service) -> Iterator[Engine]:
    engine = create_engine(service.environment["SEGTRACK_DATABASE_URL"])
    yield engine
    engine.dispose()


@pytest.fixture
def client(service: Service) -> Iterator[SegtrackClient]:
    with SegtrackClient(service.url, token=service.token, timeout=30) as opened:
        yield opened


def _submit(client: SegtrackClient, config: dict[str, Any], *, gpus: int = 1, **extra: Any) -> int:
    """Queue a run asking for `gpus` slots (its config's `gpus`)."""
    run_id: int = client.submit({**config, "gpus": gpus}, **extra)["id"]
    return run_id


def _slots_taken(database: Engine, run_id: int) -> list[str]:
    """The slots of the run's latest claim, from its `running` status event."""
    with database.connect() as connection:
        payloads = connection.scalars(
            select(Event.payload)
            .where(Event.run_id == run_id, Event.kind == "status")
            .order_by(Event.id)
        ).all()
    slots: list[str] = [p["slots"] for p in payloads if p["status"] == "running"][-1]
    return slots


def _interval(run: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(run["started_at"]), datetime.fromisoformat(run["finished_at"])


def _overlap(first: dict[str, Any], second: dict[str, Any]) -> bool:
    (a_start, a_end), (b_start, b_end) = _interval(first), _interval(second)
    return a_start < b_end and b_start < a_end


def test_runs_take_the_slots_they_ask_for_and_never_share_one(
    client: SegtrackClient, database: Engine, service: Service
) -> None:
    wide = _submit(client, {**TINY, "epochs": 2}, gpus=2, name="wide")
    assert client.wait(wide, timeout=180)["status"] == "succeeded"
    assert sorted(_slots_taken(database, wide)) == ["cpu0", "cpu1"]
    info = client.get_run(wide)["run_info"]
    assert (info["world_size"], info["effective_batch_size"]) == (2, 2 * 8)

    narrow = [_submit(client, {**TINY, "epochs": 4}, name=f"narrow {index}") for index in range(2)]
    finals = [client.wait(run_id, timeout=180) for run_id in narrow]
    assert [final["status"] for final in finals] == ["succeeded", "succeeded"]
    assert _overlap(finals[0], finals[1]), "two 1-slot runs train at the same time"
    taken = [_slots_taken(database, run_id) for run_id in narrow]
    assert len(taken[0]) == len(taken[1]) == 1 and set(taken[0]).isdisjoint(taken[1])
    assert all(
        not slot["run"] for slot in client._call("GET", "/api/v1/workers")["workers"][0]["slots"]
    )


def test_a_more_urgent_wide_run_is_not_starved_by_narrow_ones(
    client: SegtrackClient, database: Engine, service: Service
) -> None:
    blocker = _submit(client, {**TINY, "epochs": 500}, name="blocker")
    wait_for(lambda: client.get_run(blocker)["status"] == "running", 120, "the blocker to start")

    def slot_runs() -> list[int | None]:
        workers = client._call("GET", "/api/v1/workers")["workers"]
        return [slot["run"]["id"] if slot["run"] else None for slot in workers[0]["slots"]]

    # The worker shows its slots with its next heartbeat after the claim.
    wait_for(lambda: slot_runs() == [blocker, None], 30, "the blocker in the first slot")
    wide = _submit(client, {**TINY, "epochs": 1}, gpus=2, priority=9)
    stream = [
        _submit(client, {**TINY, "epochs": 1}, priority=1, name=f"narrow {i}") for i in range(2)
    ]
    # The wide run holds the free slot for itself: the narrow runs behind it wait.
    wait_for(lambda: "waiting for them" in (service.logs / "worker0.log").read_text(), 60, "a wait")
    assert [client.get_run(run_id)["status"] for run_id in [wide, *stream]] == ["queued"] * 3

    client.cancel(blocker)
    final = client.wait(wide, timeout=180)
    narrow = [client.wait(run_id, timeout=180) for run_id in stream]
    assert final["status"] == "succeeded", final.get("failure_reason")
    assert all(run["status"] == "succeeded" for run in narrow)
    assert all(run["started_at"] >= final["finished_at"] for run in narrow)


def _training_process(service: Service, run_id: int) -> psutil.Process | None:
    worker = psutil.Process(service.workers[0].pid)
    for child in worker.children(recursive=True):
        try:
            command = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        if "worker.run_child" in command and str(run_id) in command:
            return child
    return None


def test_a_killed_training_process_fails_its_run_and_the_worker_goes_on(
    client: SegtrackClient, database: Engine, service: Service
) -> None:
    doomed = _submit(client, {**TINY, "epochs": 500}, name="doomed")
    wait_for(lambda: client.get_run(doomed)["epochs_done"] >= 1, 120, "a first epoch")
    process = wait_for(lambda: _training_process(service, doomed), 10, "its training process")
    process.send_signal(signal.SIGKILL)
    final = client.wait(doomed, timeout=60)
    assert final["status"] == "failed"
    assert final["failure_reason"] == "training process killed by signal 9 (SIGKILL)"
    assert f"[run {doomed}]" in (final["failure_traceback"] or ""), "the log's last lines"

    after = _submit(client, {**TINY, "epochs": 1}, name="after")
    assert client.wait(after, timeout=120)["status"] == "succeeded"


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


class _FreezeDataLoading:
    """Suspends (SIGSTOP) every data-loading process of a training process as it appears, so
    the training waits for its next batch forever."""

    def __init__(self, trainer: psutil.Process) -> None:
        self.trainer = trainer
        self.frozen: list[psutil.Process] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._freeze, daemon=True)
        self.thread.start()

    def _freeze(self) -> None:
        while not self.done.wait(0.05):
            try:
                loaders = self.trainer.children(recursive=True)
            except psutil.NoSuchProcess:
                return
            for loader in loaders:
                if loader.pid not in {frozen.pid for frozen in self.frozen}:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        loader.suspend()
                        self.frozen.append(loader)

    def stop(self) -> None:
        self.done.set()
        self.thread.join(5)


def test_a_run_stuck_loading_data_is_cancelled_within_the_grace(
    client: SegtrackClient, database: Engine, service: Service
) -> None:
    config = {**TINY, "num_workers": 1, "epochs": 500}
    run_id = _submit(client, config, name="stuck")
    wait_for(lambda: client.get_run(run_id)["epochs_done"] >= 1, 120, "a first epoch")
    trainer = wait_for(lambda: _training_process(service, run_id), 10, "its training process")
    freezer = _FreezeDataLoading(trainer)
    try:
        wait_for(lambda: freezer.frozen, 30, "a data-loading process to freeze")
        time.sleep(2)  # the batches it had loaded are used up: the training waits for data
        epochs = client.get_run(run_id)["epochs_done"]
        client.cancel(run_id)
        final = client.wait(run_id, timeout=4 * CANCEL_GRACE_S + 20)
    finally:
        freezer.stop()
    assert final["status"] == "cancelled"
    assert final["failure_reason"] == "the training did not stop within 2 s: SIGTERM"
    assert final["epochs_done"] == epochs
    assert _training_process(service, run_id) is None
    wait_for(lambda: all(map(_gone, freezer.frozen)), 10, "its group to be killed")


def test_a_run_wider_than_every_worker_says_so(
    client: SegtrackClient, database: Engine, service: Service
) -> None:
    wide = _submit(client, {**TINY, "epochs": 1}, gpus=4, name="too wide")
    queue = service.environment["SEGTRACK_DEFAULT_QUEUE"]
    run = client.get_run(wide)
    assert run["status"] == "queued" and run["gpus"] == 4
    assert run["placement_note"] == (
        f"needs 4 GPUs; the largest online worker of queue {queue!r} has 2"
    )
    assert client.cancel(wide)["status"] == "cancelled"


def test_the_worker_process_never_loads_torch(service: Service) -> None:
    worker = psutil.Process(service.workers[0].pid)
    maps = Path(f"/proc/{worker.pid}/maps")
    if not maps.exists():
        pytest.skip("needs /proc")
    assert "libtorch" not in maps.read_text()
