"""Cancelling a job on a worker, on a real SQLite database and a real job process: a running
job is stopped at its next heartbeat (its process group gets SIGTERM) and ends `cancelled` with
the reason its cancel gave; its slot shows the job on the workers row while it runs and is free
again afterwards. A job cancelled while it waited for a slot is never started."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from server.db import session_scope
from server.job.paths import job_dir
from server.job.repository import request_cancel
from server.models import Job, Worker
from tests.integration.services import wait_for
from tests.integration.worker_jobs import queued_job, worker_context
from worker import job_execution
from worker.slots import Slot, SlotPool


def _job_row(sessions: sessionmaker[Session], job_id: int) -> tuple[str, str | None, bool]:
    with session_scope(sessions, write=False) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.status, job.reason, job.started_at is not None


def _slots(sessions: sessionmaker[Session]) -> list[dict[str, object]]:
    with session_scope(sessions, write=False) as session:
        worker = session.get(Worker, "cpu1@test")
        return [] if worker is None else list(worker.slots)


@pytest.fixture
def sleepy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_execution, "CHILD_MODULE", "tests.integration.sleepy_job_child")
    monkeypatch.setattr(job_execution, "BEAT_S", 0.2)
    monkeypatch.setattr(job_execution, "STOP_GRACE_S", 5.0)


@pytest.mark.usefixtures("sleepy")
def test_a_running_job_cancelled_is_stopped_and_ends_cancelled(
    sessions: sessionmaker[Session], run_id: int, tmp_path: Path
) -> None:
    pool = SlotPool([Slot(0, None)])
    context = worker_context(sessions, tmp_path, pool)
    job_id = queued_job(sessions, run_id, "predict_image", {"checkpoint": "best"})
    said: list[str] = []
    worker = threading.Thread(
        target=lambda: said.append(job_execution.execute_job(context, job_id))
    )
    worker.start()
    pid_file = job_dir(tmp_path / "artifacts", run_id, job_id) / "pid"
    wait_for(pid_file.exists, 60, "the job's process to start")
    pid = int(pid_file.read_text(encoding="utf-8"))
    assert _job_row(sessions, job_id)[0] == "running"
    assert _slots(sessions) == [{"slot": 0, "gpu": None, "run_id": None, "job_id": job_id}]

    with session_scope(sessions) as session:
        assert request_cancel(session, job_id, reason="cancelled by admin")
    worker.join(30)
    assert not worker.is_alive(), "the cancelled job's process was not stopped"
    assert said == [f"job {job_id} cancelled"]
    assert _job_row(sessions, job_id) == ("cancelled", "cancelled by admin", True)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert _slots(sessions) == [{"slot": 0, "gpu": None, "run_id": None, "job_id": None}]
    assert [holder.job_id for holder in pool.holders()] == [None]


@pytest.mark.usefixtures("sleepy")
def test_a_job_cancelled_while_waiting_for_a_slot_never_starts(
    sessions: sessionmaker[Session], run_id: int, tmp_path: Path
) -> None:
    pool = SlotPool([Slot(0, None)])
    context = worker_context(sessions, tmp_path, pool)
    pool.hold(run_id, ["cpu0"])  # a training has the only slot
    job_id = queued_job(sessions, run_id, "predict_image", {"checkpoint": "best"})
    said: list[str] = []
    worker = threading.Thread(
        target=lambda: said.append(job_execution.execute_job(context, job_id))
    )
    worker.start()
    worker.join(0.5)
    assert worker.is_alive(), "the job did not wait for the slot"
    with session_scope(sessions) as session:
        assert request_cancel(session, job_id, reason="cancelled by admin")
    pool.release(run_id)
    worker.join(30)
    assert said == [f"skipped: job {job_id} is not queued"]
    assert _job_row(sessions, job_id) == ("cancelled", "cancelled by admin", False)
    assert not job_dir(tmp_path / "artifacts", run_id, job_id).exists()
