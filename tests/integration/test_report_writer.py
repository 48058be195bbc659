"""A run's reports are stored by a background writer: the training hands them over and goes on
while the database is locked or away, they are stored in order once it answers, at most a bounded
number wait, and an outage past the limit fails the run with a reason naming the limit's setting.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from server.db import create_db_engine, make_session_factory, session_scope
from server.models import Metric, Run
from server.settings import Settings
from trainer.loop import FitResult
from trainer.reporting import Reporter
from worker import report_writer, run_child
from worker.report_writer import ReportWriteError, ReportWriter
from worker.retry import OUTAGE_LIMIT_SETTING


def _note(value: str) -> Callable[[Session], object]:
    """A report that appends `value` to the run's notes, so they show the order of the reports."""
    return lambda session: session.execute(
        text("UPDATE runs SET notes = notes || :v"), {"v": value}
    )


def _notes(sessions: sessionmaker[Session], run_id: int) -> str | None:
    with session_scope(sessions, write=False) as session:
        return session.scalar(select(Run.notes).where(Run.id == run_id))


def _locked() -> OperationalError:
    return OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked"))


def test_reports_handed_over_while_the_database_is_locked_are_stored_in_order(
    sessions: sessionmaker[Session], run_id: int
) -> None:
    writer = ReportWriter(run_id=run_id, sessions=sessions, redis_url=None, limit_s=60)
    release = threading.Event()
    holding = threading.Event()

    def hold() -> None:  # another writer (an ingest request) keeps the write lock
        with session_scope(sessions) as session:
            session.execute(text("UPDATE runs SET notes = 'busy;'"))
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    for index in range(5):
        writer.submit(f"note {index}", _note(f"{index};"))
    # Every submit returned while the database was locked: nothing is stored yet.
    assert not _notes(sessions, run_id)
    release.set()
    holder.join(10)
    writer.flush()
    writer.close()
    assert _notes(sessions, run_id) == "busy;0;1;2;3;4;"


def test_the_training_waits_only_once_the_queue_is_full(
    sessions: sessionmaker[Session], run_id: int
) -> None:
    writer = ReportWriter(run_id=run_id, sessions=sessions, redis_url=None, limit_s=60, capacity=1)
    taken = threading.Event()
    release = threading.Event()

    def slow(_session: Session) -> None:
        taken.set()
        release.wait(10)

    writer.submit("slow report", slow)
    assert taken.wait(10)  # the writer holds it; the queue is empty again
    writer.submit("queued report", _note("queued;"))
    third = threading.Thread(target=writer.submit, args=("third", _note("third;")))
    third.start()
    third.join(0.3)
    assert third.is_alive(), "the third report waits for room"
    release.set()
    third.join(10)
    assert not third.is_alive()
    writer.flush()
    writer.close()
    assert _notes(sessions, run_id) == "queued;third;"


def test_an_outage_past_the_limit_fails_the_next_report_naming_the_setting(
    sessions: sessionmaker[Session], run_id: int
) -> None:
    writer = ReportWriter(run_id=run_id, sessions=sessions, redis_url=None, limit_s=0.2)

    def unreachable(_session: Session) -> None:
        raise _locked()

    writer.submit("metrics of epoch 3", unreachable)
    writer.submit("metrics of epoch 4", _note("after the failure"))
    with pytest.raises(ReportWriteError) as raised:
        writer.flush()
    reason = str(raised.value)
    assert "metrics of epoch 3" in reason and "database is locked" in reason
    assert f"0.2 s, the limit {OUTAGE_LIMIT_SETTING} sets" in reason
    assert "Traceback" in raised.value.details
    with pytest.raises(ReportWriteError):
        writer.submit("metrics of epoch 5", _note("later"))
    writer.close()
    assert not _notes(sessions, run_id), "nothing after the failed report is stored"


def test_a_lasting_error_fails_at_once_and_a_droppable_report_only_logs(
    sessions: sessionmaker[Session], run_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    writer = ReportWriter(run_id=run_id, sessions=sessions, redis_url=None, limit_s=300)

    def broken(_session: Session) -> None:
        raise ValueError("no such key")

    with caplog.at_level(logging.WARNING, logger=report_writer.__name__):
        writer.submit("data wait share", broken, essential=False)
        writer.flush()
    assert "dropped the data wait share: no such key" in caplog.text
    writer.submit("previews of epoch 2", broken)
    with pytest.raises(ReportWriteError, match="could not store the previews of epoch 2: Value"):
        writer.flush()
    writer.close()


def test_a_run_whose_database_stays_away_fails_with_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 9 (discard): every connection is refused, as in an outage.
    engine = create_db_engine("postgresql+psycopg://postgres@127.0.0.1:9/none")
    trained: list[int] = []

    def fit(_cfg: object, reporter: Reporter, **_kwargs: object) -> FitResult:
        for epoch in (1, 2, 3):
            reporter.on_epoch_end(epoch, {"train/loss": 1.0 / epoch})
            trained.append(epoch)
        return FitResult("completed", 3, "val/iou", None, None, {}, None, None)

    monkeypatch.setattr(run_child, "fit", fit)
    settings = Settings(data_dir=tmp_path, worker_outage_limit_s=0.5)
    outcome = run_child.train(
        settings,
        make_session_factory(engine),
        7,
        {"dataset": "demo"},
        resume=False,
        stop_requested=lambda: False,
    )
    engine.dispose()
    assert trained == [1, 2, 3], "the training went on while its reports waited"
    assert outcome.status == "failed" and outcome.reason is not None
    assert "metrics of epoch 1" in outcome.reason
    assert "the limit SEGTRACK_WORKER_OUTAGE_LIMIT_S sets" in outcome.reason


def test_reports_stored_after_the_training_returned_are_flushed_first(
    sessions: sessionmaker[Session], run_id: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fit(_cfg: object, reporter: Reporter, **_kwargs: object) -> FitResult:
        for epoch in range(1, 21):
            reporter.on_epoch_end(epoch, {"train/loss": 1.0 / epoch})
        return FitResult("completed", 20, "val/iou", None, None, {}, None, None)

    monkeypatch.setattr(run_child, "fit", fit)
    outcome = run_child.train(
        Settings(data_dir=tmp_path),
        sessions,
        run_id,
        {"dataset": "demo"},
        resume=False,
        stop_requested=lambda: False,
    )
    assert outcome.status == "succeeded"
    with session_scope(sessions, write=False) as session:
        steps = session.scalars(select(Metric.step).where(Metric.run_id == run_id)).all()
    assert sorted(steps) == list(range(1, 21))
