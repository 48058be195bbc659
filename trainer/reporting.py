"""The Reporter protocol, the trainer's only way out, and the reporters that need no server.

`fit` calls these hooks in order: `on_start` once, then per epoch `on_train_progress` (often),
`on_epoch_end`, `on_validation_detail`, `on_preview`; `should_stop` is polled every few
batches. Checkpoint files are written in the background, so `on_checkpoint` for epoch N comes
once its file is whole: at a check point of epoch N+1, or at the end of `fit`. Every hook
runs on the training thread.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from trainer.data.mask_encoding import MaskEncoding, MaskValueError
from trainer.validation_detail import ValidationDetail

logger = logging.getLogger(__name__)

CheckpointKind = Literal["best", "last"]
PreviewReason = Literal["fixed", "worst", "pinned"]
"""Why a validation image is previewed at an epoch: one of the set chosen at the start, among
that epoch's worst (`preview_worst`), or pinned by a user."""
PREVIEW_REASONS: tuple[PreviewReason, ...] = ("fixed", "pinned", "worst")


@dataclass(frozen=True)
class RunInfo:
    """What a run is about to train; reported once before epoch 1."""

    class_names: tuple[str, ...]
    num_train: int
    num_val: int
    in_channels: int
    epochs: int
    start_epoch: int
    device: str
    steps_per_epoch: int
    parameters: int
    mask_encoding: Mapping[str, Any]
    warnings: tuple[str, ...] = ()
    world_size: int = 1
    """Processes training together (batch_size is per process)."""
    effective_batch_size: int | None = None
    """Images per optimizer step: batch_size x world_size x grad_accum_steps."""
    environment: Mapping[str, Any] = field(default_factory=dict)
    """Where it trains (`trainer.environment.describe_environment`); the reporter adds where
    the run came from (`origin`)."""
    model_card: Mapping[str, Any] = field(default_factory=dict)
    """What the model costs on the training device (`trainer.model_card.ModelCard.to_dict`):
    parameters, FLOPs of one image at the training size, latency at batch 1 and batch_size,
    images/s, device; measured on rank 0 only (empty elsewhere)."""


@dataclass(frozen=True)
class PreviewSample:
    """One validation image with its truth and prediction at the training resolution.

    `image` is uint8 (H, W) or (H, W, 3) ready to display; `truth` and `prediction` are uint8 (H, W)
    class indices (255 = ignored pixel in the truth). `index` is the image's position in the
    validation set; `reasons` say why it is previewed (every one that applies, in
    PREVIEW_REASONS order).
    """

    index: int
    name: str
    image: npt.NDArray[np.uint8]
    truth: npt.NDArray[np.uint8]
    prediction: npt.NDArray[np.uint8]
    reasons: tuple[PreviewReason, ...] = ("fixed",)


@dataclass(frozen=True)
class EpochProgress:
    """Where the current epoch's training stands; reported every few batches.

    `data_wait_share` (0..1) is the part of the wall time since the previous report this process
    spent waiting for the loader's next batch: near 0 the data keeps up, near 1 the steps starve.
    """

    epoch: int
    batch: int
    num_batches: int
    loss: float | None = None
    data_wait_share: float | None = None


class Reporter(Protocol):
    """Where `fit` sends what happens. Implementations must be cheap: they run on the train loop."""

    def on_start(self, info: RunInfo) -> None: ...

    def on_train_progress(self, progress: EpochProgress) -> None: ...

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None: ...

    def on_step_metrics(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def on_preview(self, epoch: int, samples: Sequence[PreviewSample]) -> None: ...

    def on_validation_detail(self, detail: ValidationDetail) -> None:
        """The epoch's confusion matrix and every validation image's counts; after
        `on_epoch_end` of that epoch, on rank 0."""
        ...

    def on_checkpoint(
        self, kind: CheckpointKind, path: Path, epoch: int, metric: float | None
    ) -> None: ...

    def should_stop(self) -> bool: ...

    def stop_after_epoch(self, epoch: int) -> bool:
        """Whether to end the training now that `epoch` is reported and checkpointed (a sweep's
        pruner gave up on the run); asked once per epoch, on rank 0."""
        ...

    def pinned_images(self) -> Sequence[int]:
        """Validation images (positions in the set) a user pinned, previewed besides the fixed
        set; asked once per epoch on rank 0, after validation and before `on_preview`."""
        ...


class NullReporter:
    """Ignores everything; base class for reporters that care about a few hooks only."""

    def on_start(self, info: RunInfo) -> None:
        return None

    def on_train_progress(self, progress: EpochProgress) -> None:
        return None

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        return None

    def on_step_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        return None

    def on_preview(self, epoch: int, samples: Sequence[PreviewSample]) -> None:
        return None

    def on_validation_detail(self, detail: ValidationDetail) -> None:
        return None

    def on_checkpoint(
        self, kind: CheckpointKind, path: Path, epoch: int, metric: float | None
    ) -> None:
        return None

    def should_stop(self) -> bool:
        return False

    def stop_after_epoch(self, epoch: int) -> bool:
        return False

    def pinned_images(self) -> Sequence[int]:
        return ()


@dataclass
class MultiReporter:
    """Fans every hook out to several reporters; stops when any of them asks to."""

    reporters: Sequence[Reporter]

    def on_start(self, info: RunInfo) -> None:
        for reporter in self.reporters:
            reporter.on_start(info)

    def on_train_progress(self, progress: EpochProgress) -> None:
        for reporter in self.reporters:
            reporter.on_train_progress(progress)

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        for reporter in self.reporters:
            reporter.on_epoch_end(epoch, metrics)

    def on_step_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        for reporter in self.reporters:
            reporter.on_step_metrics(step, metrics)

    def on_preview(self, epoch: int, samples: Sequence[PreviewSample]) -> None:
        for reporter in self.reporters:
            reporter.on_preview(epoch, samples)

    def on_validation_detail(self, detail: ValidationDetail) -> None:
        for reporter in self.reporters:
            reporter.on_validation_detail(detail)

    def on_checkpoint(
        self, kind: CheckpointKind, path: Path, epoch: int, metric: float | None
    ) -> None:
        for reporter in self.reporters:
            reporter.on_checkpoint(kind, path, epoch, metric)

    def should_stop(self) -> bool:
        return any(reporter.should_stop() for reporter in self.reporters)

    def stop_after_epoch(self, epoch: int) -> bool:
        return any(reporter.stop_after_epoch(epoch) for reporter in self.reporters)

    def pinned_images(self) -> Sequence[int]:
        """Every reporter's pins, first seen first."""
        pinned = {index: None for reporter in self.reporters for index in reporter.pinned_images()}
        return tuple(pinned)


def _describe_mapping(info: RunInfo) -> str | None:
    """The mask value -> class mapping of `info` in one line; None when it holds none."""
    if not info.mask_encoding:
        return None
    try:
        encoding = MaskEncoding.from_dict(dict(info.mask_encoding))
    except MaskValueError:
        logger.debug("cannot describe the mask encoding %s", info.mask_encoding, exc_info=True)
        return None
    kind = {"grey": "grey", "index": "palette", "rgb": "colour", "class-folders": "folder"}
    return f"({kind[encoding.mode]} masks) {encoding.describe_classes(info.class_names)}"


class ConsoleReporter(NullReporter):
    """Progress bars per epoch and one summary line per epoch, for terminals."""

    def __init__(self, *, progress_bars: bool = True) -> None:
        self._progress_bars = progress_bars
        self._bar: tqdm[Any] | None = None

    def on_start(self, info: RunInfo) -> None:
        logger.info(
            "training on %s: %d train / %d val images, %d classes (%s), %d input channels, "
            "%.2fM parameters, epochs %d-%d",
            info.device,
            info.num_train,
            info.num_val,
            len(info.class_names),
            ", ".join(info.class_names),
            info.in_channels,
            info.parameters / 1e6,
            info.start_epoch,
            info.epochs,
        )
        if info.world_size > 1:
            logger.info(
                "%d processes train together, %s images per optimizer step",
                info.world_size,
                info.effective_batch_size,
            )
        mapping = _describe_mapping(info)
        if mapping is not None:
            logger.info("mask values -> classes: %s", mapping)
        for warning in info.warnings:
            logger.warning("%s", warning)

    def on_train_progress(self, progress: EpochProgress) -> None:
        if not self._progress_bars:
            return
        if self._bar is None:
            self._bar = tqdm(
                total=progress.num_batches,
                desc=f"epoch {progress.epoch}",
                unit="batch",
                leave=False,
            )
        self._bar.n = progress.batch
        if progress.loss is not None:
            self._bar.set_postfix(loss=f"{progress.loss:.4f}", refresh=False)
        self._bar.refresh()

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        shown = ("train/loss", "val/loss", "val/iou", "val/dice", "val/miou", "lr")
        summary = "  ".join(f"{key} {metrics[key]:.4g}" for key in shown if key in metrics)
        logger.info("epoch %d  %s", epoch, summary)

    def on_checkpoint(
        self, kind: CheckpointKind, path: Path, epoch: int, metric: float | None
    ) -> None:
        if kind == "best" and metric is not None:
            logger.info("epoch %d is the best so far (%.4f); saved %s", epoch, metric, path)


@dataclass
class CsvReporter(NullReporter):
    """Writes `metrics.csv`: one row per epoch, `epoch` then one column per metric key.

    The file is rewritten whole each epoch because new keys (a class first seen late) add columns.
    On resume, rows from the epochs being redone are dropped so the curve continues cleanly.
    """

    path: Path
    rows: dict[int, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.path.exists():
            with self.path.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    epoch = int(row.pop("epoch"))
                    self.rows[epoch] = {key: float(value) for key, value in row.items() if value}

    def on_start(self, info: RunInfo) -> None:
        self.rows = {epoch: row for epoch, row in self.rows.items() if epoch < info.start_epoch}

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.rows[epoch] = {key: value for key, value in metrics.items() if math.isfinite(value)}
        keys = sorted({key for row in self.rows.values() for key in row})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".csv.tmp")
        with temporary.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["epoch", *keys])
            for row_epoch in sorted(self.rows):
                row = self.rows[row_epoch]
                writer.writerow(
                    [row_epoch, *(repr(row[key]) if key in row else "" for key in keys)]
                )
        temporary.replace(self.path)
