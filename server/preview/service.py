"""Previews, checkpoints and logs: recording the files a worker wrote, and finding them again.

The worker writes the PNGs and checkpoint files at the paths `server.artifacts` names, then
calls `record_previews` / `record_checkpoint` in the same short transaction as its epoch report.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.orm import Session

from server.artifacts import (
    ArtifactPathError,
    PreviewPaths,
    absolute_path,
    log_path,
    relative_path,
)
from server.errors import NotFound
from server.events import record_event
from server.models import Checkpoint
from server.preview import repository

ImageKind = Literal["image", "truth", "prediction"]
CheckpointKind = Literal["best", "last"]
_TAIL_BLOCK = 64 * 1024


@dataclass(frozen=True)
class PreviewSampleFiles:
    """One preview sample the worker saved: its index, name, PNG paths and why it is there."""

    sample_index: int
    name: str
    paths: PreviewPaths
    reasons: tuple[str, ...] = ("fixed",)


def record_previews(
    session: Session,
    artifacts_dir: Path,
    run_id: int,
    epoch: int,
    samples: Sequence[PreviewSampleFiles],
) -> None:
    """Store the epoch's preview rows and record one `preview` event."""
    for sample in samples:
        repository.add_preview(
            session,
            run_id=run_id,
            epoch=epoch,
            sample_index=sample.sample_index,
            name=sample.name,
            image_path=relative_path(artifacts_dir, sample.paths.image),
            truth_path=relative_path(artifacts_dir, sample.paths.truth),
            prediction_path=relative_path(artifacts_dir, sample.paths.prediction),
            reasons=sample.reasons,
        )
    record_event(session, "preview", run_id, {"epoch": epoch, "count": len(samples)})


def record_checkpoint(
    session: Session,
    artifacts_dir: Path,
    run_id: int,
    kind: CheckpointKind,
    path: Path,
    *,
    epoch: int,
    metric: float | None,
) -> None:
    """Store the checkpoint file's row (size read from disk) and record a `checkpoint` event."""
    repository.upsert_checkpoint(
        session,
        run_id=run_id,
        kind=kind,
        epoch=epoch,
        metric=metric,
        path=relative_path(artifacts_dir, path),
        size_bytes=path.stat().st_size,
    )
    record_event(session, "checkpoint", run_id, {"kind": kind, "epoch": epoch, "metric": metric})


def _existing_file(artifacts_dir: Path, stored: str, what: str) -> Path:
    try:
        path = absolute_path(artifacts_dir, stored)
    except ArtifactPathError as error:
        raise NotFound(f"{what} is not available: {error}") from error
    if not path.is_file():
        raise NotFound(f"{what} is recorded but its file {stored} is missing from the artifacts")
    return path


def preview_file(
    session: Session, artifacts_dir: Path, run_id: int, *, epoch: int, sample: int, kind: ImageKind
) -> Path:
    """The PNG of one preview sample, or NotFound."""
    preview = repository.get_preview(session, run_id, epoch, sample)
    if preview is None:
        raise NotFound(f"run {run_id} has no preview sample {sample} at epoch {epoch}")
    stored = {
        "image": preview.image_path,
        "truth": preview.truth_path,
        "prediction": preview.prediction_path,
    }[kind]
    return _existing_file(artifacts_dir, stored, f"the {kind} of preview {sample}")


def checkpoint_file(
    session: Session, artifacts_dir: Path, run_id: int, kind: CheckpointKind
) -> tuple[Checkpoint, Path]:
    """The run's best or last checkpoint and its file, or NotFound."""
    checkpoint = repository.get_checkpoint(session, run_id, kind)
    if checkpoint is None:
        raise NotFound(f"run {run_id} has no {kind} checkpoint (yet)")
    return checkpoint, _existing_file(artifacts_dir, checkpoint.path, f"the {kind} checkpoint")


def tail_lines(path: Path, count: int) -> list[str]:
    """The last `count` lines of a text file (read backwards in blocks; [] if there is none)."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return []
    with handle:
        handle.seek(0, os.SEEK_END)
        position = handle.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= count:
            step = min(_TAIL_BLOCK, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[-count:] if count else []


def run_log(artifacts_dir: Path, run_id: int, tail: int) -> list[str]:
    """The last `tail` lines of the worker's log for the run."""
    return tail_lines(log_path(artifacts_dir, run_id), tail)
