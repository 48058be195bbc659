"""/api/v1/runs/{run_id}/info, /heartbeat, /previews, /logs: how a run trained elsewhere reports
what a worker's run writes to the database itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status

from server.bounds import RunIdPath
from server.byte_size import byte_size
from server.deps import SessionDep, SettingsDep
from server.errors import InvalidInput
from server.http_errors import error_responses
from server.run.router import run_out
from server.run.schemas import RunOut
from server.tracking import service
from server.tracking.schemas import (
    MAX_PREVIEW_FILE_BYTES,
    MAX_SAMPLE_INDEX,
    PREVIEW_REASONS_PATTERN,
    HeartbeatOut,
    LogsIn,
    LogsOut,
    PreviewOut,
    TrackedInfo,
)
from server.unit_of_work import UnitOfWorkRoute

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/runs/{run_id}", tags=["tracking"])


@router.put("/info", responses=error_responses(404, 409))
def put_info(
    run_id: RunIdPath, body: TrackedInfo, session: SessionDep, settings: SettingsDep
) -> RunOut:
    """What the trainer resolved before epoch 1 (class names, image counts, ...) and where it
    runs; external runs only, while they train. Sending it again replaces it."""
    return run_out(session, settings, service.record_info(session, run_id, body))


@router.post("/heartbeat", responses=error_responses(404, 409))
def heartbeat(run_id: RunIdPath, session: SessionDep) -> HeartbeatOut:
    """The tracker is alive; the answer says whether to stop (the run is being cancelled or
    has ended)."""
    return service.heartbeat(session, run_id)


@router.post("/logs", responses=error_responses(404, 409))
def append_logs(
    run_id: RunIdPath, body: LogsIn, session: SessionDep, settings: SettingsDep
) -> LogsOut:
    """Log lines numbered from `first_line`; lines the server holds already are skipped, a gap
    is 409 with `details.log_lines` (where to send from)."""
    held = service.append_logs(session, settings.artifacts_dir, run_id, body)
    return LogsOut(log_lines=held)


def _read(field: str, upload: UploadFile) -> bytes:
    data = upload.file.read(MAX_PREVIEW_FILE_BYTES + 1)
    if len(data) > MAX_PREVIEW_FILE_BYTES:
        problem = f"is over {byte_size(MAX_PREVIEW_FILE_BYTES)}"
        raise InvalidInput(f"{field}: {problem}", [{"field": field, "message": problem}])
    return data


@router.post(
    "/previews",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "The sample replaced one stored before"},
        **error_responses(404, 409),
    },
)
def post_preview(  # noqa: PLR0917 (one form field each)
    run_id: RunIdPath,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    epoch: Annotated[int, Form(ge=0, le=100_000)],
    sample_index: Annotated[int, Form(ge=0, le=MAX_SAMPLE_INDEX)],
    name: Annotated[str, Form(max_length=500)],
    image: Annotated[UploadFile, File(description="PNG, 8-bit grey or RGB")],
    truth: Annotated[UploadFile, File(description="PNG, mode L, class indices (255 ignored)")],
    prediction: Annotated[UploadFile, File(description="PNG, mode L, class indices")],
    reasons: Annotated[
        str,
        Form(
            pattern=PREVIEW_REASONS_PATTERN,
            description="Why it is previewed, comma-separated: fixed, pinned, worst",
        ),
    ] = "fixed",
) -> PreviewOut:
    """One validation sample of an epoch as the run page shows it: image, truth and prediction
    PNGs of one size (at most 4096 px a side, 16 MiB each). A sample sent again replaces it."""
    if "\x00" in name:
        problem = "contains a NUL character"
        raise InvalidInput(f"name: {problem}", [{"field": "name", "message": problem}])
    files = {
        "image": _read("image", image),
        "truth": _read("truth", truth),
        "prediction": _read("prediction", prediction),
    }
    new = service.record_preview(
        session,
        settings.artifacts_dir,
        run_id,
        epoch=epoch,
        sample_index=sample_index,
        name=name,
        files=files,
        reasons=tuple(dict.fromkeys(reasons.split(","))),
    )
    if not new:
        response.status_code = status.HTTP_200_OK
    return PreviewOut(epoch=epoch, sample_index=sample_index)
