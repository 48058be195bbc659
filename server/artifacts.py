"""Where a run's files live under the artifacts root; the one place that knows the layout.

    <artifacts>/runs/<id>/
        previews/samples/<sample>_image.png, <sample>_truth.png   written once per sample
        previews/epoch_<epoch>/<sample>_prediction.png            one per epoch
        checkpoints/best.pt, last.pt                              the trainer's out_dir
        logs/worker.log
        uploads/<upload id>.part                                  an upload still arriving
        files/<name>                                              files a tracked run logged

The database stores these paths relative to the artifacts root (`relative_path`), so the root can
move. The worker writes the files of its runs; the server writes what tracking clients upload
(an upload's part file becomes `checkpoints/<kind>.pt` or `files/<name>` once whole), serves
them all and deletes them.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path


class ArtifactPathError(ValueError):
    """A stored path that points outside the artifacts root."""


@dataclass(frozen=True)
class PreviewPaths:
    """Absolute paths of one preview sample's PNGs (uint8; truth and prediction: class indices)."""

    image: Path
    truth: Path
    prediction: Path


def run_dir(artifacts_dir: Path, run_id: int) -> Path:
    """Every file of run `run_id`; deleting the run deletes this folder."""
    return artifacts_dir / "runs" / str(run_id)


def preview_paths(artifacts_dir: Path, run_id: int, epoch: int, sample_index: int) -> PreviewPaths:
    """The PNGs of sample `sample_index` at `epoch`; image and truth are shared by all epochs."""
    previews = run_dir(artifacts_dir, run_id) / "previews"
    return PreviewPaths(
        image=previews / "samples" / f"{sample_index}_image.png",
        truth=previews / "samples" / f"{sample_index}_truth.png",
        prediction=previews / f"epoch_{epoch}" / f"{sample_index}_prediction.png",
    )


def checkpoint_dir(artifacts_dir: Path, run_id: int) -> Path:
    """The trainer's output folder for the run (it writes best.pt and last.pt there)."""
    return run_dir(artifacts_dir, run_id) / "checkpoints"


def checkpoint_path(artifacts_dir: Path, run_id: int, kind: str) -> Path:
    """The run's `best` or `last` checkpoint file."""
    return checkpoint_dir(artifacts_dir, run_id) / f"{kind}.pt"


def upload_part_path(artifacts_dir: Path, run_id: int, upload_id: str) -> Path:
    """Where the bytes of an unfinished upload accumulate (`upload_id` is a hex id)."""
    return run_dir(artifacts_dir, run_id) / "uploads" / f"{_single_name(upload_id)}.part"


def run_file_path(artifacts_dir: Path, run_id: int, name: str) -> Path:
    """A file the run logged (`name` is a bare file name, validated by the caller)."""
    return run_dir(artifacts_dir, run_id) / "files" / _single_name(name)


def _single_name(name: str) -> str:
    # The last line of defence: a name reaching here was checked, but a path built from a
    # separator or '..' would land outside the run's folder.
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise ArtifactPathError(f"{name!r} is not a plain file name")
    return name


def log_path(artifacts_dir: Path, run_id: int) -> Path:
    """The worker's log of this run."""
    return run_dir(artifacts_dir, run_id) / "logs" / "worker.log"


def relative_path(artifacts_dir: Path, path: Path) -> str:
    """`path` relative to the artifacts root, as stored in the database (POSIX separators)."""
    try:
        return path.resolve().relative_to(artifacts_dir.resolve()).as_posix()
    except ValueError as error:
        raise ArtifactPathError(
            f"{path} is not under the artifacts root {artifacts_dir}"
        ) from error


def absolute_path(artifacts_dir: Path, stored: str) -> Path:
    """The file a stored relative path names; refuses paths that leave the artifacts root."""
    root = artifacts_dir.resolve()
    path = (root / stored).resolve()
    if not path.is_relative_to(root):
        raise ArtifactPathError(f"stored path {stored!r} leaves the artifacts root {root}")
    return path


def delete_run_files(artifacts_dir: Path, run_id: int) -> None:
    """Remove the run's folder and everything in it; nothing happens when there is none."""
    shutil.rmtree(run_dir(artifacts_dir, run_id), ignore_errors=True)
