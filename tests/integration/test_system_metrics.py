"""System metrics of a run: the sampler reads a real process tree, the recorder stores `sys/`
points keyed by seconds since the run started (continuing a resumed run's timeline) into a real
PostgreSQL database and stops promptly, and the data wait reporter throttles its writes."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import psutil
import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from server.db import make_session_factory, session_scope
from server.metric.points import MetricPoint
from server.metric.service import record_metrics
from server.models import Metric, Run, utcnow
from worker import system_metrics
from worker.system_metrics import (
    SystemMetricsRecorder,
    SystemSampler,
)

HOST_KEYS = {"sys/host_memory_percent", "sys/host_memory_used_gb"}
TREE_KEYS = {"sys/cpu_percent", "sys/rss_mb"}

# A child that starts a grandchild; both burn CPU for a while, then wait to be killed.
_BURN = (
    "import time\nend = time.monotonic() + 3\nwhile time.monotonic() < end: pass\ntime.sleep(60)"
)
_CHILD = textwrap.dedent(f"""
    import subprocess, sys
    grandchild = subprocess.Popen([sys.executable, "-c", {_BURN!r}])
    print(grandchild.pid, flush=True)
    exec({_BURN!r})
""")


@pytest.fixture
def process_tree() -> Iterator[tuple[psutil.Process, psutil.Process]]:
    """A running child python and its grandchild, both busy."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    grandchild = psutil.Process(int(child.stdout.readline()))
    yield psutil.Process(child.pid), grandchild
    for process in (grandchild, psutil.Process(child.pid)):
        process.kill()
    child.wait()
    child.stdout.close()
    grandchild.wait()


def test_the_sampler_sums_a_process_tree_and_reads_the_host(
    process_tree: tuple[psutil.Process, psutil.Process],
) -> None:
    child, grandchild = process_tree
    sampler = SystemSampler(child.pid, gpu_indices=[0])
    first = sampler.sample()
    time.sleep(0.3)
    second = sampler.sample()
    sampler.close()

    for sample in (first, second):
        assert set(sample) == TREE_KEYS | HOST_KEYS  # no NVML here: no GPU rows
        assert sample["sys/cpu_percent"] > 5  # busy processes
        assert 0 < sample["sys/host_memory_percent"] < 100
        assert sample["sys/host_memory_used_gb"] > 0
    child_mb = child.memory_info().rss / 2**20
    assert second["sys/rss_mb"] > child_mb  # the grandchild counts too
    assert second["sys/rss_mb"] == pytest.approx(
        child_mb + grandchild.memory_info().rss / 2**20, rel=0.2
    )


def test_a_tree_that_has_ended_leaves_the_host_rows() -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    sampler = SystemSampler(ended.pid)
    assert set(sampler.sample()) == HOST_KEYS


def test_an_interval_under_a_second_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="at least 1 "):
        SystemMetricsRecorder(
            run_id=1,
            sessions=make_session_factory(engine),
            redis_url=None,
            root_pid=1,
            gpu_indices=[],
            interval_s=0.5,
        )


# --- storing, on a real PostgreSQL database -------------------------------------------------------


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions that really commit (the recorder writes from its own thread)."""
    return make_session_factory(engine)


@pytest.fixture
def started_run(sessions: sessionmaker[Session]) -> Iterator[int]:
    """A running run that started 100 s ago; deleted with its points afterwards."""
    with session_scope(sessions) as session:
        run = Run(
            name="system metrics",
            status="running",
            config={},
            queue="default",
            started_at=utcnow() - timedelta(seconds=100),
        )
        session.add(run)
        session.flush()
        run_id = run.id
    yield run_id
    with session_scope(sessions) as session:
        session.execute(delete(Metric).where(Metric.run_id == run_id))
        session.execute(delete(Run).where(Run.id == run_id))


def _points(sessions: sessionmaker[Session], run_id: int) -> list[Metric]:
    with session_scope(sessions, write=False) as session:
        return list(
            session.scalars(
                select(Metric).where(Metric.run_id == run_id).order_by(Metric.step, Metric.key)
            )
        )


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _recorder(
    sessions: sessionmaker[Session], run_id: int, *, interval_s: float
) -> SystemMetricsRecorder:
    return SystemMetricsRecorder(
        run_id=run_id,
        sessions=sessions,
        redis_url=None,
        root_pid=psutil.Process().pid,
        gpu_indices=[0],
        interval_s=interval_s,
    )


def test_the_recorder_stores_samples_keyed_by_seconds_since_the_start(
    sessions: sessionmaker[Session], started_run: int
) -> None:
    recorder = _recorder(sessions, started_run, interval_s=1)
    recorder.start()
    try:
        _wait_for(lambda: len({p.step for p in _points(sessions, started_run)}) >= 2, "2 samples")
    finally:
        recorder.stop()

    points = _points(sessions, started_run)
    steps = sorted({point.step for point in points})
    assert 100 <= steps[0] < 130 and steps[1] > steps[0]
    for step in steps[:2]:
        assert {p.key for p in points if p.step == step} == TREE_KEYS | HOST_KEYS
    assert all(point.epoch is None for point in points)


def test_a_resumed_run_continues_its_timeline_without_overwriting(
    sessions: sessionmaker[Session], started_run: int
) -> None:
    # An earlier attempt stored points up to step 1000, ahead of this host's clock (100 s).
    earlier = [MetricPoint("sys/cpu_percent", step, -1.0) for step in (10, 1000)]
    with session_scope(sessions) as session:
        record_metrics(session, started_run, earlier)
    recorder = _recorder(sessions, started_run, interval_s=1)
    recorder.start()
    try:
        _wait_for(lambda: len(_points(sessions, started_run)) > 2, "a sample")
    finally:
        recorder.stop()

    cpu = {p.step: p.value for p in _points(sessions, started_run) if p.key == "sys/cpu_percent"}
    assert cpu[10] == -1.0 and cpu[1000] == -1.0
    assert min(step for step in cpu if step > 1000) == 1001


def test_stop_is_prompt_in_the_middle_of_a_long_interval(
    sessions: sessionmaker[Session], started_run: int
) -> None:
    recorder = _recorder(sessions, started_run, interval_s=3600)
    recorder.start()
    _wait_for(lambda: bool(_points(sessions, started_run)), "the first sample")
    recorder.stop()
    assert not any(t.name.startswith("system-metrics-") for t in threading.enumerate())


def test_a_failed_write_is_logged_and_the_recorder_goes_on(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    missing_run = 2**31 - 1
    recorder = _recorder(sessions, missing_run, interval_s=1)
    with caplog.at_level(logging.ERROR, logger=system_metrics.__name__):
        recorder.start()
        _wait_for(
            lambda: sum("could not store" in record.getMessage() for record in caplog.records) >= 2,
            "two failed writes",
        )
        recorder.stop()
    assert f"run {missing_run}" in caplog.records[0].getMessage()
    assert f"run {missing_run} does not exist" in caplog.text
