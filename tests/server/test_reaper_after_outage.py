"""After the database was away, the reaper gives the workers one heartbeat timeout to be seen
again before it declares their runs lost: their beats failed during the outage too."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from server import reaper
from server.models import Run, utcnow
from server.reaper import ReapReport, reap_once, run_reaper
from server.run.lifecycle import claim_run
from server.settings import Settings
from tests.server.helpers import ApiClient, RecordingTaskQueue, valid_config


def test_a_pass_that_does_not_judge_heartbeats_leaves_silent_runs_running(
    client: ApiClient,
    shapes_dataset: Path,
    db_session: Session,
    settings: Settings,
    task_queue: RecordingTaskQueue,
) -> None:
    run_id = client.post("/api/v1/runs", json={"config": valid_config()}).json()["id"]
    claim_run(db_session, run_id, worker="w1", device="cpu")
    silent_since = utcnow() - timedelta(seconds=settings.heartbeat_timeout_s + 5)
    db_session.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=silent_since))

    assert reap_once(db_session, settings, task_queue, judge_heartbeats=False).failed == []
    assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "running"
    assert reap_once(db_session, settings, task_queue).failed == [run_id]


class _Stop(BaseException):
    """Ends the reaper's loop in the test."""


def test_after_a_failed_pass_heartbeats_wait_one_timeout(
    settings: Settings, task_queue: RecordingTaskQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = settings.model_copy(update={"reaper_interval_s": 0.001, "heartbeat_timeout_s": 3.0})
    judged: list[bool] = []

    def one_pass(*_args: object, judge_heartbeats: bool) -> ReapReport:
        judged.append(judge_heartbeats)
        if len(judged) == 1:
            raise OperationalError("SELECT", {}, Exception("connection refused"))
        if len(judged) == 5:
            raise _Stop
        return ReapReport()

    ticks = iter(range(100))  # each reading of the clock is one second later
    monkeypatch.setattr(reaper, "reap_once", one_pass)
    factory = sessionmaker[Session]()
    with pytest.raises(_Stop):
        asyncio.run(run_reaper(factory, quick, task_queue, clock=lambda: float(next(ticks))))
    # Failed at second 0; not judged at 1 and 2; judged again at 3, a heartbeat timeout later.
    assert judged == [True, False, False, True, True]
