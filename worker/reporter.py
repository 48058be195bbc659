"""DbReporter: the trainer's reports, stored in the database by a background writer.

Each epoch's metrics are one upsert (idempotent: a resumed epoch overwrites its own points) plus
one event; its validation detail (confusion matrix and per-image counts) one upserted row;
previews are PNG files under the artifacts root plus rows pointing at them. The rows
are written by the run's `ReportWriter`, in order, one short transaction each, and the event is
published (Redis) after each commit so dashboards update within a fraction of a second. A locked
or unreachable database delays the rows, never the training: they wait in memory, bounded, and
are retried for the worker's outage limit; past it the next report raises `ReportWriteError`.
The images users pin on the run are read once per epoch (`pin_reader`), before its previews.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from server.artifacts import preview_paths, relative_path
from server.db import session_scope
from server.events import record_event
from server.metric.points import MetricPoint
from server.metric.service import record_metrics
from server.pins.repository import pinned_indices
from server.preview.png_files import write_preview_array
from server.preview.repository import add_preview, upsert_checkpoint
from server.run.lifecycle import record_start
from server.run.schemas import MaskEncodingOut, ModelCardOut, RunInfoOut
from server.validation.detail import ValidationCounts
from server.validation.service import record_validation
from trainer.reporting import CheckpointKind, NullReporter, PreviewSample, RunInfo
from trainer.validation_detail import ValidationDetail
from worker.report_writer import ReportWriter

logger = logging.getLogger(__name__)


def run_info_out(info: RunInfo) -> RunInfoOut:
    """The RunInfo facts the run page shows; the mask palette stays in the checkpoint."""
    return RunInfoOut(
        num_train=info.num_train,
        num_val=info.num_val,
        in_channels=info.in_channels,
        start_epoch=info.start_epoch,
        steps_per_epoch=info.steps_per_epoch,
        parameters=info.parameters,
        mask_encoding=MaskEncodingOut.model_validate(dict(info.mask_encoding))
        if info.mask_encoding
        else None,
        warnings=list(info.warnings),
        world_size=info.world_size,
        effective_batch_size=info.effective_batch_size,
        model_card=ModelCardOut.model_validate(dict(info.model_card)) if info.model_card else None,
    )


def validation_counts(detail: ValidationDetail) -> ValidationCounts:
    """The trainer's validation detail as the server stores it."""
    images = detail.images
    return ValidationCounts(
        epoch=detail.epoch,
        class_names=tuple(detail.class_names),
        confusion=detail.confusion,
        names=tuple(images.names),
        true_positive=images.true_positive,
        false_positive=images.false_positive,
        false_negative=images.false_negative,
    )


class DbReporter(NullReporter):
    """Reports of one run into the database (through `writer`) and the artifacts folder.

    Whoever runs the training flushes `writer` once `fit` has returned, before recording how
    the run ended.
    """

    def __init__(
        self,
        *,
        run_id: int,
        writer: ReportWriter,
        artifacts_dir: Path,
        stop_requested: Callable[[], bool],
        prune_requested: Callable[[], bool] = lambda: False,
        pinned_images: Callable[[], Sequence[int]] = tuple,
    ) -> None:
        self._run_id = run_id
        self._writer = writer
        self._artifacts_dir = artifacts_dir
        self._stop_requested = stop_requested
        self._prune_requested = prune_requested
        self._pinned_images = pinned_images

    def on_start(self, info: RunInfo) -> None:
        environment = {**info.environment, "origin": "worker"}
        self._writer.submit(
            "start of the run",
            lambda session: record_start(
                session,
                self._run_id,
                class_names=list(info.class_names),
                epochs_planned=info.epochs,
                device=info.device,
                run_info=run_info_out(info),
                environment=environment,
            ),
        )

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        points = [MetricPoint(key, epoch, float(value), epoch) for key, value in metrics.items()]
        self._writer.submit(
            f"metrics of epoch {epoch}",
            lambda session: record_metrics(session, self._run_id, points),
        )

    def on_step_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        points = [MetricPoint(key, step, float(value)) for key, value in metrics.items()]
        self._writer.submit(
            f"metrics of step {step}", lambda session: record_metrics(session, self._run_id, points)
        )

    def on_validation_detail(self, detail: ValidationDetail) -> None:
        counts = validation_counts(detail)
        # Retried like the metrics, but not essential: a set the server's limits refuse (see
        # server.validation.service) is logged and the training goes on.
        self._writer.submit(
            f"validation detail of epoch {detail.epoch}",
            lambda session: record_validation(session, self._run_id, counts),
            essential=False,
        )

    def on_preview(self, epoch: int, samples: Sequence[PreviewSample]) -> None:
        if not samples:
            return
        stored = []
        for sample in samples:
            paths = preview_paths(self._artifacts_dir, self._run_id, epoch, sample.index)
            # Image and truth never change; they are written once per run.
            if not paths.image.exists():
                write_preview_array(paths.image, sample.image, labels=False)
            if not paths.truth.exists():
                write_preview_array(paths.truth, sample.truth, labels=True)
            write_preview_array(paths.prediction, sample.prediction, labels=True)
            stored.append((sample, paths))

        def write(session: Session) -> None:
            for sample, paths in stored:
                add_preview(
                    session,
                    run_id=self._run_id,
                    epoch=epoch,
                    sample_index=sample.index,
                    name=sample.name,
                    image_path=relative_path(self._artifacts_dir, paths.image),
                    truth_path=relative_path(self._artifacts_dir, paths.truth),
                    prediction_path=relative_path(self._artifacts_dir, paths.prediction),
                    reasons=sample.reasons,
                )
            record_event(session, "preview", self._run_id, {"epoch": epoch, "count": len(stored)})

        self._writer.submit(f"previews of epoch {epoch}", write)

    def on_checkpoint(
        self, kind: CheckpointKind, path: Path, epoch: int, metric: float | None
    ) -> None:
        # Read now: by the time the row is written, a later epoch may have replaced the file.
        size_bytes = path.stat().st_size
        relative = relative_path(self._artifacts_dir, path)

        def write(session: Session) -> None:
            upsert_checkpoint(
                session,
                run_id=self._run_id,
                kind=kind,
                epoch=epoch,
                metric=metric,
                path=relative,
                size_bytes=size_bytes,
            )
            record_event(
                session,
                "checkpoint",
                self._run_id,
                {"kind": kind, "epoch": epoch, "metric": metric},
            )

        self._writer.submit(f"{kind} checkpoint of epoch {epoch}", write)

    def should_stop(self) -> bool:
        return self._stop_requested()

    def stop_after_epoch(self, epoch: int) -> bool:
        return self._prune_requested()

    def pinned_images(self) -> Sequence[int]:
        return self._pinned_images()


def pin_reader(sessions: sessionmaker[Session], run_id: int) -> Callable[[], Sequence[int]]:
    """The images pinned on the run, read from the database (once per epoch: the trainer asks
    before its previews); a database that does not answer leaves the pins last read."""
    last: list[int] = []

    def pinned_images() -> Sequence[int]:
        nonlocal last
        try:
            with session_scope(sessions, write=False) as session:
                last = pinned_indices(session, run_id)
        except SQLAlchemyError as error:
            logger.warning("could not read the run's pinned images, keeping %s: %s", last, error)
        return tuple(last)

    return pinned_images
