"""Checkpoints written off the training path: snapshot on the training thread, write beside it.

Serialising and syncing a checkpoint (weights plus optimizer moments, ~93 MB for a UNet of
base width 32) takes long enough that two of them per epoch showed in a run's wall time. Here
the training thread only copies the state to the CPU (`trainer.checkpoint.checkpoint_payload`)
and one writer thread turns the copies into files while the next epoch trains.

The rules that keep this safe:
- one writer thread, so files are written in the order they were asked for;
- at most one write in flight per file: `save` waits for a file's previous write before it
  takes the next snapshot for it (which also bounds the copies held to one in flight);
- each file is written whole under a temporary name and renamed (`write_checkpoint`);
- the reporter hears of a file only once it is complete (a worker's reporter records its
  size), and only on the training thread (reporters are not thread-safe): `report_written`
  is called at the loop's check points, and leaving the writer's context waits for every
  write and reports the rest;
- a failed write is never lost: it raises CheckpointWriteError at the next `report_written`
  or when the context is left.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from trainer.checkpoint import write_checkpoint
from trainer.reporting import CheckpointKind, Reporter

logger = logging.getLogger(__name__)


class CheckpointWriteError(RuntimeError):
    """A checkpoint file that could not be written; the message names the file and why."""

    def __init__(self, path: Path, error: BaseException) -> None:
        super().__init__(
            f"cannot write checkpoint {path}: {error}; make room on the disk (or choose an "
            f"output folder with space) and check that {path.parent} is writable"
        )
        self.path = path


@dataclass(frozen=True)
class CheckpointFile:
    """A file to write, and what the reporter is told once it is complete."""

    kind: CheckpointKind
    path: Path
    epoch: int
    metric: float | None


class CheckpointWriter:
    """Writes checkpoint snapshots in one background thread; use it as a context manager.

    Leaving the context waits for every write. On a normal exit it reports the files still
    unreported and raises CheckpointWriteError if one failed; when an exception is already
    on its way out, a failed write (or a failing reporter) is logged so the first error wins.
    """

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint-writer")
        self._unreported: deque[tuple[CheckpointFile, Future[None]]] = deque()

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._executor.shutdown(wait=True)
        if error is None:
            self.report_written()
            return
        # The run is failing already: report what was written, log what was not.
        while self._unreported:
            try:
                self.report_written()
            except CheckpointWriteError as failure:
                logger.error("while the run was failing: %s", failure)
            except Exception:
                logger.exception("while the run was failing, a checkpoint could not be reported")
                return

    def save(
        self, files: Sequence[CheckpointFile], snapshot: Callable[[], Mapping[str, Any]]
    ) -> None:
        """Take `snapshot()` now, on this thread, and write it to each of `files` in the background.

        Waits first for the files' previous writes (and reports them), so a file never has two
        writes in flight and a failed earlier write raises here rather than being overwritten.

        Raises:
            CheckpointWriteError: an earlier write failed.
        """
        paths = {file.path for file in files}
        wait([future for file, future in self._unreported if file.path in paths])
        self.report_written()
        payload = snapshot()
        for file in files:
            future = self._executor.submit(write_checkpoint, file.path, payload)
            self._unreported.append((file, future))

    def report_written(self) -> None:
        """Tell the reporter of each file completed since the last call, in the order asked.

        Raises:
            CheckpointWriteError: a write failed; the files after it stay unreported.
        """
        while self._unreported and self._unreported[0][1].done():
            file, future = self._unreported.popleft()
            error = future.exception()
            if error is not None:
                raise CheckpointWriteError(file.path, error) from error
            self._reporter.on_checkpoint(file.kind, file.path, file.epoch, file.metric)
