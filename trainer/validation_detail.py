"""What one epoch's validation saw, beyond its metrics: the confusion matrix and every image's
pixel counts, reported to `Reporter.on_validation_detail` after `on_epoch_end`.

Per image and class the counts are those of `trainer.metrics` restricted to that image's
labelled pixels: TP = truth c and prediction c, FP = prediction c but truth not c, FN = truth c
but prediction not c. Summed over the images they give the confusion matrix's diagonal, column
sums minus diagonal and row sums minus diagonal exactly, so per-image scores and the dataset's
metrics can never disagree. Scores follow the same rules as the dataset's: a class absent from
both an image's truth and its prediction has no IoU or Dice for that image; an image's `iou` is
the mean over its present foreground classes (1.0 when none is present).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Counts = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ImageCounts:
    """Pixel counts of every validation image, in validation-set order (N images, K classes).

    Attributes:
        names: (N,) each image's name (its file stem), unique within the set.
        true_positive: int64 (N, K).
        false_positive: int64 (N, K).
        false_negative: int64 (N, K).
    """

    names: tuple[str, ...]
    true_positive: Counts
    false_positive: Counts
    false_negative: Counts

    def present(self) -> npt.NDArray[np.bool_]:
        """bool (N, K): the class occurs in the image's truth or prediction."""
        return (self.true_positive + self.false_positive + self.false_negative) > 0

    def in_truth(self) -> npt.NDArray[np.bool_]:
        """bool (N, K): the class occurs in the image's truth."""
        return (self.true_positive + self.false_negative) > 0

    def iou(self) -> Scores:
        """float64 (N, K) per-class IoU; NaN where the class is absent from the image."""
        union = self.true_positive + self.false_positive + self.false_negative
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, self.true_positive / union, np.nan)

    def dice(self) -> Scores:
        """float64 (N, K) per-class Dice; NaN where the class is absent from the image."""
        total = 2 * self.true_positive + self.false_positive + self.false_negative
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, 2 * self.true_positive / total, np.nan)

    def pixels_wrong(self) -> Counts:
        """int64 (N,) labelled pixels whose prediction is not their truth."""
        wrong: Counts = self.false_negative.sum(axis=1)
        return wrong

    def pixels(self) -> Counts:
        """int64 (N,) labelled (not ignored) pixels."""
        labelled: Counts = (self.true_positive + self.false_negative).sum(axis=1)
        return labelled

    def image_iou(self) -> Scores:
        """float64 (N,) each image's IoU: the mean over its present foreground classes."""
        return _foreground_mean(self.iou())

    def image_dice(self) -> Scores:
        """float64 (N,) each image's Dice: the mean over its present foreground classes."""
        return _foreground_mean(self.dice())

    def worst_first(self) -> npt.NDArray[np.int64]:
        """int64 (N,) image positions from the lowest image IoU up; ties go to the image with
        more pixels wrong, then to set order."""
        order: npt.NDArray[np.int64] = np.lexsort(
            (np.arange(len(self.names)), -self.pixels_wrong(), self.image_iou())
        ).astype(np.int64)
        return order


def _foreground_mean(per_class: Scores) -> Scores:
    """Mean over columns 1.. ignoring NaN; 1.0 for a row with no value (nothing to disagree)."""
    foreground = per_class[:, 1:]
    counted = (~np.isnan(foreground)).sum(axis=1)
    total = np.nansum(foreground, axis=1)
    return np.where(counted > 0, total / np.maximum(counted, 1), 1.0)


@dataclass(frozen=True)
class ValidationDetail:
    """One epoch's validation: the confusion matrix and the counts of every image.

    Attributes:
        epoch: the epoch whose validation this is (as in `on_epoch_end`).
        class_names: (K,) in index order.
        confusion: int64 (K, K) pixels by truth (row) and prediction (column) over the set.
        images: every image's counts; summed over images they match `confusion` exactly.
    """

    epoch: int
    class_names: tuple[str, ...]
    confusion: Counts
    images: ImageCounts
