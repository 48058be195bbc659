"""Reports of external runs that a tracking client sends: each checks that the run is external
and, where it must, still training. Replays are harmless: info and previews overwrite, log lines
already held are skipped, heartbeats only move the time."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.artifacts import log_path, preview_paths, relative_path
from server.byte_size import byte_size
from server.errors import Conflict, InvalidInput
from server.events import record_event
from server.models import TERMINAL_STATUSES, Preview, Run, utcnow
from server.pins.repository import pinned_indices
from server.preview.png_files import write_preview_png
from server.preview.repository import add_preview
from server.run.lifecycle import RUNNING_STATUSES, record_start
from server.run.repository import get_run
from server.tracking.schemas import (
    MAX_PREVIEW_FILE_BYTES,
    MAX_PREVIEW_SIDE,
    HeartbeatOut,
    LogsIn,
    TrackedInfo,
)


def external_run(session: Session, run_id: int, *, for_update: bool = False) -> Run:
    """The run, which must be one trained elsewhere (Conflict for a worker's run)."""
    run = get_run(session, run_id, for_update=for_update)
    if not run.external:
        raise Conflict(
            f"run {run_id} is trained by a worker; only external runs report through this endpoint"
        )
    return run


def _training(run: Run) -> None:
    if run.status not in RUNNING_STATUSES:
        raise Conflict(f"run {run.id} is {run.status}; it takes reports only while it trains")


def record_info(session: Session, run_id: int, body: TrackedInfo) -> Run:
    run = external_run(session, run_id, for_update=True)
    _training(run)
    environment = None
    if body.environment is not None:
        environment = {
            **(run.environment or {}),
            **body.environment.model_dump(mode="json", exclude_none=True),
        }
    record_start(
        session,
        run_id,
        class_names=body.class_names,
        epochs_planned=body.epochs_planned,
        device=body.device,
        run_info=body.run_info,
        environment=environment,
    )
    session.refresh(run)
    return run


def heartbeat(session: Session, run_id: int) -> HeartbeatOut:
    run = external_run(session, run_id)
    if run.status in RUNNING_STATUSES:
        run.heartbeat_at = utcnow()
        session.flush()
    stop = run.status == "cancelling" or run.status in TERMINAL_STATUSES
    return HeartbeatOut(
        status=run.status, stop_requested=stop, pinned_images=pinned_indices(session, run.id)
    )


def append_logs(session: Session, artifacts_dir: Path, run_id: int, body: LogsIn) -> int:
    """Append the lines the server does not hold yet; returns how many it holds."""
    run = external_run(session, run_id, for_update=True)
    held = run.log_lines
    if body.first_line > held:
        raise Conflict(
            f"log lines {held} to {body.first_line - 1} of run {run_id} are missing; send from "
            f"line {held}",
            {"log_lines": held},
        )
    fresh = body.lines[held - body.first_line :]
    if fresh:
        path = log_path(artifacts_dir, run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write("".join(f"{line.replace(chr(10), ' ')}\n" for line in fresh))
        run.log_lines = held + len(fresh)
        session.flush()
    return run.log_lines


def _png(field: str, data: bytes, *, labels: bool) -> Image.Image:
    if len(data) > MAX_PREVIEW_FILE_BYTES:
        raise _bad(field, f"is {byte_size(len(data))}; at most {byte_size(MAX_PREVIEW_FILE_BYTES)}")
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
        if max(image.size) > MAX_PREVIEW_SIDE:
            raise _bad(
                field, f"is {image.width}x{image.height}; at most {MAX_PREVIEW_SIDE} px a side"
            )
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise _bad(field, f"is not a readable PNG ({error})") from error
    allowed = ("L",) if labels else ("L", "RGB")
    if image.mode not in allowed:
        what = "class indices in 8-bit grey (mode L)" if labels else "8-bit grey (L) or RGB"
        raise _bad(field, f"has mode {image.mode}; it must be {what}")
    return image


def _bad(field: str, problem: str) -> InvalidInput:
    return InvalidInput(f"{field}: {problem}", [{"field": field, "message": problem}])


def record_preview(
    session: Session,
    artifacts_dir: Path,
    run_id: int,
    *,
    epoch: int,
    sample_index: int,
    name: str,
    files: dict[str, bytes],
    reasons: Sequence[str] = ("fixed",),
) -> bool:
    """Store one preview sample from its PNGs; True when it is new (False: it replaced one)."""
    run = external_run(session, run_id)
    images = {
        "image": _png("image", files["image"], labels=False),
        "truth": _png("truth", files["truth"], labels=True),
        "prediction": _png("prediction", files["prediction"], labels=True),
    }
    sizes = {field: image.size for field, image in images.items()}
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{field} {w}x{h}" for field, (w, h) in sizes.items())
        raise _bad("image", f"image, truth and prediction must be the same size; got {shown}")
    paths = preview_paths(artifacts_dir, run.id, epoch, sample_index)
    write_preview_png(paths.image, images["image"], labels=False)
    write_preview_png(paths.truth, images["truth"], labels=True)
    write_preview_png(paths.prediction, images["prediction"], labels=True)
    existed = session.scalar(
        select(Preview.id).where(
            Preview.run_id == run.id, Preview.epoch == epoch, Preview.sample_index == sample_index
        )
    )
    add_preview(
        session,
        run_id=run.id,
        epoch=epoch,
        sample_index=sample_index,
        name=name,
        image_path=relative_path(artifacts_dir, paths.image),
        truth_path=relative_path(artifacts_dir, paths.truth),
        prediction_path=relative_path(artifacts_dir, paths.prediction),
        reasons=reasons,
    )
    record_event(session, "preview", run.id, {"epoch": epoch, "count": 1})
    return existed is None
