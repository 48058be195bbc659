"""A worker's writes outlast database hiccups: a locked or unreachable database delays a report,
a heartbeat or an outcome but never loses it, within a documented limit; and the traceback a
failed run stores carries no SQL parameters."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from server.db import session_scope
from server.models import MetricSummary, Run
from server.settings import Settings
from worker import run_child
from worker.heartbeat import Heartbeat, WorkerIdentity
from worker.report_writer import ReportWriter
from worker.reporter import DbReporter
from worker.retry import DatabaseUnavailableError, is_transient, retry_write
from worker.slots import Slot, SlotPool

IDENTITY = WorkerIdentity("cpu1@test", "test", 1, "cpu", ("default",))


def _operational(orig: Exception) -> OperationalError:
    return OperationalError("UPDATE runs SET x = ?", ("secret",), orig)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def test_transient_errors_are_told_from_lasting_ones() -> None:
    assert is_transient(_operational(sqlite3.OperationalError("database is locked")))
    assert not is_transient(_operational(sqlite3.OperationalError("no such table: runs")))
    assert is_transient(_operational(psycopg.OperationalError("server closed the connection")))
    assert is_transient(PoolTimeoutError("QueuePool limit of size 10 overflow 20 reached"))
    integrity = IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not is_transient(integrity)
    assert not is_transient(ValueError("not a database error"))


def test_a_write_is_retried_with_back_off_until_it_commits() -> None:
    clock = FakeClock()
    failures = iter([_operational(sqlite3.OperationalError("database is locked"))] * 6)

    def write() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "stored"

    stored = retry_write(write, what="test", limit_s=300, sleep=clock.sleep, clock=clock)
    assert stored == "stored"
    assert len(clock.sleeps) == 6
    assert clock.sleeps[-1] > clock.sleeps[0]  # the waits grow


def test_a_write_gives_up_after_the_limit_with_the_database_error() -> None:
    clock = FakeClock()

    def write() -> None:
        raise _operational(sqlite3.OperationalError("database is locked"))

    with pytest.raises(DatabaseUnavailableError, match=r"for 30 s .*database is locked") as raised:
        retry_write(write, what="metrics of epoch 3", limit_s=30, sleep=clock.sleep, clock=clock)
    assert "metrics of epoch 3" in str(raised.value) and "secret" not in str(raised.value)
    assert clock.now == pytest.approx(30)


def test_a_lasting_error_is_not_retried() -> None:
    clock = FakeClock()
    calls = []

    def write() -> None:
        calls.append(1)
        raise _operational(sqlite3.OperationalError("no such table: runs"))

    with pytest.raises(OperationalError):
        retry_write(write, what="test", limit_s=300, sleep=clock.sleep, clock=clock)
    assert calls == [1] and clock.sleeps == []


# --- on a real SQLite database --------------------------------------------------------------------


class _Retried(logging.Handler):
    """Sets `seen` once a write was retried."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.seen.set()


def _hold_the_lock_until(
    sessions: sessionmaker[Session], event: threading.Event
) -> tuple[threading.Thread, threading.Event]:
    """Another writer (an ingest request, say) holds the write lock until `event` is set."""
    holding = threading.Event()

    def hold() -> None:
        with session_scope(sessions) as session:
            session.execute(text("UPDATE runs SET notes = 'busy'"))
            holding.set()
            event.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    return thread, holding


@pytest.fixture
def retried() -> Iterator[_Retried]:
    handler = _Retried()
    logger = logging.getLogger("worker.retry")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_an_epoch_report_waits_out_a_locked_database(
    sessions: sessionmaker[Session], run_id: int, tmp_path: Path, retried: _Retried
) -> None:
    writer = ReportWriter(run_id=run_id, sessions=sessions, redis_url=None, limit_s=300)
    reporter = DbReporter(
        run_id=run_id, writer=writer, artifacts_dir=tmp_path, stop_requested=lambda: False
    )
    holder, holding = _hold_the_lock_until(sessions, retried.seen)
    assert holding.wait(10)
    reporter.on_epoch_end(1, {"val/iou": 0.5, "train/loss": 1.25})
    holder.join(10)
    writer.flush()
    writer.close()
    assert retried.seen.is_set()
    with session_scope(sessions, write=False) as session:
        counts = dict(session.execute(select(MetricSummary.key, MetricSummary.count)).all())
        epochs = session.scalar(select(Run.epochs_done).where(Run.id == run_id))
    assert counts == {"train/loss": 1, "val/iou": 1} and epochs == 1


def test_a_heartbeat_waits_out_a_locked_database(
    sessions: sessionmaker[Session], run_id: int, retried: _Retried
) -> None:
    beat = Heartbeat(
        sessions,
        IDENTITY,
        interval=10,
        slots=SlotPool([Slot(0, None)]),
        taking_messages=lambda: False,
    )
    holder, holding = _hold_the_lock_until(sessions, retried.seen)
    assert holding.wait(10)
    beat.watch(run_id)  # beats once, now
    holder.join(10)
    assert retried.seen.is_set() and not beat.stop_requested(run_id)


def test_a_failed_runs_traceback_has_no_sql_parameters(
    sessions: sessionmaker[Session], run_id: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An engine that shows parameters, as any library's might: the worker strips them anyway.
    # (The value travels in a variable: a traceback shows the lines of code, and so their literals.)
    plain = create_engine("sqlite://")
    secret = "hunter" + "2"
    with plain.connect() as connection, pytest.raises(OperationalError) as raised:
        connection.execute(text("SELECT * FROM missing WHERE token = :t"), {"t": secret})
    plain.dispose()
    assert secret in str(raised.value)

    def fit(*_args: object, **_kwargs: object) -> None:
        raise raised.value

    monkeypatch.setattr(run_child, "fit", fit)
    outcome = run_child.train(
        Settings(data_dir=tmp_path),
        sessions,
        run_id,
        {"dataset": "demo"},
        resume=False,
        stop_requested=lambda: False,
    )
    assert outcome.status == "failed" and outcome.reason and outcome.details
    assert "no such table: missing" in outcome.reason
    assert secret not in outcome.reason and secret not in outcome.details
    assert "[SQL parameters hidden]" in outcome.details
