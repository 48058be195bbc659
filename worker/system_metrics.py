"""System metrics of a training run: GPU, CPU and memory samples stored as `sys/...` series.

While a run trains, `SystemMetricsRecorder` (a thread in the worker's process) samples every few
seconds and `DataWaitReporter` (a trainer reporter on rank 0) adds how long the steps wait for
data. Keys, one point per sample:

- `sys/cpu_percent`: CPU used by the run's process tree (the launcher, its ranks and their
  DataLoader workers, summed), in % of one core, so four busy cores read 400.
- `sys/rss_mb`: resident memory of that tree, summed, in MiB (shared pages count in each process).
- `sys/host_memory_percent`, `sys/host_memory_used_gb`: the machine's memory in use (total minus
  available), in % and GiB.
- `sys/gpu<N>/utilization_percent`, `sys/gpu<N>/memory_used_mb`, `sys/gpu<N>/memory_total_mb`
  (MiB), `sys/gpu<N>/temperature_c`, `sys/gpu<N>/power_w`: per GPU the run was given, `N` its NVML
  index (PCI bus order, as `nvidia-smi` numbers them). Without NVML (no driver, no GPU,
  `nvidia-ml-py` missing) there are no GPU rows; a reading a GPU does not support (power on some
  boards) is left out.
- `sys/data_wait_percent`: the share of rank 0's step time spent waiting for the next batch, in %.

System series are keyed by time, not by epoch: the step is whole seconds since the run's
`started_at`. A resumed run keeps its first `started_at`, so its points continue the timeline;
steps also never go back to or below the run's last stored `sys/` step, so nothing earlier is
overwritten even when the clock moves back. Their points carry no epoch (a point tagged with the
epoch in progress would count that epoch as done); values "at an epoch" and the epoch charts
leave them out, and the run page draws them in a "System" group against elapsed time.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

import psutil
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, sessionmaker

from server.db import session_scope
from server.events import notify_committed
from server.metric.points import SYSTEM_PREFIX, MetricPoint
from server.metric.service import record_metrics
from server.models import MetricSummary, Run, utcnow
from trainer.reporting import EpochProgress, NullReporter
from worker.report_writer import ReportWriter
from worker.retry import DatabaseUnavailableError, retry_write

logger = logging.getLogger(__name__)

DATA_WAIT_KEY = f"{SYSTEM_PREFIX}data_wait_percent"
MIN_INTERVAL_S = 1.0
"""Steps are whole seconds, so two samples less than a second apart would share one."""
WRITE_RETRY_LIMIT_S = 10.0
"""A sample that cannot be stored for this long is dropped: the next one follows soon."""
STOP_JOIN_S = 5.0
"""How long `stop()` waits for a write in flight before leaving the (daemon) thread behind."""
RECORDER_KEYS = MetricSummary.key.startswith(SYSTEM_PREFIX) & (MetricSummary.key != DATA_WAIT_KEY)
DATA_WAIT_KEYS = MetricSummary.key == DATA_WAIT_KEY
_MIB = 2**20
_GIB = 2**30


def _check_interval(interval_s: float) -> None:
    if not (math.isfinite(interval_s) and interval_s >= MIN_INTERVAL_S):
        raise ValueError(
            f"interval_s must be a number of seconds of at least {MIN_INTERVAL_S:g} "
            f"(system metrics are keyed by whole seconds), got {interval_s!r}"
        )


# --- sampling -------------------------------------------------------------------------------------


GpuId = int | str
"""A GPU as `CUDA_VISIBLE_DEVICES` names it: its NVML index (PCI bus order), or its UUID."""


class _Gpus:
    """NVML readings of some GPUs; silent (no readings) where NVML is absent or fails."""

    def __init__(self, gpus: Sequence[GpuId]) -> None:
        self._nvml: ModuleType | None = None
        self._handles: dict[int, Any] = {}
        """NVML index (the `N` of `sys/gpu<N>/...`) -> device handle."""
        if not gpus:
            return
        try:
            import pynvml  # noqa: PLC0415 - lazily: it (and a driver) exist on GPU hosts only

            pynvml.nvmlInit()
        except Exception as error:  # ImportError, or NVMLError without a driver
            logger.info("no GPU metrics: NVML is not available (%s)", error)
            return
        self._nvml = pynvml
        for gpu in gpus:
            try:
                if isinstance(gpu, int) or gpu.isdigit():
                    handle = pynvml.nvmlDeviceGetHandleByIndex(int(gpu))
                else:
                    handle = pynvml.nvmlDeviceGetHandleByUUID(gpu)
                self._handles[int(pynvml.nvmlDeviceGetIndex(handle))] = handle
            except pynvml.NVMLError as error:
                logger.warning("no metrics for GPU %s: NVML does not know it (%s)", gpu, error)

    def read(self) -> dict[str, float]:
        readings: dict[str, float] = {}
        if self._nvml is not None:
            for index, handle in self._handles.items():
                readings.update(self._read_one(self._nvml, f"{SYSTEM_PREFIX}gpu{index}/", handle))
        return readings

    @staticmethod
    def _read_one(nvml: Any, name: str, handle: Any) -> dict[str, float]:
        """One GPU's readings; one it does not support (power on some boards) is left out."""
        readings: dict[str, float] = {}
        with contextlib.suppress(nvml.NVMLError):
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            readings[name + "memory_used_mb"] = memory.used / _MIB
            readings[name + "memory_total_mb"] = memory.total / _MIB
        with contextlib.suppress(nvml.NVMLError):
            utilization = nvml.nvmlDeviceGetUtilizationRates(handle)
            readings[name + "utilization_percent"] = float(utilization.gpu)
        with contextlib.suppress(nvml.NVMLError):
            kind = nvml.NVML_TEMPERATURE_GPU
            readings[name + "temperature_c"] = float(nvml.nvmlDeviceGetTemperature(handle, kind))
        with contextlib.suppress(nvml.NVMLError):
            readings[name + "power_w"] = nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
        return readings

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as error:
                logger.warning("NVML did not shut down cleanly: %s", error)
            self._nvml = None


class SystemSampler:
    """Reads the `sys/` metrics of one process tree and some GPUs (see the module docstring).

    CPU % is measured between consecutive `sample()` calls; the first call (and a process first
    seen then) reports the average since each process started. CPU used by a process that ended
    between two samples is not counted.
    """

    def __init__(
        self,
        root_pid: int,
        gpu_indices: Sequence[GpuId] = (),
    ) -> None:
        self._root_pid = root_pid
        self._gpus = _Gpus(gpu_indices)
        self._cpu_seconds: dict[tuple[int, float], float] = {}
        """CPU seconds of each process (pid, creation time) at the previous sample."""
        self._previous_at: float | None = None

    def _tree(self) -> Iterator[psutil.Process]:
        try:
            root = psutil.Process(self._root_pid)
            yield root
            yield from root.children(recursive=True)
        except psutil.Error:  # gone, or not ours to list
            return

    def _processes(self) -> tuple[float | None, float | None]:
        """CPU % and resident MiB of the tree; None when it has gone."""
        now = time.time()  # wall clock, as process creation times are
        cpu_percent = 0.0
        rss = 0
        seen: dict[tuple[int, float], float] = {}
        for process in self._tree():
            try:
                with process.oneshot():
                    created = process.create_time()
                    times = process.cpu_times()
                    rss += process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # ended meanwhile (a DataLoader worker), or not ours to read
            used = times.user + times.system
            identity = (process.pid, created)
            seen[identity] = used
            before = self._cpu_seconds.get(identity)
            if before is not None and self._previous_at is not None:
                span, spent = now - self._previous_at, used - before
            elif self._previous_at is not None and created >= self._previous_at:
                span, spent = now - self._previous_at, used  # born since the last sample
            else:
                span, spent = now - created, used  # no earlier reading: its lifetime average
            if span > 0:
                cpu_percent += 100.0 * max(spent, 0.0) / span
        self._cpu_seconds = seen
        self._previous_at = now
        if not seen:
            return None, None
        return cpu_percent, rss / _MIB

    def sample(self) -> dict[str, float]:
        """`{key: value}` now: process tree rows (when it lives), host rows, GPU rows."""
        readings: dict[str, float] = {}
        cpu_percent, rss_mb = self._processes()
        if cpu_percent is not None and rss_mb is not None:
            readings[f"{SYSTEM_PREFIX}cpu_percent"] = cpu_percent
            readings[f"{SYSTEM_PREFIX}rss_mb"] = rss_mb
        memory = psutil.virtual_memory()
        used = memory.total - memory.available
        readings[f"{SYSTEM_PREFIX}host_memory_percent"] = 100.0 * used / memory.total
        readings[f"{SYSTEM_PREFIX}host_memory_used_gb"] = used / _GIB
        readings.update(self._gpus.read())
        return readings

    def close(self) -> None:
        """Release NVML."""
        self._gpus.close()


# --- the time axis --------------------------------------------------------------------------------


class RunClock:
    """Steps of `sys/` points: whole seconds since the run started, strictly increasing.

    Args:
        elapsed_s: Seconds since the run's `started_at`, now.
        last_step: The last step already stored for the keys this clock keys (-1 for none).
        monotonic: Tells the time from here on (tests pass a fake).
    """

    def __init__(
        self,
        *,
        elapsed_s: float,
        last_step: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._monotonic = monotonic
        self._started = monotonic() - elapsed_s
        self.last_step = last_step

    @classmethod
    def read(
        cls,
        session: Session,
        run_id: int,
        keys: ColumnElement[bool],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> RunClock:
        """The clock of run `run_id`: its `started_at` and the last step of the `keys` it writes."""
        started_at = session.scalar(select(Run.started_at).where(Run.id == run_id))
        last_step = session.scalar(
            select(func.max(MetricSummary.last_step)).where(MetricSummary.run_id == run_id, keys)
        )
        elapsed = 0.0 if started_at is None else (utcnow() - started_at).total_seconds()
        last = -1 if last_step is None else int(last_step)
        return cls(elapsed_s=elapsed, last_step=last, monotonic=monotonic)

    def next_step(self) -> int | None:
        """The step of a point taken now; None while it is still the last step's second."""
        return self.step_at(self._monotonic())

    def step_at(self, taken_at: float) -> int | None:
        """The step of a point taken at `taken_at` (a `monotonic` reading), later than the
        last one's; None while it is still the last step's second."""
        step = math.floor(taken_at - self._started)
        if step == self.last_step:
            return None
        if step < self.last_step:
            # Earlier points lie ahead of this clock (the host's clock went back between a run's
            # attempts): continue right after them rather than overwrite them.
            self._started -= self.last_step + 1 - step
            step = self.last_step + 1
        self.last_step = step
        return step


# --- writing --------------------------------------------------------------------------------------


class _StopRequestedError(Exception):
    """Raised inside a retry's wait when the recorder is told to stop."""


def _store(
    sessions: sessionmaker[Session],
    redis_url: str | None,
    run_id: int,
    points: Sequence[MetricPoint],
    *,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """One short transaction with `points`, retried for a while; then the live event."""

    def attempt() -> None:
        with session_scope(sessions) as session:
            record_metrics(session, run_id, points)

    retry_write(attempt, what=what, limit_s=WRITE_RETRY_LIMIT_S, sleep=sleep)
    notify_committed(redis_url)


class SystemMetricsRecorder:
    """Samples a run's processes and GPUs every `interval_s` in a daemon thread and stores them.

    It runs in the worker's own process, beside the training child (`root_pid`), so it never
    slows the training loop. Each sample is one short transaction; a sample that cannot be
    stored is logged and dropped, never raised: system metrics never fail a run.

    Args:
        run_id: The run the points belong to.
        sessions: Sessions of the worker's database.
        redis_url: Where live events are published (None: nowhere).
        root_pid: The run's training process (the launcher); its descendants count with it.
        gpu_indices: The run's GPUs as `CUDA_VISIBLE_DEVICES` names them (NVML indices or
            UUIDs); empty on a CPU host.
        interval_s: Seconds between samples, at least `MIN_INTERVAL_S`.
    """

    def __init__(
        self,
        *,
        run_id: int,
        sessions: sessionmaker[Session],
        redis_url: str | None,
        root_pid: int,
        gpu_indices: Sequence[GpuId],
        interval_s: float,
    ) -> None:
        _check_interval(interval_s)
        self._run_id = run_id
        self._sessions = sessions
        self._redis_url = redis_url
        self._root_pid = root_pid
        self._gpu_indices = tuple(gpu_indices)
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sampling (the first sample is taken at once)."""
        if self._thread is not None:
            raise RuntimeError(f"run {self._run_id}: the system metrics recorder already started")
        self._thread = threading.Thread(
            target=self._record, name=f"system-metrics-{self._run_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and wait (at most `STOP_JOIN_S`) for a write in flight."""
        self._stopping.set()
        if self._thread is None:
            return
        self._thread.join(STOP_JOIN_S)
        if self._thread.is_alive():
            logger.warning(
                "run %d: the system metrics recorder is still writing after %g s; left behind",
                self._run_id, STOP_JOIN_S,
            )  # fmt: skip

    def _wait_unless_stopped(self, seconds: float) -> None:
        if self._stopping.wait(seconds):
            raise _StopRequestedError

    def _record(self) -> None:
        sampler = SystemSampler(self._root_pid, self._gpu_indices)
        try:
            clock = self._read_clock()
            while clock is not None and not self._stopping.is_set():
                self._record_one(sampler, clock)
                if self._stopping.wait(self._interval_s):
                    break
        finally:
            sampler.close()

    def _read_clock(self) -> RunClock | None:
        try:

            def read() -> RunClock:
                with session_scope(self._sessions, write=False) as session:
                    return RunClock.read(session, self._run_id, RECORDER_KEYS)

            return retry_write(
                read,
                what="start time of the run",
                limit_s=WRITE_RETRY_LIMIT_S,
                sleep=self._wait_unless_stopped,
            )
        except _StopRequestedError:
            return None
        except Exception:
            logger.exception(
                "run %d: no system metrics: its start time is unreadable", self._run_id
            )
            return None

    def _record_one(self, sampler: SystemSampler, clock: RunClock) -> None:
        try:
            readings = sampler.sample()
            step = clock.next_step()
            if step is None or not readings:
                return
            points = [MetricPoint(key, step, value) for key, value in readings.items()]
            _store(
                self._sessions,
                self._redis_url,
                self._run_id,
                points,
                what=f"system metrics at {step} s",
                sleep=self._wait_unless_stopped,
            )
        except _StopRequestedError:
            return
        except DatabaseUnavailableError as error:  # an outage: the samples after it follow
            logger.warning("run %d: dropped a system metrics sample: %s", self._run_id, error)
        except Exception:
            logger.exception("run %d: could not store a system metrics sample", self._run_id)


class DataWaitReporter(NullReporter):
    """Stores `sys/data_wait_percent` from rank 0's progress reports, at most every `interval_s`.

    Each point is the mean of the `data_wait_share`s reported since the previous point (the
    first report is stored at once). It reports on the training loop, so its points go through
    the run's `ReportWriter`, behind the epochs' reports; one that cannot be stored is logged
    and dropped, and the training goes on.
    """

    def __init__(
        self,
        *,
        run_id: int,
        writer: ReportWriter,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_interval(interval_s)
        self._run_id = run_id
        self._writer = writer
        self._interval_s = interval_s
        self._clock = clock
        self._run_clock: RunClock | None = None
        """Read by the writer's thread, with the first point, and used there only."""
        self._last_written_at: float | None = None
        self._shares: list[float] = []
        """Shares reported since the last point."""

    def on_train_progress(self, progress: EpochProgress) -> None:
        share = progress.data_wait_share
        if share is None or not math.isfinite(share):
            return
        self._shares.append(share)
        now = self._clock()
        if self._last_written_at is not None and now - self._last_written_at < self._interval_s:
            return
        self._last_written_at = now
        mean = sum(self._shares) / len(self._shares)
        self._shares.clear()
        self._submit(100.0 * mean, taken_at=now)

    def _submit(self, percent: float, *, taken_at: float) -> None:
        steps: list[int | None] = []
        """The point's step, once known: a retried write stores the same point."""

        def write(session: Session) -> None:
            if self._run_clock is None:
                self._run_clock = RunClock.read(
                    session, self._run_id, DATA_WAIT_KEYS, monotonic=self._clock
                )
            if not steps:
                steps.append(self._run_clock.step_at(taken_at))
            if steps[0] is not None:
                record_metrics(
                    session, self._run_id, [MetricPoint(DATA_WAIT_KEY, steps[0], percent)]
                )

        self._writer.submit("data wait share", write, essential=False)
