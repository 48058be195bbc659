"""Jobs on a run's checkpoint: `POST /api/v1/runs/{run_id}/jobs` (evaluate, predict, export,
predict_image), the run's jobs, images to predict on, and `/api/v1/jobs/{job_id}` with its
files and its cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, File, Query, Response, UploadFile, status
from fastapi.responses import FileResponse

from server.auth.principal import PrincipalDep
from server.auth.run_access import require_run_owner
from server.bounds import Id32, RunIdPath
from server.deps import SessionDep, SettingsDep, TaskQueueDep
from server.http_errors import error_responses
from server.job import repository, service
from server.job.schemas import JobCreate, JobList, JobOut, PredictInputsOut
from server.run.repository import get_run
from server.unit_of_work import UnitOfWorkRoute

run_jobs_router = APIRouter(
    route_class=UnitOfWorkRoute,
    prefix="/api/v1/runs/{run_id}",
    tags=["jobs"],
    # Members queue jobs on their own runs only (admins on any); viewers read.
    dependencies=[Depends(require_run_owner)],
)
jobs_router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/jobs", tags=["jobs"])

MAX_LISTED = 200
JOB_EXAMPLES = {
    "evaluate": {"value": {"kind": "evaluate", "checkpoint": "best", "split": "test"}},
    "export": {"value": {"kind": "export", "checkpoint": "best", "format": "onnx"}},
    "predict": {
        "value": {"kind": "predict", "checkpoint": "best", "tta": False, "folder": "new_images"}
    },
    "predict_image": {"value": {"kind": "predict_image", "image": 7, "epoch": 12}},
}
_FILE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "The file"}
}


@run_jobs_router.post(
    "/jobs",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {
            "description": "A predict_image job of the same image and checkpoint, reused",
            "model": JobOut,
        },
        **error_responses(403, 404, 409, 422),
    },
)
def create_job(  # noqa: PLR0917 (FastAPI's dependencies)
    run_id: RunIdPath,
    body: Annotated[JobCreate, Body(openapi_examples=JOB_EXAMPLES)],
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    task_queue: TaskQueueDep,
    principal: PrincipalDep,
) -> JobOut:
    """Queue an evaluate, predict, export or predict_image job on one of the run's checkpoints.

    - `evaluate`: the dataset's `test` split (or `val`, the part training used) of the run's
      dataset or of another registered one with the same classes (422 names the class sets,
      or the splits the dataset has). A test evaluation attaches its `test/*` metrics to the
      run at the checkpoint's epoch.
    - `export`: `onnx` or `torchscript`, checked against PyTorch; the file downloads.
    - `predict`: the images of an `upload` (`POST .../predict-inputs`) or of a `folder` inside
      the dataset roots, with flip TTA if `tta`; masks in the dataset's encoding (a zip) and
      overlays.
    - `predict_image`: validation image `image` (its index in `GET .../images`) predicted from
      the checkpoint (best or last) whose epoch is nearest `epoch`; the result says the epoch
      really used and links the image, truth and prediction PNGs (the previews' format). The
      same image and checkpoint asked again answers 200 with the job already queued, running
      or done (`reused`). 404: no such image; 409: no checkpoint, no validation images yet,
      or a dataset this server cannot read.
    """
    job, reused = service.create_job(session, settings, task_queue, principal, run_id, body)
    if reused:
        response.status_code = status.HTTP_200_OK
    return service.job_out(settings, job, reused=reused)


@run_jobs_router.get("/jobs", responses=error_responses(404))
def list_jobs(
    run_id: RunIdPath,
    session: SessionDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 50,
) -> JobList:
    """The run's jobs, newest first."""
    get_run(session, run_id)
    jobs = repository.run_jobs(session, run_id, limit=limit)
    return JobList(items=[service.job_out(settings, job) for job in jobs])


@run_jobs_router.post(
    "/predict-inputs",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(403, 404, 413, 422),
)
def upload_predict_inputs(
    run_id: RunIdPath,
    files: Annotated[list[UploadFile], File(description="PNG, JPEG, TIFF or BMP images")],
    session: SessionDep,
    settings: SettingsDep,
) -> PredictInputsOut:
    """Store images to predict on (at most 32 per upload, within the request body limit);
    pass the answer's `id` as a predict job's `upload`."""
    read = [
        (upload.filename or f"image{index}", upload.file.read())
        for index, upload in enumerate(files)
    ]
    inputs_id, names, size = service.store_predict_inputs(session, settings, run_id, read)
    return PredictInputsOut(id=inputs_id, files=names, size_bytes=size)


@jobs_router.get("/{job_id}", responses=error_responses(404))
def get_job(job_id: Id32, session: SessionDep, settings: SettingsDep) -> JobOut:
    return service.job_out(settings, repository.get_job(session, job_id))


@jobs_router.post("/{job_id}/cancel", responses=error_responses(403, 404, 409))
def cancel_job(
    job_id: Id32, session: SessionDep, settings: SettingsDep, principal: PrincipalDep
) -> JobOut:
    """Cancel a job: a queued one is `cancelled` at once and never starts; a running one is
    `cancelling` until its worker stops its process (within a heartbeat, then SIGTERM and,
    after a grace period, SIGKILL) and records `cancelled`. 409 for a job that already ended."""
    return service.job_out(settings, service.cancel_job(session, principal, job_id))


@jobs_router.get(
    "/{job_id}/files/{name:path}",
    response_class=FileResponse,
    responses={**_FILE, **error_responses(404)},
)
def download_job_file(
    job_id: Id32, name: str, session: SessionDep, settings: SettingsDep
) -> FileResponse:
    """One of the job's `files`: an exported model, `masks.zip`, an overlay PNG, an
    evaluation's CSV or JSON."""
    job = repository.get_job(session, job_id)
    path = service.job_file(settings, job, name)
    media = "image/png" if path.suffix == ".png" else "application/octet-stream"
    filename = f"run-{job.run_id}-job-{job.id}-{path.name}"
    return FileResponse(path, media_type=media, filename=filename)
