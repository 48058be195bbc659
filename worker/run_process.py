"""One child process per run: start it on the run's slots, supervise it, stop it, see how it ended.

The child (`python -m worker.run_child`) starts in a process group of its own with
`CUDA_VISIBLE_DEVICES` set to the run's GPUs (empty on CPU slots) and its output appended to the
run's log file, which the run page tails. Stopping it (a cancel, or the worker shutting down)
goes in three steps: the run's stop file, which the training checks every few batches; SIGTERM to
its group after `cancel_grace_s`; SIGKILL after as long again. Whatever the group left behind
(DataLoader workers of a killed child) is killed once the child has exited.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from server.artifacts import log_path
from server.settings import Settings
from worker.run_outcome import TrainingOutcome, clear_run_signals, outcome_path, stop_path

logger = logging.getLogger(__name__)

POLL_S = 0.2
LOG_TAIL_LINES = 40
LOG_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class ChildExit:
    """How a run's child process ended."""

    returncode: int
    outcome: TrainingOutcome | None
    """What the training wrote before it exited; None when it died first."""
    stop_asked: bool
    signalled: str | None
    """SIGTERM or SIGKILL when the worker had to signal the group to stop it."""
    log_tail: str


def describe_exit(returncode: int) -> str:
    """'training process killed by signal 9 (SIGKILL)' or 'training process exited with code 3'."""
    if returncode < 0:
        try:
            name = f" ({signal.Signals(-returncode).name})"
        except ValueError:
            name = ""
        return f"training process killed by signal {-returncode}{name}"
    return f"training process exited with code {returncode}"


def child_command(run_id: int, *, resume: bool, gpus: int) -> list[str]:
    command = [sys.executable, "-m", "worker.run_child", "--run-id", str(run_id)]
    if resume:
        command.append("--resume")
    if gpus > 1:
        command += ["--gpus", str(gpus)]
    return command


def child_environment(gpus: Sequence[str], *, cpu_threads: int) -> dict[str, str]:
    """The worker's environment, pinned to `gpus` (none: CPU only), with `cpu_threads` OpenMP
    threads per process unless the worker's environment fixes them."""
    return {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": ",".join(gpus),
        # NVML (and so the worker's GPU ids) counts GPUs in PCI bus order; CUDA must agree.
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(cpu_threads, 1))),
        "PYTHONUNBUFFERED": "1",
    }


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of the log at `path` (empty when it cannot be read)."""
    try:
        with path.open("rb") as log:
            log.seek(max(log.seek(0, os.SEEK_END) - LOG_TAIL_BYTES, 0))
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class RunProcess:
    """The child process training one run."""

    def __init__(
        self,
        settings: Settings,
        run_id: int,
        *,
        resume: bool,
        gpus: Sequence[str],
        slots: int,
        cpu_threads: int,
    ) -> None:
        self._settings = settings
        self.run_id = run_id
        self._command = child_command(run_id, resume=resume, gpus=slots)
        self._environment = child_environment(gpus, cpu_threads=cpu_threads)
        self._log = log_path(settings.artifacts_dir, run_id)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        """Start the child; returns its pid (also its process group's id)."""
        clear_run_signals(self._settings.artifacts_dir, self.run_id)
        self._log.parent.mkdir(parents=True, exist_ok=True)
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                self._command,
                env=self._environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        logger.info("training process %d: %s", self._process.pid, " ".join(self._command))
        return self._process.pid

    def supervise(self, should_stop: Callable[[], bool]) -> ChildExit:
        """Wait for the child to exit, stopping it in steps once `should_stop()` says so."""
        process = self._process
        if process is None:
            raise RuntimeError(f"run {self.run_id}: the training process was not started")
        grace = self._settings.cancel_grace_s
        deadlines: tuple[float, float] | None = None  # (SIGTERM at, SIGKILL at)
        signalled: str | None = None
        while True:
            try:
                returncode = process.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if deadlines is None:
                if should_stop():
                    deadlines = (now + grace, now + 2 * grace)
                    stop_path(self._settings.artifacts_dir, self.run_id).touch()
                    logger.info("asked the training to stop (SIGTERM in %g s)", grace)
            elif signalled is None and now >= deadlines[0]:
                signalled = "SIGTERM"
                logger.warning("the training did not stop within %g s; sending SIGTERM", grace)
                self._signal_group(signal.SIGTERM)
            elif signalled == "SIGTERM" and now >= deadlines[1]:
                signalled = "SIGKILL"
                logger.warning("the training ignored SIGTERM for %g s; sending SIGKILL", grace)
                self._signal_group(signal.SIGKILL)
        self._signal_group(signal.SIGKILL)  # what the child left behind in its group
        return ChildExit(
            returncode=returncode,
            outcome=TrainingOutcome.read(outcome_path(self._settings.artifacts_dir, self.run_id)),
            stop_asked=deadlines is not None,
            signalled=signalled,
            log_tail=log_tail(self._log),
        )

    def _signal_group(self, signum: signal.Signals) -> None:
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)
