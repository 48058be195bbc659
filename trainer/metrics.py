"""Validation metrics from one confusion matrix accumulated over the whole validation set.

Definitions (the README states the same):

- The confusion matrix M (C x C) counts pixels by truth (row) and prediction (column); pixels
  whose truth is IGNORE_INDEX are not counted. TP_c = M[c, c], FP_c = column sum - TP_c,
  FN_c = row sum - TP_c.
- A class is *present* when it occurs in the truth or in the prediction (row or column sum > 0).
  Absent classes get no per-class value (neither 0 nor NaN) and are left out of every mean.
- `iou/<name>` = TP / (TP + FP + FN); `dice/<name>` = 2 TP / (2 TP + FP + FN).
- `iou` and `dice`: mean over the present *foreground* classes (index >= 1); for binary
  segmentation that is the foreground class alone. When no foreground class is present (no
  foreground in truth nor prediction) truth and prediction agree perfectly, so both are 1.0.
- `miou`: mean IoU over all present classes, background included (1.0 when none is present).
- `pixel_acc`: correctly classified pixels / counted pixels (1.0 when no pixel was counted).
- `precision/<name>` = TP / (TP + FP), only for a class that was predicted somewhere (column
  sum > 0); `recall/<name>` = TP / (TP + FN), only for a class that occurs in the truth (row
  sum > 0). A class predicted but absent from the truth has precision 0 and no recall; one in
  the truth but never predicted has recall 0 and no precision.
- `f1/<name>` = 2 TP / (2 TP + FP + FN) for every present class: the harmonic mean of precision
  and recall, with a missing one counted as 0 (so 0 for a class only in the truth or only in
  the prediction). Over pixels it equals `dice/<name>`; both are kept under their usual names.

Keys carry a prefix, "val" by default: `val/iou`, `val/dice`, `val/miou`, `val/pixel_acc`,
`val/iou/<class name>`, `val/dice/<class name>`, `val/precision/<class name>`,
`val/recall/<class name>`, `val/f1/<class name>`.

The counts can also be kept per image (`ConfusionMatrix.update_per_image`): each image's
TP/FP/FN per class, which summed over the images give the matrix's exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from trainer.config import IGNORE_INDEX


def logits_to_classes(logits: Tensor) -> Tensor:
    """(N, C, H, W) logits -> int64 (N, H, W) classes: `logits > 0` when C == 1, else argmax."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)


def _mean(values: list[float]) -> float:
    """Mean of `values`; 1.0 for none, i.e. nothing that could disagree (see module doc)."""
    return sum(values) / len(values) if values else 1.0


class ConfusionMatrix:
    """Pixel confusion matrix accumulated on the device, read back once by `compute`.

    Args:
        num_classes: C, the number of classes including background.
        device: where the counts live; put it where the predictions are to avoid copies.
    """

    def __init__(self, num_classes: int, device: torch.device | str = "cpu"):
        if num_classes < 2:
            raise ValueError(f"a confusion matrix needs at least 2 classes, got {num_classes}")
        self.num_classes = num_classes
        # One spare bin at the end collects the ignored pixels, so no boolean indexing (which
        # would read the count back to the host) is needed to drop them.
        self._counts = torch.zeros(num_classes * num_classes + 1, dtype=torch.long, device=device)

    def reset(self) -> None:
        """Forget every counted pixel."""
        self._counts.zero_()

    @property
    def counts(self) -> Tensor:
        """The raw int64 counts (C * C cells, then the ignored pixels), updated in place.

        Summing them over processes that each counted part of a set gives the matrix of the
        whole set, exactly.
        """
        return self._counts

    @property
    def matrix(self) -> Tensor:
        """int64 (C, C) counts; rows are the truth, columns the prediction."""
        size = self.num_classes * self.num_classes
        return self._counts[:size].view(self.num_classes, self.num_classes)

    def update(self, prediction: Tensor, target: Tensor) -> None:
        """Count one batch: prediction and target are (N, H, W) class indices.

        Pixels whose target is IGNORE_INDEX are skipped. Runs on the counts' device without
        waiting for it.
        """
        if prediction.shape != target.shape:
            raise ValueError(
                f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ"
            )
        device = self._counts.device
        prediction = prediction.to(device, torch.long)
        target = target.to(device, torch.long)
        spare_bin = self.num_classes * self.num_classes
        index = torch.where(
            target == IGNORE_INDEX, spare_bin, target * self.num_classes + prediction
        ).reshape(-1)
        # scatter_add_ rather than bincount: bincount reads its input's maximum back to the
        # host on CUDA, and 1-D scatter_add_ is deterministic there.
        self._counts.scatter_add_(0, index, torch.ones_like(index))

    def update_per_image(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Count one batch as `update` does and return each image's counts.

        One scatter over the batch fills a confusion matrix per image (image n's cells at
        offset n * (C * C + 1)); the set's matrix is their sum, so the two always agree.
        Nothing is read back to the host.

        Returns:
            int64 (N, 3, C) on the counts' device: per image and class TP, FP and FN.
        """
        if prediction.shape != target.shape:
            raise ValueError(
                f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ"
            )
        device = self._counts.device
        classes = self.num_classes
        cells = classes * classes + 1
        images = prediction.shape[0]
        prediction = prediction.to(device, torch.long).reshape(images, -1)
        target = target.to(device, torch.long).reshape(images, -1)
        cell = torch.where(target == IGNORE_INDEX, cells - 1, target * classes + prediction)
        index = (cell + torch.arange(images, device=device)[:, None] * cells).reshape(-1)
        per_image = torch.zeros(images * cells, dtype=torch.long, device=device)
        per_image.scatter_add_(0, index, torch.ones_like(index))
        per_image = per_image.view(images, cells)
        self._counts += per_image.sum(dim=0)
        matrices = per_image[:, : cells - 1].view(images, classes, classes)
        true_positive = matrices.diagonal(dim1=1, dim2=2)
        false_positive = matrices.sum(dim=1) - true_positive
        false_negative = matrices.sum(dim=2) - true_positive
        return torch.stack([true_positive, false_positive, false_negative], dim=1)

    def compute(self, class_names: Sequence[str], prefix: str = "val") -> dict[str, float]:
        """The metrics of the module docstring as plain floats, keyed `<prefix>/...`.

        Args:
            class_names: one name per class, in index order (index 0 is the background).
            prefix: first part of every key.
        """
        if len(class_names) != self.num_classes:
            raise ValueError(f"got {len(class_names)} class names for {self.num_classes} classes")
        matrix = self.matrix.cpu().double()  # the one read-back from the device
        true_positive = matrix.diagonal()
        truth = matrix.sum(dim=1)
        predicted = matrix.sum(dim=0)
        union = truth + predicted - true_positive
        iou = (true_positive / union.clamp_min(1)).tolist()
        dice = (2 * true_positive / (truth + predicted).clamp_min(1)).tolist()
        precision = (true_positive / predicted.clamp_min(1)).tolist()
        recall = (true_positive / truth.clamp_min(1)).tolist()
        was_predicted = (predicted > 0).tolist()
        in_truth = (truth > 0).tolist()
        present = (union > 0).tolist()
        counted = float(truth.sum())
        correct = float(true_positive.sum())

        metrics: dict[str, float] = {}
        for index, name in enumerate(class_names):
            if present[index]:
                metrics[f"{prefix}/iou/{name}"] = iou[index]
                metrics[f"{prefix}/dice/{name}"] = dice[index]
                metrics[f"{prefix}/f1/{name}"] = dice[index]
            if was_predicted[index]:
                metrics[f"{prefix}/precision/{name}"] = precision[index]
            if in_truth[index]:
                metrics[f"{prefix}/recall/{name}"] = recall[index]
        foreground = [index for index in range(1, self.num_classes) if present[index]]
        metrics[f"{prefix}/iou"] = _mean([iou[index] for index in foreground])
        metrics[f"{prefix}/dice"] = _mean([dice[index] for index in foreground])
        metrics[f"{prefix}/miou"] = _mean(
            [iou[index] for index in range(self.num_classes) if present[index]]
        )
        metrics[f"{prefix}/pixel_acc"] = correct / counted if counted else 1.0
        return metrics
