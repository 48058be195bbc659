"""The validation images whose predictions are reported every epoch.

Three kinds, each sample saying which apply (`PreviewSample.reasons`):
- the fixed set, chosen once at the start, so the dashboard's epoch slider shows the same images
  improving; their inputs are loaded once and kept, so each epoch costs one small forward pass;
- this epoch's worst images by the monitored score (`preview_worst`), from the validation that
  scored every image;
- the images a user pinned (`Reporter.pinned_images`, read once per epoch).
An image that is several of these is previewed once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.utils.data import Dataset

from trainer.inference import InputNormalizer, forward_logits
from trainer.metrics import logits_to_classes
from trainer.reporting import PREVIEW_REASONS, PreviewReason, PreviewSample
from trainer.validation_detail import ImageCounts, Scores

EXTRA_CACHE = 64
"""Inputs of worst or pinned images kept between epochs, at most (the fixed set's always are)."""

Choice = tuple[int, tuple[PreviewReason, ...]]
"""A validation image's position in the set and why it is previewed."""


def displayable(image: torch.Tensor) -> npt.NDArray[np.uint8]:
    """(C, H, W) uint8 or [0, 1] float pixels -> uint8 (H, W) or (H, W, 3) for display.

    One channel stays grey; two channels show the first as grey; four or more show the first
    three as RGB (e.g. RGB + near-infrared).
    """
    pixels = image if image.dtype == torch.uint8 else (image.clamp(0, 1) * 255).round().byte()
    if pixels.shape[0] < 3:
        return pixels[0].cpu().numpy()
    return pixels[:3].permute(1, 2, 0).contiguous().cpu().numpy()


def monitored_scores(images: ImageCounts, monitor: str, class_names: Sequence[str]) -> Scores:
    """float64 (N,) each image's score for `monitor`, higher is better; NaN where the image
    has none.

    `val/dice` ranks by each image's Dice; `val/iou/<class>` and `val/dice/<class>` by that
    class's IoU or Dice in the image (NaN where the class is in neither its truth nor its
    prediction); any other monitor (`val/iou`, `val/miou`, `val/loss`, ...) by the image's IoU.
    """
    for kind in ("iou", "dice"):
        prefix = f"val/{kind}/"
        if monitor.startswith(prefix) and monitor[len(prefix) :] in class_names:
            column = list(class_names).index(monitor[len(prefix) :])
            per_class = images.iou() if kind == "iou" else images.dice()
            scores: Scores = per_class[:, column]
            return scores
    return images.image_dice() if monitor == "val/dice" else images.image_iou()


def worst_images(
    images: ImageCounts, monitor: str, class_names: Sequence[str], count: int
) -> list[int]:
    """The positions of the `count` lowest-scoring images for `monitor` (`monitored_scores`),
    worst first; ties go to the image with more pixels wrong, then to set order. Images without
    a score are never among them."""
    if count <= 0 or not images.names:
        return []
    scores = monitored_scores(images, monitor, class_names)
    order = np.lexsort((np.arange(len(scores)), -images.pixels_wrong(), scores))
    return [int(i) for i in order if not np.isnan(scores[i])][:count]


def choose_previews(
    fixed: Sequence[int], *, pinned: Sequence[int], worst: Sequence[int], num_val: int
) -> list[Choice]:
    """The images to preview, each once: the fixed set in its order, then pinned images, then
    the worst ones; each with every reason that applies (in PREVIEW_REASONS order). Positions
    outside the set (a pin of another set) are left out."""
    reasons: dict[int, set[PreviewReason]] = {}
    groups: tuple[tuple[PreviewReason, Sequence[int]], ...] = (
        ("fixed", fixed),
        ("pinned", pinned),
        ("worst", worst),
    )
    for reason, indices in groups:
        for index in indices:
            if 0 <= index < num_val:
                reasons.setdefault(index, set()).add(reason)
    return [
        (index, tuple(reason for reason in PREVIEW_REASONS if reason in why))
        for index, why in reasons.items()
    ]


@dataclass
class PreviewSet:
    """The fixed preview samples (inputs and truths kept), and the set they come from.

    Attributes:
        dataset: the validation set; worst and pinned images are read from it when chosen.
        names: (N,) every validation image's name, in set order.
        indices: the fixed set's positions.
    """

    dataset: Dataset[tuple[torch.Tensor, torch.Tensor]]
    names: tuple[str, ...]
    indices: tuple[int, ...]
    _kept: dict[int, tuple[torch.Tensor, npt.NDArray[np.uint8]]] = field(default_factory=dict)
    _extra: dict[int, tuple[torch.Tensor, npt.NDArray[np.uint8]]] = field(default_factory=dict)

    @classmethod
    def from_dataset(
        cls,
        dataset: Dataset[tuple[torch.Tensor, torch.Tensor]],
        indices: Sequence[int],
        names: Sequence[str],
    ) -> PreviewSet:
        previews = cls(dataset, tuple(names), tuple(indices))
        for index in indices:
            previews._kept[index] = previews._load(index)
        return previews

    def _load(self, index: int) -> tuple[torch.Tensor, npt.NDArray[np.uint8]]:
        image, mask = self.dataset[index]
        return image, mask.numpy().astype(np.uint8)

    def _sample_input(self, index: int) -> tuple[torch.Tensor, npt.NDArray[np.uint8]]:
        """A chosen image's input and truth: kept for the fixed set, cached for a while else
        (the worst images change slowly, pins not at all)."""
        if index in self._kept:
            return self._kept[index]
        if index not in self._extra:
            if len(self._extra) >= EXTRA_CACHE:
                self._extra.pop(next(iter(self._extra)))
            self._extra[index] = self._load(index)
        return self._extra[index]

    def choose(self, *, pinned: Sequence[int] = (), worst: Sequence[int] = ()) -> list[Choice]:
        """`choose_previews` of this set."""
        return choose_previews(self.indices, pinned=pinned, worst=worst, num_val=len(self.names))

    @torch.inference_mode()
    def predict(
        self,
        model: nn.Module,
        normalizer: InputNormalizer,
        *,
        flip_tta: bool,
        chosen: Sequence[Choice] | None = None,
    ) -> list[PreviewSample]:
        """Predict the `chosen` images (default: the fixed set), one at a time (sizes may
        differ)."""
        if chosen is None:
            chosen = self.choose()
        was_training = model.training
        model.eval()
        samples = []
        for index, reasons in chosen:
            image, truth = self._sample_input(index)
            logits = forward_logits(model, normalizer(image.unsqueeze(0)), flip_tta=flip_tta)
            prediction = logits_to_classes(logits.float())[0].to(torch.uint8).cpu().numpy()
            samples.append(
                PreviewSample(
                    index, self.names[index], displayable(image), truth, prediction, reasons
                )
            )
        model.train(was_training)
        return samples
