"""DbReporter: the trainer's reports, written to the database one short transaction each.

Each epoch's metrics are one upsert (idempotent: a resumed epoch overwrites its own points) plus
one event; previews are PNG files under the artifacts root plus rows pointing at them. After each
commit the event is published (Redis) so dashboards update within a fraction of a second. A write
that meets a locked or unreachable database is retried (`worker.retry`), so ingest load on the
API never loses a report; the training waits meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from segtrack.tracking import environment
from server.artifacts import preview_paths, relative_path
from server.db import session_scope
from server.events import notify_committed, record_event
from server.metric.points import MetricPoint
from server.metric.service import record_metrics
from server.preview.png_files import write_preview_array
from server.preview.repository import add_preview, upsert_checkpoint
from server.run.lifecycle import record_start
from server.run.schemas import MaskEncodingOut, RunInfoOut
from trainer.reporting import CheckpointKind, NullReporter, PreviewSample, RunInfo
from worker.retry import retry_write

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
    )


class DbReporter(NullReporter):
    """Reports of one run into the database and the artifacts folder."""

    def __init__(
        self,
        *,
        run_id: int,
        sessions: sessionmaker[Session],
        artifacts_dir: Path,
        redis_url: str | None,
        stop_requested: Callable[[], bool],
    ) -> None:
        self._run_id = run_id
        self._sessions = sessions
        self._artifacts_dir = artifacts_dir
        self._redis_url = redis_url
        self._stop_requested = stop_requested

    def _commit(self, what: str, write: Callable[[Session], object]) -> None:
        """Run `write` in one transaction, retried until it commits; then publish its events."""

        def attempt() -> None:
            with session_scope(self._sessions) as session:
                write(session)

        retry_write(attempt, what=what)
        notify_committed(self._redis_url)

    def on_start(self, info: RunInfo) -> None:
        self._commit(
            "start of the run",
            lambda session: record_start(
                session,
                self._run_id,
                class_names=list(info.class_names),
                epochs_planned=info.epochs,
                device=info.device,
                run_info=run_info_out(info),
                environment=environment.collect("worker"),
            ),
        )

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        points = [MetricPoint(key, epoch, float(value), epoch) for key, value in metrics.items()]
        self._commit(
            f"metrics of epoch {epoch}",
            lambda session: record_metrics(session, self._run_id, points),
        )

    def on_step_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        points = [MetricPoint(key, step, float(value)) for key, value in metrics.items()]
        self._commit(
            f"metrics of step {step}", lambda session: record_metrics(session, self._run_id, points)
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
                )
            record_event(session, "preview", self._run_id, {"epoch": epoch, "count": len(stored)})

        self._commit(f"previews of epoch {epoch}", write)

    def on_checkpoint(
        self, kind: CheckpointKind, path: Path, epoch: int, metric: float | None
    ) -> None:
        def write(session: Session) -> None:
            upsert_checkpoint(
                session,
                run_id=self._run_id,
                kind=kind,
                epoch=epoch,
                metric=metric,
                path=relative_path(self._artifacts_dir, path),
                size_bytes=path.stat().st_size,
            )
            record_event(
                session,
                "checkpoint",
                self._run_id,
                {"kind": kind, "epoch": epoch, "metric": metric},
            )

        self._commit(f"{kind} checkpoint of epoch {epoch}", write)

    def should_stop(self) -> bool:
        return self._stop_requested()
