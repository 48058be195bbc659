"""The trainer's Reporter that reports to a tracked run: what a worker's reporter writes to the
database, sent over HTTP instead (through the run's spool, so nothing waits on the network)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from segtrack.tracking import environment
from segtrack.tracking.run import TrackedRun
from trainer.reporting import CheckpointKind, NullReporter, PreviewSample, RunInfo
from trainer.validation_detail import ValidationDetail

MASK_ENCODING_KEYS = ("mode", "values", "ignore_values")
"""The parts of a run's mask mapping the run page shows (the palette stays in checkpoints)."""


def run_info_body(info: RunInfo) -> dict[str, Any]:
    """The RunInfo facts the server's RunInfoOut holds."""
    encoding = info.mask_encoding
    return {
        "num_train": info.num_train,
        "num_val": info.num_val,
        "in_channels": info.in_channels,
        "start_epoch": info.start_epoch,
        "steps_per_epoch": info.steps_per_epoch,
        "parameters": info.parameters,
        "mask_encoding": {key: encoding[key] for key in MASK_ENCODING_KEYS if key in encoding}
        if encoding
        else None,
        "warnings": list(info.warnings),
        "world_size": info.world_size,
        "effective_batch_size": info.effective_batch_size,
        "model_card": dict(info.model_card) if info.model_card else None,
    }


class HttpReporter(NullReporter):
    """Reports `fit`'s hooks to `run`; `should_stop` is the server's cancel."""

    def __init__(self, run: TrackedRun) -> None:
        self.run = run

    def on_start(self, info: RunInfo) -> None:
        # torch is loaded by now, so the environment gains its versions and GPU names.
        self.run.log_info(
            class_names=info.class_names,
            epochs_planned=info.epochs,
            device=info.device[:64],
            run_info=run_info_body(info),
            environment=environment.collect(self.run.origin),
        )

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.run.log(metrics, step=epoch, epoch=epoch)

    def on_step_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        self.run.log(metrics, step=step)

    def on_preview(self, epoch: int, samples: Sequence[PreviewSample]) -> None:
        self.run.log_previews(epoch, samples)

    def on_validation_detail(self, detail: ValidationDetail) -> None:
        self.run.log_validation(detail)

    def on_checkpoint(
        self, kind: CheckpointKind, path: Path, epoch: int, metric: float | None
    ) -> None:
        # Linked into the spool at once: the trainer replaces `path` by a rename later.
        self.run.log_file(path, kind=kind, epoch=epoch, metric=metric)

    def should_stop(self) -> bool:
        return self.run.should_stop()

    def pinned_images(self) -> Sequence[int]:
        return self.run.pinned_images()
