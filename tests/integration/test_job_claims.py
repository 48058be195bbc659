"""How a worker takes a job, on a real SQLite database: only on a slot no run holds (waiting
while there is none), once however often its message comes (a redelivered copy is turned away),
and again only when the worker that had it stopped beating."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from server.db import session_scope
from server.job.repository import claim_job
from server.models import Job, utcnow
from tests.integration.worker_jobs import queued_job, worker_context
from worker.job_child import do_job
from worker.job_execution import ClaimedJob, claim_on_slot, evaluation_points
from worker.job_outcome import JobOutcome, JobRequest
from worker.slots import Slot, SlotPool


def test_a_job_takes_a_slot_no_run_holds_and_waits_while_all_are_held(
    sessions: sessionmaker[Session], run_id: int, tmp_path: Path
) -> None:
    pool = SlotPool([Slot(0, None), Slot(1, None)])
    context = worker_context(sessions, tmp_path, pool)
    pool.hold(run_id, ["cpu0"])
    first = claim_on_slot(context, queued_job(sessions, run_id))
    assert first is not None
    claimed, slot = first
    assert slot.label == "cpu1"
    assert [(holder.run_id, holder.job_id) for holder in pool.holders()] == [
        (run_id, None),
        (None, claimed.job_id),
    ]

    second_id = queued_job(sessions, run_id)
    got: list[tuple[ClaimedJob, Slot] | None] = []
    waiting = threading.Thread(target=lambda: got.append(claim_on_slot(context, second_id)))
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive(), "the job started with every slot held"
    pool.release(run_id)
    waiting.join(10)
    assert got and got[0] is not None and got[0][1].label == "cpu0"


def test_a_job_is_claimed_once_and_taken_over_only_from_a_silent_worker(
    sessions: sessionmaker[Session], run_id: int
) -> None:
    job_id = queued_job(sessions, run_id)
    recent = utcnow() - timedelta(seconds=30)
    with session_scope(sessions) as session:
        assert claim_job(session, job_id, worker="a", stale_before=recent) is not None
    with session_scope(sessions) as session:
        assert claim_job(session, job_id, worker="b", stale_before=recent) is None
        session.execute(
            update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(minutes=5))
        )
    with session_scope(sessions) as session:
        taken = claim_job(session, job_id, worker="b", stale_before=recent)
        assert taken is not None and taken.worker == "b"


def test_only_a_succeeded_test_evaluation_gives_metrics_at_the_checkpoints_epoch() -> None:
    result = {"split": "test", "epoch": 7, "metrics": {"test/iou": 0.5, "test/iou/a": None}}
    evaluation = ClaimedJob(1, 2, "evaluate", {})
    points = evaluation_points(evaluation, JobOutcome("succeeded", result=result))
    assert [(p.key, p.step, p.value, p.epoch) for p in points] == [("test/iou", 7, 0.5, 7)]
    assert (
        evaluation_points(evaluation, JobOutcome("succeeded", result={**result, "split": "val"}))
        == []
    )
    assert evaluation_points(evaluation, JobOutcome("failed", result=result)) == []


def test_a_job_that_cannot_be_done_fails_with_its_reason(tmp_path: Path) -> None:
    missing = tmp_path / "gone.pt"
    JobRequest(1, 2, "export", str(missing), {"format": "onnx"}).write(tmp_path / "request.json")
    outcome = do_job(tmp_path)
    assert outcome.status == "failed"
    assert outcome.reason is not None and "gone.pt" in outcome.reason
