"""A fixed set of validation images whose predictions are reported every epoch.

The set is chosen once at the start, so the dashboard's epoch slider shows the same images
improving; the inputs are loaded once and kept, so each epoch costs one small forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.utils.data import Dataset

from trainer.inference import InputNormalizer, forward_logits
from trainer.metrics import logits_to_classes
from trainer.reporting import PreviewSample


def displayable(image: torch.Tensor) -> npt.NDArray[np.uint8]:
    """(C, H, W) uint8 or [0, 1] float pixels -> uint8 (H, W) or (H, W, 3) for display.

    One channel stays grey; two channels show the first as grey; four or more show the first
    three as RGB (e.g. RGB + near-infrared).
    """
    pixels = image if image.dtype == torch.uint8 else (image.clamp(0, 1) * 255).round().byte()
    if pixels.shape[0] < 3:
        return pixels[0].cpu().numpy()
    return pixels[:3].permute(1, 2, 0).contiguous().cpu().numpy()


@dataclass(frozen=True)
class PreviewSet:
    """The preview samples: their indices, names, inputs and truths."""

    indices: tuple[int, ...]
    names: tuple[str, ...]
    images: tuple[torch.Tensor, ...]
    truths: tuple[npt.NDArray[np.uint8], ...]

    @classmethod
    def from_dataset(
        cls,
        dataset: Dataset[tuple[torch.Tensor, torch.Tensor]],
        indices: Sequence[int],
        names: Sequence[str],
    ) -> PreviewSet:
        images, truths = [], []
        for index in indices:
            image, mask = dataset[index]
            images.append(image)
            truths.append(mask.numpy().astype(np.uint8))
        return cls(tuple(indices), tuple(names[i] for i in indices), tuple(images), tuple(truths))

    @torch.inference_mode()
    def predict(
        self, model: nn.Module, normalizer: InputNormalizer, *, flip_tta: bool
    ) -> list[PreviewSample]:
        """Predict every preview image, one at a time (sizes may differ)."""
        was_training = model.training
        model.eval()
        samples = []
        for index, name, image, truth in zip(
            self.indices, self.names, self.images, self.truths, strict=True
        ):
            logits = forward_logits(model, normalizer(image.unsqueeze(0)), flip_tta=flip_tta)
            prediction = logits_to_classes(logits.float())[0].to(torch.uint8).cpu().numpy()
            samples.append(PreviewSample(index, name, displayable(image), truth, prediction))
        model.train(was_training)
        return samples
