"""One epoch's validation detail as the server holds it: the confusion matrix and every image's
pixel counts, with the scores derived from them.

The rules are the trainer's (`trainer.validation_detail`, which the server does not import):
per image and class TP, FP and FN over its labelled pixels; a class absent from both an image's
truth and its prediction has no IoU or Dice there; an image's IoU and Dice are the means over
its present foreground classes (classes 1..K-1), 1.0 when none is present.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Counts = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ValidationCounts:
    """N images, K classes.

    Attributes:
        epoch: the epoch validated.
        class_names: (K,) in index order.
        confusion: int64 (K, K), rows truth, columns prediction.
        names: (N,) the images' names, unique.
        true_positive: int64 (N, K); false_positive and false_negative alike.
    """

    epoch: int
    class_names: tuple[str, ...]
    confusion: Counts
    names: tuple[str, ...]
    true_positive: Counts
    false_positive: Counts
    false_negative: Counts

    def stacked(self) -> Counts:
        """int64 (3, N, K): TP, FP, FN."""
        return np.stack([self.true_positive, self.false_positive, self.false_negative])


@dataclass(frozen=True)
class ImageScores:
    """Scores of N images over K classes, from their counts."""

    true_positive: Counts
    false_positive: Counts
    false_negative: Counts

    @classmethod
    def of(cls, counts: Counts) -> ImageScores:
        """From int64 (3, N, K) TP, FP, FN."""
        return cls(counts[0], counts[1], counts[2])

    def present(self) -> npt.NDArray[np.bool_]:
        """bool (N, K): the class is in the image's truth or prediction."""
        return (self.true_positive + self.false_positive + self.false_negative) > 0

    def in_truth(self) -> npt.NDArray[np.bool_]:
        """bool (N, K): the class is in the image's truth."""
        return (self.true_positive + self.false_negative) > 0

    def iou(self) -> Scores:
        """float64 (N, K); NaN where the class is absent from the image."""
        union = self.true_positive + self.false_positive + self.false_negative
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, self.true_positive / union, np.nan)

    def dice(self) -> Scores:
        """float64 (N, K); NaN where the class is absent from the image."""
        total = 2 * self.true_positive + self.false_positive + self.false_negative
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, 2 * self.true_positive / total, np.nan)

    def image_iou(self) -> Scores:
        """float64 (N,): the mean over present foreground classes (1.0 when none)."""
        return foreground_mean(self.iou())

    def image_dice(self) -> Scores:
        return foreground_mean(self.dice())

    def pixels_wrong(self) -> Counts:
        """int64 (N,) labelled pixels predicted as another class."""
        wrong: Counts = self.false_negative.sum(axis=1)
        return wrong

    def pixels(self) -> Counts:
        """int64 (N,) labelled (not ignored) pixels."""
        labelled: Counts = (self.true_positive + self.false_negative).sum(axis=1)
        return labelled


def foreground_mean(per_class: Scores) -> Scores:
    """Mean over columns 1.. ignoring NaN; 1.0 for a row with no value."""
    foreground = per_class[:, 1:]
    counted = (~np.isnan(foreground)).sum(axis=1)
    total = np.nansum(foreground, axis=1)
    mean: Scores = np.where(counted > 0, total / np.maximum(counted, 1), 1.0)
    return mean
