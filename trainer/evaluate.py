"""`segtrack evaluate`: a trained model's validation metrics on a held-out part of a dataset.

The numbers are computed exactly as validation computes them (`trainer.scoring`: same resizing,
normalisation, autocast, loss and confusion matrix) and keyed by the part scored: `test/...` for
the test split, `val/...` for the validation part (the very numbers training logged for that
epoch), `all/...` for every pair. Masks are decoded with the checkpoint's own mask value mapping
and classes, so a dataset whose masks or classes do not fit the model is refused rather than
scored. The same pass counts every image (`trainer.validation_detail`), so the confusion matrix
and the per-image scores written beside the metrics always agree with them.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from trainer.checkpoint import Checkpoint
from trainer.data.dataset import SegmentationDataset, pad_collate
from trainer.data.errors import DatasetLayoutError
from trainer.data.image_files import read_image
from trainer.data.layout import DatasetLayout, Sample, discover_layout
from trainer.data.mask_encoding import MaskEncoding, MaskValueError
from trainer.data.split import EVALUATION_SPLITS, evaluation_samples
from trainer.inference import InputNormalizer
from trainer.losses import build_loss
from trainer.predict import load_for_inference
from trainer.runtime import resolve_device, resolve_precision
from trainer.scoring import score_set
from trainer.spreadsheet import spreadsheet_safe
from trainer.validation_detail import Counts, ImageCounts, ValidationDetail

logger = logging.getLogger(__name__)

SUMMARY_KEYS: tuple[tuple[str, str], ...] = (
    ("iou", "mean over the foreground classes"),
    ("dice", "mean over the foreground classes"),
    ("miou", "mean IoU over all classes"),
    ("pixel_acc", "correct / counted pixels"),
    ("loss", "training loss, mean per image"),
)

PER_CLASS_KINDS = ("iou", "dice", "precision", "recall")
"""The per-class values of the table and of `per_class.csv`, in column order."""
CONFUSION_CORNER = "truth \\ prediction"
"""The first cell of confusion_matrix.csv, as in the run's `confusion.csv` (rows truth)."""


class EvaluateError(ValueError):
    """A dataset that does not fit a checkpoint: other classes, channels or mask values."""


class MissingSplitError(DatasetLayoutError):
    """The split asked for is empty or absent; `available` lists the splits the dataset has."""

    def __init__(self, message: str, split: str, available: tuple[str, ...]) -> None:
        super().__init__(message)
        self.split = split
        self.available = available


def metric_prefix(split: str) -> str:
    """First part of the metric keys of an evaluation of `split`: the split's own name, so a
    validation score reads `val/iou` as in training and only the test split reads `test/iou`."""
    return split


@dataclass(frozen=True)
class EvaluateOptions:
    """What to evaluate and how.

    Attributes:
        split: "test", "val" (the validation part training used) or "all".
        flip_tta: average over horizontal and vertical flips.
        batch_size: images per batch; None keeps the checkpoint's (mixed-size batches are padded,
            so the same batches as validation give the same numbers).
        num_workers: DataLoader worker processes (0 reads in this process).
        device: auto, cpu, cuda, cuda:N or mps.
    """

    split: str = "test"
    flip_tta: bool = False
    batch_size: int | None = None
    num_workers: int = 0
    device: str = "auto"


@dataclass(frozen=True)
class Evaluation:
    """The metrics of one checkpoint on one part of a dataset.

    `confusion` (K, K, truth by prediction) and `images` (every image's counts, in the order
    of the split's samples) come from the same pass as `metrics`.
    """

    checkpoint: Path
    epoch: int
    dataset: Path
    split: str
    num_images: int
    flip_tta: bool
    class_names: tuple[str, ...]
    metrics: dict[str, float]
    confusion: Counts
    images: ImageCounts

    @property
    def prefix(self) -> str:
        """First part of every metric key (`test`, `val` or `all`)."""
        return metric_prefix(self.split)

    def per_class(self) -> list[dict[str, Any]]:
        """One row per class: index, name, iou, dice, precision and recall (None when not
        defined: see `trainer.metrics`)."""
        return [
            {
                "index": index,
                "class": name,
                **{
                    kind: self.metrics.get(f"{self.prefix}/{kind}/{name}")
                    for kind in PER_CLASS_KINDS
                },
            }
            for index, name in enumerate(self.class_names)
        ]

    def detail(self) -> ValidationDetail:
        """The confusion matrix and per-image counts, shaped as an epoch's validation detail
        (epoch: the checkpoint's)."""
        return ValidationDetail(
            epoch=self.epoch,
            class_names=self.class_names,
            confusion=self.confusion,
            images=self.images,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary: where the numbers come from, and the numbers."""
        return {
            "checkpoint": str(self.checkpoint),
            "epoch": self.epoch,
            "dataset": str(self.dataset),
            "split": self.split,
            "num_images": self.num_images,
            "flip_tta": self.flip_tta,
            "class_names": list(self.class_names),
            "metrics": dict(self.metrics),
            "confusion_matrix": self.confusion.tolist(),
        }

    def format_table(self) -> str:
        """The per-class table and the summary metrics, for terminals."""
        width = max(len("class"), *(len(name) for name in self.class_names))
        lines = [
            f"{self.checkpoint} (epoch {self.epoch}) on the {self.split} split of {self.dataset}: "
            f"{self.num_images} images{', flip TTA' if self.flip_tta else ''}",
            "",
            f"{'class':<{width}}  " + "  ".join(f"{kind:>9}" for kind in PER_CLASS_KINDS),
        ]
        for row in self.per_class():
            cells = ("-" if row[kind] is None else f"{row[kind]:.4f}" for kind in PER_CLASS_KINDS)
            absent = "  (absent from truth and prediction)" if row["iou"] is None else ""
            lines.append(
                f"{row['class']:<{width}}  " + "  ".join(f"{c:>9}" for c in cells) + absent
            )
        lines.append("")
        for key, meaning in SUMMARY_KEYS:
            value = self.metrics.get(f"{self.prefix}/{key}")
            if value is not None:
                lines.append(f"{self.prefix}/{key:<10} {value:.4f}  ({meaning})")
        return "\n".join(lines)

    def write(self, out_dir: Path) -> tuple[Path, ...]:
        """Write into `out_dir`; returns the paths written, in this order:

        - `metrics.json`: `to_dict()`;
        - `per_class.csv`: index, class, then iou, dice, precision, recall (empty: not defined);
        - `confusion_matrix.csv`: pixels by truth (rows) and prediction (columns), headed by
          "truth \\ prediction" and the class names, each row starting with its truth class's
          name (as the run's confusion.csv);
        - `per_image.csv`: one row per image in set order: name, iou, dice, pixels_wrong, then
          `iou/<class>` and `dice/<class>` per class (empty where the class is absent from the
          image's truth and prediction).
        """
        out_dir.mkdir(parents=True, exist_ok=True)
        summary = out_dir / "metrics.json"
        summary.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        table = out_dir / "per_class.csv"
        with table.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["index", "class", *PER_CLASS_KINDS])
            for row in self.per_class():
                writer.writerow(
                    [row["index"], spreadsheet_safe(row["class"])]
                    + ["" if row[kind] is None else repr(row[kind]) for kind in PER_CLASS_KINDS]
                )
        confusion = out_dir / "confusion_matrix.csv"
        with confusion.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            names = [spreadsheet_safe(name) for name in self.class_names]
            writer.writerow([CONFUSION_CORNER, *names])
            for name, counts in zip(names, self.confusion.tolist(), strict=True):
                writer.writerow([name, *counts])
        per_image = out_dir / "per_image.csv"
        with per_image.open("w", newline="", encoding="utf-8") as handle:
            _write_per_image(csv.writer(handle), self.images, self.class_names)
        return summary, table, confusion, per_image


def _write_per_image(writer: Any, images: ImageCounts, class_names: tuple[str, ...]) -> None:
    """The rows of `per_image.csv` (see `Evaluation.write`)."""
    writer.writerow(
        [
            "name",
            "iou",
            "dice",
            "pixels_wrong",
            *(f"{kind}/{name}" for kind in ("iou", "dice") for name in class_names),
        ]
    )
    iou, dice = images.iou(), images.dice()
    columns = zip(
        images.names,
        images.image_iou().tolist(),
        images.image_dice().tolist(),
        images.pixels_wrong().tolist(),
        np.concatenate([iou, dice], axis=1).tolist(),
        strict=True,
    )
    for name, image_iou, image_dice, wrong, per_class in columns:
        cells = ["" if math.isnan(value) else repr(value) for value in per_class]  # NaN: absent
        writer.writerow([spreadsheet_safe(name), repr(image_iou), repr(image_dice), wrong, *cells])


def _check_classes(layout: DatasetLayout, checkpoint: Checkpoint, path: Path) -> None:
    """Refuse a dataset whose classes are named or stored unlike the checkpoint's."""
    by_folder = checkpoint.mask_encoding.get("mode") == "class-folders"
    if by_folder != (layout.kind == "class-folders"):
        kinds = {True: "a mask folder per class", False: "one mask file per image"}
        raise EvaluateError(
            f"{path} was trained with {kinds[by_folder]}, but {layout.root} has "
            f"{kinds[layout.kind == 'class-folders']}"
        )
    # The layout's names are the dataset's own (classes file, class folders) unless they are
    # the Pascal VOC default guess; a config's class_names override them, as in training.
    explicit = layout.classes_file is not None or layout.kind == "class-folders"
    names = layout.class_names
    if (
        checkpoint.config.class_names is None
        and explicit
        and names is not None
        and tuple(names) != checkpoint.class_names
    ):
        source = layout.classes_file or "its class folders"
        raise EvaluateError(
            f"{layout.root} names the classes {', '.join(names)} ({source}) but {path} was "
            f"trained on {', '.join(checkpoint.class_names)}; evaluate on a dataset with the "
            "same classes in the same order"
        )


def _check_channels(sample: Sample, in_channels: int, path: Path) -> None:
    """Refuse images the model cannot take; one file is read, datasets share a channel count."""
    channels = read_image(sample.image).shape[2]
    if channels != in_channels:
        raise EvaluateError(
            f"{sample.image} has {channels} channel(s) but {path} was trained on {in_channels}"
        )


def _samples(
    layout: DatasetLayout, split: str, *, val_fraction: float, seed: int
) -> tuple[Sample, ...]:
    """The split's samples; MissingSplitError (naming the splits there are) when it is empty."""
    try:
        return evaluation_samples(layout, split, val_fraction=val_fraction, seed=seed)
    except DatasetLayoutError as error:
        if split not in EVALUATION_SPLITS:
            raise
        available = []
        for other in EVALUATION_SPLITS:
            try:
                evaluation_samples(layout, other, val_fraction=val_fraction, seed=seed)
            except DatasetLayoutError:
                continue
            available.append(other)
        raise MissingSplitError(str(error), split, tuple(available)) from error


def evaluate_checkpoint(
    checkpoint_path: Path, dataset: Path, options: EvaluateOptions | None = None
) -> Evaluation:
    """Score `checkpoint_path` on one part of `dataset` with the validation metrics.

    The dataset layout is found with the checkpoint's `layout` and `mask_suffix`; "val" is the
    validation part training used (the dataset's own, or the same seeded random one). Metric
    keys start with the split's name (`metric_prefix`).

    Raises:
        CheckpointError: the checkpoint cannot be read.
        MissingSplitError: no such split (the message and `available` list those there are).
        DatasetLayoutError: no dataset.
        EvaluateError: the dataset's classes, channels or mask values do not fit the checkpoint.
    """
    options = options or EvaluateOptions()
    device = resolve_device(options.device)
    checkpoint, model = load_for_inference(checkpoint_path, device)
    cfg = checkpoint.config
    layout = discover_layout(
        dataset.expanduser(), layout=cfg.layout, mask_suffix=cfg.mask_suffix, include_test=True
    )
    _check_classes(layout, checkpoint, checkpoint_path)
    samples = _samples(layout, options.split, val_fraction=cfg.val_fraction, seed=cfg.seed)
    _check_channels(samples[0], checkpoint.in_channels, checkpoint_path)
    encoding = MaskEncoding.from_dict(checkpoint.mask_encoding)
    loader: DataLoader[tuple[torch.Tensor, torch.Tensor]] = DataLoader(
        SegmentationDataset(samples, encoding, image_size=cfg.image_size, scale=cfg.scale),
        batch_size=options.batch_size or cfg.batch_size,
        num_workers=options.num_workers,
        collate_fn=pad_collate,
        pin_memory=device.type == "cuda",
    )
    logger.info(
        "evaluating %s on %d images of the %s split of %s",
        checkpoint_path,
        len(samples),
        options.split,
        layout.root,
    )
    try:
        scored = score_set(
            model,
            loader,
            normalizer=InputNormalizer(cfg.normalization, checkpoint.in_channels, device),
            loss_fn=build_loss(cfg, len(checkpoint.class_names)).to(device),
            class_names=checkpoint.class_names,
            device=device,
            precision=resolve_precision(cfg.amp, device),
            flip_tta=options.flip_tta,
            prefix=metric_prefix(options.split),
            image_names=[sample.name for sample in samples],
        )
    except MaskValueError as error:
        raise EvaluateError(
            f"the masks of {layout.root} do not fit the classes of {checkpoint_path} "
            f"({', '.join(checkpoint.class_names)}): {error}"
        ) from error
    assert scored.images is not None  # image_names were given
    return Evaluation(
        checkpoint=checkpoint_path,
        epoch=checkpoint.state.epoch,
        dataset=layout.root,
        split=options.split,
        num_images=len(samples),
        flip_tta=options.flip_tta,
        class_names=checkpoint.class_names,
        metrics=scored.metrics,
        confusion=scored.confusion,
        images=scored.images,
    )
