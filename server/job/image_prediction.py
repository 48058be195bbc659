"""predict_image jobs: one validation image of a run predicted from the checkpoint the run kept
nearest an epoch, for the run page's Images view when no preview of that image was saved.

The request is checked against what the run stored: the image index against its validation set
(the names in the Images view's order), the checkpoint files it kept (`best`, `last`; the one
whose epoch is nearest the asked epoch, `best` on a tie) and its dataset folder, which must lie
inside the dataset roots. A second request for the same image and checkpoint (kind and epoch)
gets the job already queued, running or done instead of queuing another.

The job's files are the previews' format (`server.preview.png_files`): `image.png`, and
`truth.png` / `prediction.png` as class-index masks at the size training validated at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.artifacts import checkpoint_path
from server.dataset.service import resolve_dataset_path
from server.errors import Conflict, DomainError, NotFound
from server.job.paths import job_dir
from server.job.schemas import PredictImageJobCreate
from server.models import Job, Run
from server.preview import repository as previews
from server.settings import Settings
from server.validation import repository as validation
from server.validation.packing import unpack_names

KIND = "predict_image"
IMAGE_FILES: tuple[str, ...] = ("image.png", "truth.png", "prediction.png")
"""What a predict_image job writes, in the previews' PNG format."""
REUSED_STATUSES: tuple[str, ...] = ("queued", "running", "succeeded")
MAX_SCANNED = 1000
"""A run's newest predict_image jobs looked through for one to reuse, or for the images they
predicted."""


@dataclass(frozen=True)
class KeptCheckpoint:
    kind: str
    epoch: int


def kept_checkpoints(session: Session, settings: Settings, run: Run) -> list[KeptCheckpoint]:
    """The run's checkpoints whose file is still there, `best` first."""
    rows = previews.list_checkpoints(session, run.id)
    kept = [
        KeptCheckpoint(row.kind, row.epoch)
        for row in rows
        if checkpoint_path(settings.artifacts_dir, run.id, row.kind).is_file()
    ]
    return sorted(kept, key=lambda checkpoint: checkpoint.kind != "best")


def nearest_checkpoint(kept: list[KeptCheckpoint], epoch: int | None) -> KeptCheckpoint:
    """The checkpoint whose epoch is nearest `epoch` (the newest when None); `best` wins a tie."""
    if epoch is None:
        return max(kept, key=lambda checkpoint: (checkpoint.epoch, checkpoint.kind == "best"))
    return min(kept, key=lambda checkpoint: (abs(checkpoint.epoch - epoch), checkpoint.kind))


def _image_name(session: Session, run: Run, index: int) -> str:
    stored = validation.get_set(session, run.id)
    if stored is None or stored.image_count == 0:
        raise Conflict(
            f"run {run.id} has no validation images stored yet (they are stored at the end of "
            "its first validation); nothing to predict",
            {"field": "image"},
        )
    if index >= stored.image_count:
        raise NotFound(
            f"run {run.id} has no validation image {index}; its images are 0 to "
            f"{stored.image_count - 1}"
        )
    return unpack_names(stored.image_names)[index]


def _dataset_folder(settings: Settings, run: Run) -> str:
    if not run.dataset_path:
        where = "trained elsewhere and logged no dataset" if run.external else "has no dataset"
        raise Conflict(
            f"run {run.id} {where} on this server, so its validation images cannot be read",
            {"field": "image"},
        )
    try:
        return str(resolve_dataset_path(settings, run.dataset_path, field="image"))
    except DomainError as error:  # outside the roots, or gone: a conflict of state
        raise Conflict(
            f"the dataset of run {run.id} cannot be read on this server: {error.message}",
            {"field": "image"},
        ) from error


def predict_image_parameters(
    session: Session, settings: Settings, run: Run, body: PredictImageJobCreate
) -> dict[str, Any]:
    """The job's parameters; NotFound for an image the run has not, Conflict for a run with no
    checkpoint, no validation set or no readable dataset."""
    name = _image_name(session, run, body.image)
    kept = kept_checkpoints(session, settings, run)
    if not kept:
        raise Conflict(
            f"run {run.id} has no checkpoint yet (best and last are written at epoch ends); "
            "a prediction needs one to load",
            {"field": "checkpoint", "available": []},
        )
    chosen = nearest_checkpoint(kept, body.epoch)
    return {
        "image_index": body.image,
        "image_name": name,
        "requested_epoch": body.epoch,
        "checkpoint": chosen.kind,
        "checkpoint_epoch": chosen.epoch,
        "dataset_path": _dataset_folder(settings, run),
    }


def reusable_job(
    session: Session, settings: Settings, run_id: int, parameters: dict[str, Any]
) -> Job | None:
    """A job of the same image and checkpoint that is queued, running, or succeeded with its
    files still there."""
    query = (
        select(Job)
        .where(Job.run_id == run_id, Job.kind == KIND, Job.status.in_(REUSED_STATUSES))
        .order_by(Job.id.desc())
        .limit(MAX_SCANNED)
    )
    for job in session.scalars(query):
        same = all(
            job.parameters.get(key) == parameters[key]
            for key in ("image_index", "image_name", "checkpoint", "checkpoint_epoch")
        )
        if not same:
            continue
        if job.status != "succeeded":
            return job
        folder = job_dir(settings.artifacts_dir, job.run_id, job.id)
        if all((folder / name).is_file() for name in IMAGE_FILES):
            return job
    return None


def predicted_epochs(session: Session, run_id: int) -> dict[tuple[int, str], list[int]]:
    """The checkpoint epochs each validation image (by index and name) was predicted from by a
    succeeded predict_image job of the run, ascending: one query, whatever the page shows."""
    query = (
        select(Job.parameters)
        .where(Job.run_id == run_id, Job.kind == KIND, Job.status == "succeeded")
        .order_by(Job.id.desc())
        .limit(MAX_SCANNED)
    )
    epochs: dict[tuple[int, str], set[int]] = {}
    for parameters in session.scalars(query):
        image = (parameters.get("image_index"), parameters.get("image_name"))
        epoch = parameters.get("checkpoint_epoch")
        if isinstance(image[0], int) and isinstance(image[1], str) and isinstance(epoch, int):
            epochs.setdefault((image[0], image[1]), set()).add(epoch)
    return {image: sorted(found) for image, found in epochs.items()}
