"""From a batch of raw pixels to logits: on-device normalisation and flip test-time augmentation.

Shared by validation and `segtrack predict` so both see exactly what training saw.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.config import Normalization

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class InputNormalizer:
    """Turns (N, C, H, W) uint8 or [0, 1] float pixels into the model's float input on `device`.

    Loaders hand over uint8 so host-to-device copies are 4x smaller; the division and the
    optional ImageNet mean/std (first three channels; further channels keep mean 0.5, std 0.25)
    happen on the device.
    """

    def __init__(
        self,
        normalization: Normalization,
        in_channels: int,
        device: torch.device,
        *,
        channels_last: bool = False,
    ) -> None:
        mean = [0.0] * in_channels
        std = [1.0] * in_channels
        if normalization == "imagenet":
            for channel in range(in_channels):
                mean[channel] = IMAGENET_MEAN[channel] if channel < 3 else 0.5
                std[channel] = IMAGENET_STD[channel] if channel < 3 else 0.25
        self._mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self._std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self._device = device
        self._channels_last = channels_last

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self._device, non_blocking=True)
        pixels = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        pixels = (pixels - self._mean) / self._std
        if self._channels_last:
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        return pixels


def forward_logits(model: nn.Module, inputs: torch.Tensor, *, flip_tta: bool) -> torch.Tensor:
    """Logits (N, C, H, W) of `model` on normalised `inputs`.

    With `flip_tta`, the logits of the image and of its horizontal and vertical flips (flipped
    back) are averaged, as pytorch-semseg's validation does for horizontal flips.
    """
    logits: torch.Tensor = model(inputs)
    if not flip_tta:
        return logits
    for dims in ((3,), (2,)):
        flipped: torch.Tensor = model(torch.flip(inputs, dims))
        logits = logits + torch.flip(flipped, dims)
    return logits / 3.0
