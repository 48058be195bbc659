"""The files through which a worker and a run's training process talk: the outcome and the stop.

The training process (`worker.run_child`) writes how the training ended to `outcome.json` in the
run's folder; the worker reads it once the process has exited and records it. The worker asks
the training to stop by creating `stop` there; the training's `should_stop()` checks it (a stat
every few batches). A process that died without an outcome is described by its exit status.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from server.artifacts import run_dir

TrainingStatus = Literal["succeeded", "failed", "stopped", "pruned"]


def outcome_path(artifacts_dir: Path, run_id: int) -> Path:
    return run_dir(artifacts_dir, run_id) / "outcome.json"


def stop_path(artifacts_dir: Path, run_id: int) -> Path:
    return run_dir(artifacts_dir, run_id) / "stop"


@dataclass(frozen=True)
class TrainingOutcome:
    """How the training process ended: `stopped` when its `should_stop()` said so, `pruned` when
    its sweep's pruner asked it to stop after an epoch."""

    status: TrainingStatus
    reason: str | None = None
    details: str | None = None
    epochs_done: int = 0
    resumable: bool = False
    """A last checkpoint was written after at least one epoch."""

    def write(self, path: Path) -> None:
        """Write atomically: the worker never reads half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(asdict(self)), encoding="utf-8")
        temporary.replace(path)

    @classmethod
    def read(cls, path: Path) -> TrainingOutcome | None:
        """The outcome at `path`; None when there is none (or it is not one)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


def clear_run_signals(artifacts_dir: Path, run_id: int) -> None:
    """Remove an earlier attempt's outcome and stop request before a new attempt starts."""
    for path in (outcome_path(artifacts_dir, run_id), stop_path(artifacts_dir, run_id)):
        path.unlink(missing_ok=True)
