"""System metrics of a run: the sampler reads a real process tree, the recorder stores `sys/`
points keyed by seconds since the run started (continuing a resumed run's timeline) into a real
PostgreSQL database and stops promptly, the data wait reporter throttles its writes; and the
metric reads and exports keep these time-keyed series apart from epochs."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pandas as pd
import psutil
import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from server import exports
from server.db import make_session_factory, session_scope
from server.metric import across_runs, service
from server.metric.points import MetricPoint
from server.metric.repository import read_rows
from server.metric.service import record_metrics
from server.models import Metric, Run, utcnow
from trainer.reporting import EpochProgress
from worker import report_writer, system_metrics
from worker.report_writer import ReportWriter
from worker.system_metrics import (
    DATA_WAIT_KEY,
    DataWaitReporter,
    SystemMetricsRecorder,
    SystemSampler,
)

HOST_KEYS = {"sys/host_memory_percent", "sys/host_memory_used_gb"}
TREE_KEYS = {"sys/cpu_percent", "sys/rss_mb"}

# A child that starts a grandchild; both burn CPU for a while, then wait to be killed.
_BURN = (
    "import time\nend = time.monotonic() + 20\nwhile time.monotonic() < end: pass\ntime.sleep(60)"
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
    tree = (psutil.Process(child.pid), grandchild)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(process.cpu_times().user < 0.3 for process in tree):
        time.sleep(0.05)  # busy for a while, even on a loaded machine
    yield tree
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
    time.sleep(1.0)
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


@pytest.mark.gpu
def test_the_sampler_reads_a_gpu_through_nvml() -> None:
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pytest.skip("no NVIDIA driver")
    try:
        if pynvml.nvmlDeviceGetCount() == 0:
            pytest.skip("no GPU")
        uuid = pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(0))
    finally:
        pynvml.nvmlShutdown()
    uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
    for named_as in (0, "0", uuid):  # as CUDA_VISIBLE_DEVICES may name it
        sampler = SystemSampler(psutil.Process().pid, gpu_indices=[named_as])
        sample = sampler.sample()
        sampler.close()
        gpu = {
            key.removeprefix("sys/gpu0/"): value for key, value in sample.items() if "gpu" in key
        }
        assert {"utilization_percent", "memory_used_mb", "memory_total_mb"} <= set(gpu), named_as
        assert 0 <= gpu["utilization_percent"] <= 100
        assert 0 <= gpu["memory_used_mb"] <= gpu["memory_total_mb"]
        assert set(gpu) <= {
            "utilization_percent",
            "memory_used_mb",
            "memory_total_mb",
            "temperature_c",
            "power_w",
        }


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


def _writer(sessions: sessionmaker[Session], run_id: int) -> ReportWriter:
    return ReportWriter(run_id=run_id, sessions=sessions, redis_url=None, limit_s=10)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_data_wait_reporter_writes_at_most_once_per_interval(
    sessions: sessionmaker[Session], started_run: int
) -> None:
    clock = FakeClock()
    writer = _writer(sessions, started_run)
    reporter = DataWaitReporter(run_id=started_run, writer=writer, interval_s=5, clock=clock)
    for batch, share in enumerate([0.25, 0.5, 0.75]):  # within one interval
        reporter.on_train_progress(EpochProgress(2, batch, 10, data_wait_share=share))
        writer.flush()  # the run's clock is read with the first point, before the fake one moves
        clock.now += 1.5
    reporter.on_train_progress(EpochProgress(2, 4, 10, data_wait_share=None))  # nothing measured
    clock.now += 1.0  # 5.5 s after the first write
    reporter.on_train_progress(EpochProgress(3, 0, 10, data_wait_share=0.1))
    writer.flush()
    writer.close()

    points = [(p.key, p.step, p.value, p.epoch) for p in _points(sessions, started_run)]
    first_step = points[0][1]
    assert 100 <= first_step < 130
    # The first report at once; then the mean of the reports since (none tagged with an epoch,
    # which would count the epoch in progress as done).
    assert points == [
        (DATA_WAIT_KEY, first_step, 25.0, None),
        (DATA_WAIT_KEY, first_step + 5, pytest.approx(45.0), None),
    ]


def test_a_data_wait_write_that_fails_is_logged_and_training_goes_on(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    writer = _writer(sessions, 2**31 - 1)
    reporter = DataWaitReporter(run_id=2**31 - 1, writer=writer, interval_s=5, clock=FakeClock())
    with caplog.at_level(logging.WARNING, logger=report_writer.__name__):
        reporter.on_train_progress(EpochProgress(1, 0, 10, data_wait_share=0.5))
        writer.flush()  # raises nothing: the run does without the point
    writer.close()
    assert "dropped the data wait share" in caplog.text
    assert "does not exist" in caplog.text


# --- how the metric APIs and exports treat system series ------------------------------------------


def _run_with_epochs_and_system_series(session: Session) -> int:
    """Two epochs of val/iou (steps 1, 2) and system samples at 0..9 s, 5 of them past 2 s."""
    run = Run(name="mixed", status="running", config={}, queue="default", started_at=utcnow())
    session.add(run)
    session.flush()
    points = [MetricPoint("val/iou", epoch, 0.1 * epoch, epoch) for epoch in (1, 2)]
    points += [MetricPoint("sys/cpu_percent", second, 50.0 + second) for second in range(10)]
    points += [MetricPoint("sys/gpu0/memory_used_mb", second, 1024.0) for second in range(10)]
    record_metrics(session, run.id, points)
    return run.id


def test_values_at_an_epoch_leave_system_series_out(db_session: Session) -> None:
    run_id = _run_with_epochs_and_system_series(db_session)
    for epoch in ("last", 2):
        (item,) = across_runs.values_at(db_session, [run_id], epoch, keys=None)
        assert item["epoch"] == 2 and item["values"] == {"val/iou": pytest.approx(0.2)}


def test_a_run_with_only_system_series_has_no_last_epoch(db_session: Session) -> None:
    run = Run(name="warming up", status="running", config={}, queue="default")
    db_session.add(run)
    db_session.flush()
    record_metrics(db_session, run.id, [MetricPoint("sys/cpu_percent", 300, 12.0)])
    assert across_runs.values_at(db_session, [run.id], "last", keys=None) == [
        {"run_id": run.id, "epoch": None, "values": {}}
    ]


def test_a_long_system_series_is_downsampled_like_any_other(db_session: Session) -> None:
    run = Run(name="long", status="running", config={}, queue="default")
    db_session.add(run)
    db_session.flush()
    key = "sys/gpu12/utilization_percent"
    points = [MetricPoint(key, 5 * i, float(i % 100)) for i in range(7200)]  # 10 h every 5 s
    record_metrics(db_session, run.id, points)
    series = service.read_metrics(db_session, run.id, keys=[key], after_step=None, max_points=300)
    assert series[key]["downsampled"] and len(series[key]["step"]) <= 300
    assert series[key]["last"] == {"step": 5 * 7199, "value": 99.0}


def test_the_metrics_export_keeps_training_and_system_tables_apart(db_session: Session) -> None:
    run_id = _run_with_epochs_and_system_series(db_session)
    rows = read_rows(db_session, run_id)

    training = pd.read_csv(io.StringIO(exports.metrics_csv(rows)))
    assert list(training.columns) == ["step", "epoch", "val/iou"]
    assert training["step"].tolist() == [1, 2]

    system = pd.read_csv(io.StringIO(exports.metrics_csv(rows, "system")))
    assert list(system.columns) == ["elapsed_s", "sys/cpu_percent", "sys/gpu0/memory_used_mb"]
    assert system["elapsed_s"].tolist() == list(range(10))
    assert system["sys/cpu_percent"].tolist() == [50.0 + second for second in range(10)]
    assert exports.metrics_csv([], "system") == "elapsed_s\n"


def test_the_runs_export_has_no_columns_for_system_series(db_session: Session) -> None:
    run_id = _run_with_epochs_and_system_series(db_session)
    run = db_session.get(Run, run_id)
    assert run is not None
    last_values = {run_id: {"val/iou": 0.2, "sys/cpu_percent": 59.0, "sys/rss_mb": 800.0}}
    frame = pd.read_csv(io.StringIO(exports.runs_csv([run], {}, last_values)))
    assert "metric.val/iou" in frame.columns
    assert not [column for column in frame.columns if "sys/" in column]
