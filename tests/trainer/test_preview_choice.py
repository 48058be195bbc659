"""Which validation images are previewed: the fixed set, the epoch's worst by the monitored
score and the pinned ones, each once with every reason that applies; and a real training's
previews following them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tests.trainer.factories import tiny_config
from trainer.loop import fit
from trainer.previews import choose_previews, monitored_scores, worst_images
from trainer.reporting import NullReporter, PreviewSample
from trainer.validation_detail import ImageCounts

CLASSES = ("background", "road", "car")


def designed_counts() -> ImageCounts:
    """Six images of three classes with known scores (background column 0 is never scored):

    image  road IoU  car IoU   image IoU (mean)  pixels wrong
    a      1.0       1.0       1.0               0
    b      0.5       (absent)  0.5               10
    c      0.2       0.8       0.5               60   (ties with b on IoU, more pixels wrong)
    d      0.1       (absent)  0.1               90
    e      (absent)  (absent)  1.0 (nothing)     0
    f      0.4       0.0       0.2               70   (predicts car on 10 background pixels)
    """
    names = ("a", "b", "c", "d", "e", "f")
    tp = np.zeros((6, 3), np.int64)
    fp = np.zeros((6, 3), np.int64)
    fn = np.zeros((6, 3), np.int64)
    tp[:, 0] = 100
    # road: IoU = tp / (tp + fp + fn); the misses are truth road predicted background.
    tp[:, 1], fn[:, 1] = [10, 10, 10, 10, 0, 40], [0, 10, 40, 90, 0, 60]
    # car: c has IoU 0.8 (20 of truth car predicted background), f predicts car on background.
    tp[0, 2], tp[2, 2], fn[2, 2] = 5, 80, 20
    fp[5, 2], fn[5, 0] = 10, 10
    return ImageCounts(names, tp, fp, fn)


def test_the_worst_images_by_image_iou_ties_to_more_pixels_wrong() -> None:
    counts = designed_counts()
    assert list(np.round(counts.image_iou(), 3)) == [1.0, 0.5, 0.5, 0.1, 1.0, 0.2]
    assert worst_images(counts, "val/iou", CLASSES, 3) == [3, 5, 2]
    assert worst_images(counts, "val/loss", CLASSES, 4) == [3, 5, 2, 1]
    assert worst_images(counts, "val/iou", CLASSES, 0) == []
    assert worst_images(counts, "val/iou", CLASSES, 50) == [3, 5, 2, 1, 0, 4]


def test_a_per_class_monitor_ranks_by_that_class_and_skips_images_without_it() -> None:
    counts = designed_counts()
    car = monitored_scores(counts, "val/iou/car", CLASSES)
    assert np.isnan(car[1]) and np.isnan(car[3]) and np.isnan(car[4])
    assert worst_images(counts, "val/iou/car", CLASSES, 5) == [5, 2, 0]
    assert worst_images(counts, "val/iou/road", CLASSES, 2) == [3, 2]
    assert worst_images(counts, "val/dice", CLASSES, 1) == [3]


def test_choice_keeps_each_image_once_with_every_reason() -> None:
    chosen = choose_previews([4, 0], pinned=[0, 2, 99, -1], worst=[3, 2, 4], num_val=6)
    assert chosen == [
        (4, ("fixed", "worst")),
        (0, ("fixed", "pinned")),
        (2, ("pinned", "worst")),
        (3, ("worst",)),
    ]
    assert choose_previews([1], pinned=[], worst=[], num_val=6) == [(1, ("fixed",))]


class PinsAfterEpoch(NullReporter):
    """Pins `pins` once epoch 1 is reported; records every epoch's previews."""

    def __init__(self, pins: Sequence[int]) -> None:
        self.pins: tuple[int, ...] = ()
        self.later = tuple(pins)
        self.previews: dict[int, list[PreviewSample]] = {}

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        if epoch == 1:
            self.pins = self.later

    def pinned_images(self) -> Sequence[int]:
        return self.pins

    def on_preview(self, epoch: int, samples: Sequence[PreviewSample]) -> None:
        self.previews[epoch] = list(samples)


def test_training_previews_the_fixed_the_worst_and_the_pinned(
    demo_dataset: Path, tmp_path: Path
) -> None:
    reporter = PinsAfterEpoch([0])
    cfg = tiny_config(demo_dataset, preview_count=1, preview_worst=2, val_fraction=0.5)
    fit(cfg, reporter, out_dir=tmp_path)
    first, second = reporter.previews[1], reporter.previews[2]
    assert first[0].reasons[0] == "fixed" and second[0].index == first[0].index
    for samples in (first, second):
        indices = [sample.index for sample in samples]
        assert len(indices) == len(set(indices)), "no image twice"
        assert sum("worst" in sample.reasons for sample in samples) == 2
    assert not any("pinned" in sample.reasons for sample in first)
    pinned = [sample for sample in second if "pinned" in sample.reasons]
    assert [sample.index for sample in pinned] == [0]
    assert pinned[0].prediction.shape == pinned[0].truth.shape
