"""Files of a run: preview PNGs, checkpoints and the worker's log, served from the artifacts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse

from server.bounds import Count32, RunIdPath
from server.deps import SessionDep, SettingsDep
from server.errors import NotFound
from server.http_errors import error_responses
from server.preview import repository, service
from server.preview.schemas import (
    CheckpointOut,
    CheckpointsOut,
    LogOut,
    PreviewSampleOut,
    PreviewsOut,
    known_reasons,
)
from server.run.repository import get_run
from server.unit_of_work import UnitOfWorkRoute

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/runs/{run_id}", tags=["files"])

IMMUTABLE = "public, max-age=31536000, immutable"
_PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}}}
_CHECKPOINT: dict[int | str, dict[str, Any]] = {200: {"content": {"application/octet-stream": {}}}}


@router.get("/previews", responses=error_responses(404))
def list_previews(
    run_id: RunIdPath,
    session: SessionDep,
    epoch: Annotated[Count32 | None, Query(description="Default: the latest")] = None,
) -> PreviewsOut:
    """Epochs with previews, and the samples of `epoch` (default: the latest)."""
    get_run(session, run_id)
    epochs = repository.preview_epochs(session, run_id)
    if epoch is not None and epoch not in epochs:
        shown = ", ".join(str(value) for value in epochs[-20:]) or "none yet"
        raise NotFound(
            f"run {run_id} has no previews at epoch {epoch}; epochs with previews: {shown}"
        )
    chosen = epoch if epoch is not None else (epochs[-1] if epochs else None)
    base = f"/api/v1/runs/{run_id}/previews/{chosen}"
    samples = (
        [
            PreviewSampleOut(
                sample_index=preview.sample_index,
                name=preview.name,
                reasons=known_reasons(preview.reasons),
                image_url=f"{base}/{preview.sample_index}/image.png",
                truth_url=f"{base}/{preview.sample_index}/truth.png",
                prediction_url=f"{base}/{preview.sample_index}/prediction.png",
            )
            for preview in repository.previews_at(session, run_id, chosen)
        ]
        if chosen is not None
        else []
    )
    return PreviewsOut(epochs=epochs, epoch=chosen, samples=samples)


@router.get(
    "/previews/{epoch}/{sample}/{kind}.png",
    response_class=FileResponse,
    responses={**_PNG, **error_responses(404)},
)
def preview_png(
    run_id: RunIdPath,
    epoch: Annotated[Count32, Path()],
    *,
    sample: Annotated[Count32, Path(description="The sample's index")],
    kind: Literal["image", "truth", "prediction"],
    session: SessionDep,
    settings: SettingsDep,
) -> FileResponse:
    """One PNG: the image, or truth / prediction as class-index masks (uint8)."""
    path = service.preview_file(
        session, settings.artifacts_dir, run_id, epoch=epoch, sample=sample, kind=kind
    )
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": IMMUTABLE})


@router.get("/checkpoints", responses=error_responses(404))
def list_checkpoints(run_id: RunIdPath, session: SessionDep) -> CheckpointsOut:
    get_run(session, run_id)
    return CheckpointsOut(
        checkpoints=[
            CheckpointOut(
                kind=checkpoint.kind,
                epoch=checkpoint.epoch,
                metric=checkpoint.metric,
                size_bytes=checkpoint.size_bytes,
                url=f"/api/v1/runs/{run_id}/checkpoints/{checkpoint.kind}",
            )
            for checkpoint in repository.list_checkpoints(session, run_id)
        ]
    )


@router.get(
    "/checkpoints/{kind}",
    response_class=FileResponse,
    responses={**_CHECKPOINT, **error_responses(404)},
)
def download_checkpoint(
    run_id: RunIdPath, kind: Literal["best", "last"], session: SessionDep, settings: SettingsDep
) -> FileResponse:
    """The checkpoint file, named run-<id>-<kind>.pt."""
    _checkpoint, path = service.checkpoint_file(session, settings.artifacts_dir, run_id, kind)
    return FileResponse(
        path, media_type="application/octet-stream", filename=f"run-{run_id}-{kind}.pt"
    )


@router.get("/logs", responses=error_responses(404))
def run_logs(
    run_id: RunIdPath,
    session: SessionDep,
    settings: SettingsDep,
    tail: Annotated[int, Query(ge=0, le=10_000)] = 200,
) -> LogOut:
    """The last `tail` lines of the worker's log for this run."""
    get_run(session, run_id)
    return LogOut(lines=service.run_log(settings.artifacts_dir, run_id, tail))
