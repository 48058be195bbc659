"""Segmentation losses behind one registry: ce, bce, dice, ce+dice, bce+dice, focal, lovasz.

Every loss takes logits (N, C, H, W) and int64 class indices (N, H, W) in which IGNORE_INDEX
marks pixels that count nowhere. C is `output_channels(loss, num_classes)`: one sigmoid channel
for the "bce" losses, one channel per class otherwise. A sequence of logits (deep supervision)
gives the mean of the loss over its items.

All arithmetic runs in float32 with autocast disabled, so fp16/bf16 logits are safe, and no loss
reads a value back to the host, so a training step never waits for the device.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainer.config import IGNORE_INDEX, LOSS_NAMES, TrainConfig

BINARY_LOSSES: tuple[str, ...] = ("bce", "bce+dice")
"""Losses with a single sigmoid output channel; they need exactly two classes."""

DICE_EPS = 1e-6
"""Smoothing term of the soft Dice; it only matters when a class has (almost) no pixels."""


class UnknownLossError(ValueError):
    """A loss name that is not registered; the message lists the registered names."""


def output_channels(loss: str, num_classes: int) -> int:
    """Logit channels the model needs for `loss`: 1 for the binary losses, else num_classes.

    Raises:
        ValueError: a binary loss with num_classes != 2.
    """
    if loss in BINARY_LOSSES:
        if num_classes != 2:
            multi_class = ", ".join(name for name in LOSS_NAMES if name not in BINARY_LOSSES)
            raise ValueError(
                f"loss {loss!r} is binary (one sigmoid output) and needs 2 classes, got "
                f"{num_classes}; use one of {multi_class} for more classes"
            )
        return 1
    return num_classes


def _valid_and_target(target: Tensor) -> tuple[Tensor, Tensor]:
    """(N, H, W) -> (bool mask of counted pixels, target with ignored pixels set to class 0)."""
    valid = target != IGNORE_INDEX
    return valid, torch.where(valid, target, 0).long()


def _one_hot(indices: Tensor, classes: int, valid: Tensor) -> Tensor:
    """(N, H, W) class indices -> bool (N, classes, H, W), all False at pixels not `valid`."""
    class_range = torch.arange(classes, device=indices.device).view(1, classes, 1, 1)
    return (indices.unsqueeze(1) == class_range) & valid.unsqueeze(1)


def _pixel_weights(valid: Tensor, target: Tensor, class_weights: Tensor | None) -> Tensor:
    """(N, H, W) float weight of every pixel: its class weight (or 1), 0 where not `valid`."""
    if class_weights is None:
        return valid.float()
    return class_weights.to(target.device)[target] * valid


def _weighted_mean(values: Tensor, weights: Tensor) -> Tensor:
    """sum(values * weights) / sum(weights); 0 rather than NaN when every weight is 0."""
    return (values * weights).sum() / weights.sum().clamp_min(torch.finfo(weights.dtype).tiny)


def _weights_tensor(class_weights: Sequence[float] | None) -> Tensor | None:
    return None if class_weights is None else torch.tensor(class_weights, dtype=torch.float)


def _class_probabilities(logits: Tensor) -> Tensor:
    """(N, C, H, W) logits -> (N, K, H, W) probabilities: softmax, or [1 - p, p] for C == 1."""
    if logits.shape[1] == 1:
        foreground = torch.sigmoid(logits)
        return torch.cat([1 - foreground, foreground], dim=1)
    return logits.softmax(dim=1)


class SegmentationLoss(nn.Module, ABC):
    """Base class: float32 maths, deep-supervision averaging; subclasses implement `compute`."""

    def forward(self, logits: Tensor | Sequence[Tensor], target: Tensor) -> Tensor:
        """Scalar loss of logits (N, C, H, W) (or a sequence of them) against target (N, H, W)."""
        outputs = [logits] if isinstance(logits, Tensor) else list(logits)
        with torch.autocast(device_type=outputs[0].device.type, enabled=False):
            losses = [self.compute(output.float(), target) for output in outputs]
        return losses[0] if len(losses) == 1 else torch.stack(losses).mean()

    @abstractmethod
    def compute(self, logits: Tensor, target: Tensor) -> Tensor:
        """The loss of one float32 output (N, C, H, W) against target (N, H, W)."""


class CrossEntropyLoss(SegmentationLoss):
    """Softmax cross-entropy averaged over counted pixels.

    With class weights w it is sum(w_y * -log p_y) / sum(w_y), the value of torch's
    `F.cross_entropy(weight=w, ignore_index=IGNORE_INDEX)`, except that a batch without any
    counted pixel gives 0 instead of NaN.
    """

    def __init__(self, class_weights: Sequence[float] | None = None):
        super().__init__()
        self.weight: Tensor | None
        self.register_buffer("weight", _weights_tensor(class_weights))

    def compute(self, logits: Tensor, target: Tensor) -> Tensor:
        valid, safe_target = _valid_and_target(target)
        # Unweighted per-pixel terms and our own weighted mean: the same value as torch's
        # reduction, but 0 for an all-ignored batch and deterministic on CUDA.
        per_pixel = F.cross_entropy(logits, safe_target, reduction="none")
        return _weighted_mean(per_pixel, _pixel_weights(valid, safe_target, self.weight))


class FocalLoss(SegmentationLoss):
    """Multi-class focal loss (Lin et al., 2017): -alpha_y * (1 - p_y)**gamma * log p_y.

    Averaged like `CrossEntropyLoss` (divided by the summed alpha of counted pixels), so with
    gamma = 0 it equals the (weighted) cross-entropy. `class_weights` are the alphas.
    """

    def __init__(self, gamma: float = 2.0, class_weights: Sequence[float] | None = None):
        super().__init__()
        self.gamma = gamma
        self.alpha: Tensor | None
        self.register_buffer("alpha", _weights_tensor(class_weights))

    def compute(self, logits: Tensor, target: Tensor) -> Tensor:
        valid, safe_target = _valid_and_target(target)
        log_p = logits.log_softmax(dim=1).gather(1, safe_target.unsqueeze(1)).squeeze(1)
        # The floor keeps the gradient of x**gamma finite for gamma < 1 at p == 1.
        modulation = (1 - log_p.exp()).clamp_min(1e-12) ** self.gamma
        return _weighted_mean(-modulation * log_p, _pixel_weights(valid, safe_target, self.alpha))


class BinaryCrossEntropyLoss(SegmentationLoss):
    """BCE-with-logits on a single channel (N, 1, H, W); class 1 is the positive class.

    `class_weights` [w0, w1] become `pos_weight = w1 / w0`. Mean over counted pixels.
    """

    def __init__(self, class_weights: Sequence[float] | None = None):
        super().__init__()
        if class_weights is not None and (len(class_weights) != 2 or class_weights[0] <= 0):
            raise ValueError(
                f"binary class_weights must be [background, foreground] with a positive "
                f"background weight, got {list(class_weights)}"
            )
        pos_weight = (
            None
            if class_weights is None
            else torch.tensor([class_weights[1] / class_weights[0]], dtype=torch.float)
        )
        self.pos_weight: Tensor | None
        self.register_buffer("pos_weight", pos_weight)

    def compute(self, logits: Tensor, target: Tensor) -> Tensor:
        valid = target != IGNORE_INDEX
        pos_weight = None if self.pos_weight is None else self.pos_weight.to(logits.device)
        per_pixel = F.binary_cross_entropy_with_logits(
            logits[:, 0], (target == 1).float(), pos_weight=pos_weight, reduction="none"
        )
        return _weighted_mean(per_pixel, valid.float())


class DiceLoss(SegmentationLoss):
    """Soft Dice loss over the foreground classes, pooled over the batch.

    With probabilities p (softmax, or sigmoid for one channel where the sigmoid is class 1's
    probability), one-hot truth g and counted pixels only, for every foreground class c >= 1:

        dice_c = (2 * sum(p_c * g_c) + eps) / (sum(p_c) + sum(g_c) + eps),   eps = DICE_EPS

    A class is *present* when it occurs in the truth or in the hard prediction (argmax, or
    sigmoid > 0.5) of a counted pixel. The loss is mean(1 - dice_c) over present foreground
    classes, and 0 when none is present (no foreground anywhere, none predicted). Background is
    left out, like `val/dice`: on images that are mostly background it would dominate the mean.
    """

    def compute(self, logits: Tensor, target: Tensor) -> Tensor:
        valid, safe_target = _valid_and_target(target)
        probabilities = _class_probabilities(logits)
        classes = probabilities.shape[1]
        truth = _one_hot(safe_target, classes, valid)
        predicted = _one_hot(probabilities.argmax(dim=1), classes, valid)
        probabilities = probabilities * valid.unsqueeze(1)
        dims = (0, 2, 3)
        truth_count = truth.sum(dims)
        intersection = (probabilities * truth).sum(dims)
        dice = (2 * intersection + DICE_EPS) / (probabilities.sum(dims) + truth_count + DICE_EPS)
        present = (truth_count + predicted.sum(dims)) > 0
        return _weighted_mean(1 - dice[1:], present[1:].float())


class WeightedSumLoss(SegmentationLoss):
    """`first + weight * second`, e.g. cross-entropy + dice_weight * Dice."""

    def __init__(self, first: SegmentationLoss, second: SegmentationLoss, weight: float):
        super().__init__()
        self.first = first
        self.second = second
        self.weight = weight

    def compute(self, logits: Tensor, target: Tensor) -> Tensor:
        return self.first.compute(logits, target) + self.weight * self.second.compute(
            logits, target
        )


def _lovasz_gradient(sorted_truth: Tensor) -> Tensor:
    """Gradient of the Lovász extension of the Jaccard loss at sorted errors.

    `sorted_truth` (K, P): per row, the 0/1 membership of each pixel in the class, ordered by
    decreasing error. Entry i is J(first i+1 pixels) - J(first i pixels), where J is the Jaccard
    loss 1 - |truth minus errors| / |truth or errors| when the first pixels are the errors.
    """
    total = sorted_truth.sum(dim=1, keepdim=True)
    intersection = total - sorted_truth.cumsum(dim=1)
    union = total + (1 - sorted_truth).cumsum(dim=1)
    jaccard = 1 - intersection / union
    return torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], dim=1)


def _lovasz(errors: Tensor, truth: Tensor) -> Tensor:
    """Per-row Lovász extension <sorted errors, gradient>: errors and truth (K, P) -> (K,)."""
    sorted_errors, order = errors.sort(dim=1, descending=True)
    return (sorted_errors * _lovasz_gradient(truth.gather(1, order))).sum(dim=1)


class LovaszLoss(SegmentationLoss):
    """Lovász-Softmax (Berman et al., 2018), a convex surrogate of the Jaccard (IoU) loss.

    C > 1: per class c, errors |g_c - p_c| from the softmax; the loss is the mean over classes
    present in the truth of the Lovász extension of the Jaccard loss at those errors (pixels of
    the whole batch pooled). C == 1: the Lovász hinge, errors relu(1 - s * logit) with s = +-1.
    Ignored pixels get the lowest possible error, 0: they sort after every pixel with a
    positive error and, multiplied by 0, add nothing, so no boolean indexing (a host sync) is
    needed to drop them.
    """

    def compute(self, logits: Tensor, target: Tensor) -> Tensor:
        valid, safe_target = _valid_and_target(target)
        if logits.shape[1] == 1:
            truth = (safe_target == 1).float().reshape(1, -1)
            signs = 2 * truth - 1
            errors = F.relu(1 - logits.reshape(1, -1) * signs) * valid.reshape(1, -1)
            return _lovasz(errors, truth)[0]
        classes = logits.shape[1]
        probabilities = logits.softmax(dim=1).transpose(0, 1).reshape(classes, -1)
        truth = _one_hot(safe_target, classes, valid).transpose(0, 1).reshape(classes, -1).float()
        errors = (truth - probabilities).abs() * valid.reshape(1, -1)
        present = truth.sum(dim=1) > 0
        return _weighted_mean(_lovasz(errors, truth), present.float())


def _class_weights(cfg: TrainConfig, num_classes: int) -> list[float] | None:
    weights = cfg.class_weights
    if weights is not None and len(weights) != num_classes:
        raise ValueError(
            f"class_weights has {len(weights)} entries but there are {num_classes} classes"
        )
    return weights


def _cross_entropy(cfg: TrainConfig, num_classes: int) -> SegmentationLoss:
    return CrossEntropyLoss(_class_weights(cfg, num_classes))


def _binary_cross_entropy(cfg: TrainConfig, num_classes: int) -> SegmentationLoss:
    return BinaryCrossEntropyLoss(_class_weights(cfg, num_classes))


LOSS_BUILDERS: Mapping[str, Callable[[TrainConfig, int], SegmentationLoss]] = {
    "ce": _cross_entropy,
    "bce": _binary_cross_entropy,
    "dice": lambda cfg, num_classes: DiceLoss(),
    "ce+dice": lambda cfg, num_classes: WeightedSumLoss(
        _cross_entropy(cfg, num_classes), DiceLoss(), cfg.dice_weight
    ),
    "bce+dice": lambda cfg, num_classes: WeightedSumLoss(
        _binary_cross_entropy(cfg, num_classes), DiceLoss(), cfg.dice_weight
    ),
    "focal": lambda cfg, num_classes: FocalLoss(cfg.focal_gamma, _class_weights(cfg, num_classes)),
    "lovasz": lambda cfg, num_classes: LovaszLoss(),
}
"""Loss constructors by name, from the config and the number of classes."""


def build_loss(cfg: TrainConfig, num_classes: int) -> SegmentationLoss:
    """The loss `cfg.loss` for `num_classes` classes (including background).

    Raises:
        UnknownLossError: `cfg.loss` is not registered.
        ValueError: a binary loss with num_classes != 2, or class_weights of the wrong length.
    """
    builder = LOSS_BUILDERS.get(cfg.loss)
    if builder is None:
        raise UnknownLossError(
            f"unknown loss {cfg.loss!r}; registered losses are {', '.join(LOSS_BUILDERS)}"
        )
    output_channels(cfg.loss, num_classes)  # raises for a binary loss with more classes
    return builder(cfg, num_classes)
