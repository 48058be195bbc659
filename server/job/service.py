"""Job rules for the API: check an evaluate, predict, export or predict_image request against its
run (the checkpoint exists, the dataset has the run's classes and the split, the images are
images), store it queued and send it to the run's queue once committed; cancel a job; store
images to predict on; describe jobs and find their files. Every change of a job records a `job`
event on its run's stream."""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from sqlalchemy.orm import Session

from server.artifacts import checkpoint_path
from server.auth.principal import Principal
from server.auth.run_access import may_change_run
from server.bounds import ascii_id
from server.dataset import repository as datasets
from server.dataset.service import resolve_dataset_path
from server.db import after_commit
from server.errors import Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from server.job import image_prediction, repository
from server.job.paths import job_dir, predict_inputs_dir
from server.job.predict_folder import predict_folder_parameters
from server.job.schemas import (
    PENDING_STATUSES,
    EvaluateJobCreate,
    ExportJobCreate,
    JobFileOut,
    JobOut,
    PredictImageJobCreate,
    PredictJobCreate,
)
from server.job.splits import available_splits
from server.models import Dataset, Job, Run
from server.queue import TaskQueue, new_task_id
from server.run.repository import get_run
from server.settings import Settings

logger = logging.getLogger(__name__)

MAX_INPUT_FILES = 32
"""Images one predict-inputs upload may carry."""
INPUT_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "BMP": ".bmp"}
"""Image types accepted to predict on (Pillow's names) and the suffix each is stored with."""
MAX_INPUT_PIXELS = 8192 * 8192


def _checkpoint(settings: Settings, run: Run, kind: str) -> str:
    """The run's `kind` checkpoint must exist: Conflict naming those it has otherwise."""
    if checkpoint_path(settings.artifacts_dir, run.id, kind).is_file():
        return kind
    has = [
        other
        for other in ("best", "last")
        if checkpoint_path(settings.artifacts_dir, run.id, other).is_file()
    ]
    listed = f"it has {' and '.join(has)}" if has else "it has none yet"
    raise Conflict(
        f"run {run.id} has no {kind} checkpoint ({listed}); a job needs a checkpoint to load",
        {"field": "checkpoint", "available": has},
    )


def _dataset(session: Session, settings: Settings, run: Run, chosen: int | str | None) -> Dataset:
    """The dataset to evaluate on: `chosen` (a registered id or name with the run's classes)
    or the run's own."""
    if chosen is None:
        own = None
        if run.dataset_id is not None:
            own = session.get(Dataset, run.dataset_id)
        if own is None and run.dataset_path:
            own = datasets.by_path(session, run.dataset_path)
        if own is None:
            raise InvalidInput(
                f"run {run.id} has no registered dataset to evaluate on; name one in `dataset`",
                [{"field": "dataset", "message": "name a registered dataset"}],
            )
        return own
    if isinstance(chosen, str) and chosen.isdigit():
        # Digits name an id, as in the datasets API; digits that are no row id name nothing.
        as_id = ascii_id(chosen)
        if as_id is None:
            message = f"dataset {chosen!r} is no dataset id or name"
            raise InvalidInput(message, [{"field": "dataset", "message": message}])
        chosen = as_id
    try:
        dataset = datasets.get_dataset(session, chosen)
    except NotFound as error:
        raise InvalidInput(
            f"dataset: {error.message}", [{"field": "dataset", "message": error.message}]
        ) from error
    trained = list(run.class_names or [])
    if trained and list(dataset.class_names) != trained:
        message = (
            f"dataset {dataset.name!r} has the classes [{', '.join(dataset.class_names)}] but "
            f"run {run.id} was trained on [{', '.join(trained)}]; choose a dataset with the "
            "same classes in the same order"
        )
        raise InvalidInput(message, [{"field": "dataset", "message": message}])
    return dataset


def _evaluate_parameters(
    session: Session, settings: Settings, run: Run, body: EvaluateJobCreate
) -> dict[str, Any]:
    dataset = _dataset(session, settings, run, body.dataset)
    folder = resolve_dataset_path(settings, dataset.path, field="dataset")
    splits = available_splits(folder, run.config or {})
    if body.split not in splits:
        listed = ", ".join(splits) or "none"
        message = f"dataset {dataset.name!r} has no {body.split} split; it has: {listed}"
        raise InvalidInput(
            message, [{"field": "split", "message": message, "available": ", ".join(splits)}]
        )
    return {
        "checkpoint": _checkpoint(settings, run, body.checkpoint),
        "dataset_id": dataset.id,
        "dataset": dataset.name,
        "dataset_path": str(folder),
        "split": body.split,
    }


def _predict_parameters(
    session: Session, settings: Settings, run: Run, body: PredictJobCreate
) -> dict[str, Any]:
    if body.upload is not None:
        folder = predict_inputs_dir(settings.artifacts_dir, run.id, body.upload)
        if not folder.is_dir():
            message = (
                f"no images uploaded as {body.upload} for run {run.id}; upload them with "
                f"POST /api/v1/runs/{run.id}/predict-inputs first"
            )
            raise InvalidInput(message, [{"field": "upload", "message": message}])
        source: dict[str, Any] = {"upload": body.upload, "inputs_path": str(folder)}
    else:
        assert body.folder is not None  # the schema wants one of the two
        source = predict_folder_parameters(settings, body.folder)
    return {"checkpoint": _checkpoint(settings, run, body.checkpoint), "tta": body.tta, **source}


def job_event(session: Session, job: Job) -> None:
    """A `job` event on the job's run: its id, kind and status now."""
    repository.record_job_event(
        session, job_id=job.id, run_id=job.run_id, kind=job.kind, status=job.status
    )


def create_job(  # noqa: PLR0917 (the request's parts)
    session: Session,
    settings: Settings,
    task_queue: TaskQueue,
    principal: Principal,
    run_id: int,
    body: EvaluateJobCreate | ExportJobCreate | PredictJobCreate | PredictImageJobCreate,
) -> tuple[Job, bool]:
    """Store a queued job on run `run_id`, sent to the run's queue once committed; returns it
    and whether it is an earlier predict_image job of the same image and checkpoint (reused,
    nothing queued)."""
    run = get_run(session, run_id)
    if isinstance(body, EvaluateJobCreate):
        parameters = _evaluate_parameters(session, settings, run, body)
    elif isinstance(body, PredictJobCreate):
        parameters = _predict_parameters(session, settings, run, body)
    elif isinstance(body, PredictImageJobCreate):
        parameters = image_prediction.predict_image_parameters(session, settings, run, body)
        earlier = image_prediction.reusable_job(session, settings, run.id, parameters)
        if earlier is not None:
            return earlier, True
    else:
        parameters = {
            "checkpoint": _checkpoint(settings, run, body.checkpoint),
            "format": body.format,
        }
    job = repository.add_job(
        session,
        Job(
            run_id=run.id,
            kind=body.kind,
            status="queued",
            parameters=parameters,
            queue=run.queue,
            task_id=new_task_id(),
            created_by_id=principal.user_id,
            created_by=principal.name,
        ),
    )
    job_event(session, job)
    job_id, queue, task_id = job.id, job.queue, job.task_id
    assert task_id is not None

    def send() -> None:
        try:
            task_queue.send_job(job_id, queue=queue, task_id=task_id)
        except Exception as error:  # every transport fails differently
            logger.warning("job %d: could not send its message to %s (%s)", job_id, queue, error)

    after_commit(session, send)
    return job, False


def _check_owner(session: Session, principal: Principal, job: Job) -> None:
    """Members cancel jobs of their own runs only (admins any), as they change only those."""
    if principal.is_admin:
        return
    run = get_run(session, job.run_id)
    if not may_change_run(principal, run.submitted_by_id):
        owner = run.submitted_by or "nobody recorded"
        raise Forbidden(
            f"job {job.id} belongs to run {run.id}, submitted by {owner}; a {principal.role} may "
            "only cancel jobs of the runs they submitted (admins may cancel any)"
        )


def cancel_job(session: Session, principal: Principal, job_id: int) -> Job:
    """Cancel a job: a queued one ends `cancelled` now and is never started (its worker's claim
    finds it taken); a running one becomes `cancelling` until its worker, at its next heartbeat,
    stops the job's process (SIGTERM, then SIGKILL) and records `cancelled`. Asking again while
    it is cancelling changes nothing; Conflict for a job that already ended."""
    job = repository.get_job(session, job_id)
    _check_owner(session, principal, job)
    if job.status == "cancelling":
        return job
    if job.status not in PENDING_STATUSES:
        raise Conflict(
            f"job {job.id} already {job.status}; only a queued or running job can be cancelled",
            {"status": job.status},
        )
    who = principal.name
    if repository.request_cancel(session, job.id, reason=f"cancelled by {who}"):
        session.refresh(job)
        job_event(session, job)
    else:  # it ended (or was taken) meanwhile
        session.refresh(job)
        if job.status not in ("cancelling", "cancelled"):
            raise Conflict(
                f"job {job.id} already {job.status}; only a queued or running job can be cancelled",
                {"status": job.status},
            )
    return job


def job_out(settings: Settings, job: Job, *, reused: bool = False) -> JobOut:
    folder = job_dir(settings.artifacts_dir, job.run_id, job.id)
    files = []
    for name in job.files or []:
        path = folder / name
        size = path.stat().st_size if path.is_file() else 0
        files.append(
            JobFileOut(name=name, size_bytes=size, url=f"/api/v1/jobs/{job.id}/files/{name}")
        )
    result = job.result
    if job.kind == image_prediction.KIND and result is not None:
        base = f"/api/v1/jobs/{job.id}/files"
        result = {
            **result,
            "image_url": f"{base}/image.png",
            "truth_url": f"{base}/truth.png",
            "prediction_url": f"{base}/prediction.png",
        }
    return JobOut(
        id=job.id,
        run_id=job.run_id,
        kind=job.kind,
        status=job.status,
        parameters={k: v for k, v in job.parameters.items() if not k.endswith("_path")},
        result=result,
        files=files,
        reason=job.reason,
        details=job.details,
        worker=job.worker,
        created_by=job.created_by,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        reused=reused,
    )


def job_file(settings: Settings, job: Job, name: str) -> Path:
    """The output file `name` of `job`: one its `files` list; NotFound otherwise."""
    if name not in (job.files or []):
        listed = ", ".join((job.files or [])[:20]) or "none"
        raise NotFound(f"job {job.id} has no file {name!r} (files: {listed})")
    path = job_dir(settings.artifacts_dir, job.run_id, job.id) / name
    if not path.is_file():
        raise NotFound(f"the file {name!r} of job {job.id} is gone")
    return path


def _image_suffix(name: str, data: bytes) -> str:
    """The suffix to store an uploaded image with; InvalidInput unless it is an image of an
    accepted type."""
    allowed = ", ".join(INPUT_FORMATS)
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format or ""
            width, height = image.size
            image.verify()
    except UnidentifiedImageError as error:
        # PIL's own message names only the in-memory buffer it read.
        message = f"{name!r} is not an image ({allowed} are accepted)"
        raise InvalidInput(message, [{"field": "files", "message": message}]) from error
    except Image.DecompressionBombError as error:
        message = f"{name!r} has more pixels than the {MAX_INPUT_PIXELS} accepted"
        raise InvalidInput(message, [{"field": "files", "message": message}]) from error
    except (OSError, ValueError) as error:
        message = f"{name!r} is not a readable image ({allowed} are accepted): {error}"
        raise InvalidInput(message, [{"field": "files", "message": message}]) from error
    if kind not in INPUT_FORMATS:
        message = f"{name!r} is a {kind or 'unknown'} image; accepted: {allowed}"
        raise InvalidInput(message, [{"field": "files", "message": message}])
    if width * height > MAX_INPUT_PIXELS:
        message = f"{name!r} has {width}x{height} pixels; at most {MAX_INPUT_PIXELS} are accepted"
        raise InvalidInput(message, [{"field": "files", "message": message}])
    return INPUT_FORMATS[kind]


def _stored_name(raw: str, index: int, suffix: str, taken: set[str]) -> str:
    """A plain file name for upload `index`: its own stem made safe, unique, with `suffix`."""
    stem = Path(raw.replace("\\", "/")).name.rsplit(".", 1)[0]
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in stem)[:100]
    name = f"{safe or f'image{index}'}{suffix}"
    while name in taken:
        name = f"{safe or 'image'}_{index}{suffix}"
        index += 1
    taken.add(name)
    return name


def store_predict_inputs(
    session: Session, settings: Settings, run_id: int, files: Sequence[tuple[str, bytes]]
) -> tuple[str, list[str], int]:
    """Check and store `files` (name, bytes) to predict on; returns (id, stored names, bytes)."""
    get_run(session, run_id)
    if not files:
        raise InvalidInput(
            "no images: send them as multipart form fields named `files`",
            [{"field": "files", "message": "at least one image"}],
        )
    if len(files) > MAX_INPUT_FILES:
        raise PayloadTooLarge(
            f"{len(files)} images in one upload; at most {MAX_INPUT_FILES} are accepted"
        )
    checked = [(name, data, _image_suffix(name, data)) for name, data in files]
    inputs_id = secrets.token_hex(16)
    folder = predict_inputs_dir(settings.artifacts_dir, run_id, inputs_id)
    folder.mkdir(parents=True)
    taken: set[str] = set()
    names = []
    for index, (raw, data, suffix) in enumerate(checked):
        name = _stored_name(raw, index, suffix, taken)
        (folder / name).write_bytes(data)
        names.append(name)
    return inputs_id, names, sum(len(data) for _, data, _ in checked)
