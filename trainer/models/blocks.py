"""Building blocks shared by the UNet family: convolutions, up-sampling and size handling.

Every model pads its input up to a multiple of its stride with `pad_to_multiple` and crops the
logits back with `crop_to`, so any input size works and every skip connection lines up exactly.
The padding amounts come from tensor shapes only, which keeps the models traceable (TorchScript,
ONNX with dynamic height and width) and friendly to `torch.compile`.
"""

from __future__ import annotations

from typing import get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainer.config import Upsampling

UPSAMPLING_MODES: tuple[str, ...] = get_args(Upsampling)


def check_upsampling(mode: str) -> None:
    """Raise ValueError naming the allowed modes when `mode` is not one of them."""
    if mode not in UPSAMPLING_MODES:
        raise ValueError(
            f"unknown upsampling {mode!r}; allowed values are {', '.join(UPSAMPLING_MODES)}"
        )


def check_positive(**values: int) -> None:
    """Raise ValueError for the first of `values` (e.g. depth=0) that is not a positive int."""
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}")


def _reflect_indices(size: int, padded: int, device: torch.device) -> Tensor:
    """Indices 0..padded-1 folded back into 0..size-1 by mirroring at the borders.

    Equals reflect padding wherever `F.pad(mode="reflect")` works (padding < size) and keeps
    mirroring periodically when the padding is larger than the image, which `F.pad` refuses.
    `size` is a tensor while tracing, so the arithmetic stays free of Python branches.
    """
    # A 1-pixel side has period 0; adding (size == 1) makes it 1 so every index folds onto 0.
    period = 2 * size - 2 + (size == 1)
    folded = torch.arange(padded, device=device) % period
    return torch.where(folded < size, folded, period - folded)


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad the bottom and right of `x` (N, C, H, W) so H and W become multiples of `multiple`.

    Uses mirrored pixels rather than zeros so the network sees no artificial border.
    """
    height, width = x.shape[-2:]
    padded_height = height + (-height) % multiple
    padded_width = width + (-width) % multiple
    rows = _reflect_indices(height, padded_height, x.device)
    columns = _reflect_indices(width, padded_width, x.device)
    return x.index_select(-2, rows).index_select(-1, columns)


def crop_to(x: Tensor, height: int, width: int) -> Tensor:
    """The top-left (height, width) window of `x` (N, C, H', W'), undoing `pad_to_multiple`."""
    return x[..., :height, :width]


def align_to(x: Tensor, reference: Tensor) -> Tensor:
    """Pad or crop `x` (N, C, h, w) around its centre to the height and width of `reference`.

    A no-op for inputs padded to the network stride; it guards decoders against any off-by-one
    between an up-sampled map and its skip connection. Negative padding amounts crop.
    """
    diff_height = reference.shape[-2] - x.shape[-2]
    diff_width = reference.shape[-1] - x.shape[-1]
    return F.pad(
        x,
        [
            diff_width // 2,
            diff_width - diff_width // 2,
            diff_height // 2,
            diff_height - diff_height // 2,
        ],
    )


class DoubleConv(nn.Sequential):
    """(3x3 conv without bias -> BatchNorm -> ReLU) twice; keeps the spatial size."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None):
        mid = out_channels if mid_channels is None else mid_channels
        super().__init__(
            nn.Conv2d(in_channels, mid, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    """2x2 max-pooling then DoubleConv: (N, in, H, W) -> (N, out, H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))


class Upsampler(nn.Module):
    """Doubles the spatial size, landing exactly on the size of a skip connection.

    "bilinear" interpolates and keeps the channels; "transpose" learns a 2x2 stride-2 transposed
    convolution that halves them. `out_channels` says which.
    """

    def __init__(self, in_channels: int, mode: Upsampling):
        super().__init__()
        check_upsampling(mode)
        self.out_channels = in_channels if mode == "bilinear" else in_channels // 2
        self.transpose = (
            nn.ConvTranspose2d(in_channels, self.out_channels, kernel_size=2, stride=2)
            if mode == "transpose"
            else None
        )

    def forward(self, x: Tensor, reference: Tensor) -> Tensor:
        """Up-sample `x` (N, in, h, w) to (N, out_channels, H, W) with H, W from `reference`."""
        if self.transpose is None:
            return F.interpolate(x, size=reference.shape[-2:], mode="bilinear", align_corners=False)
        return align_to(self.transpose(x), reference)


class Up(nn.Module):
    """Decoder step: up-sample, concatenate the skip connection, then DoubleConv."""

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        mode: Upsampling,
        mid_channels: int | None = None,
    ):
        super().__init__()
        self.upsample = Upsampler(in_channels, mode)
        self.conv = DoubleConv(
            self.upsample.out_channels + skip_channels, out_channels, mid_channels
        )

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        """(N, in, h, w) and skip (N, skip, H, W) -> (N, out, H, W)."""
        merged: Tensor = self.conv(torch.cat([skip, self.upsample(x, skip)], dim=1))
        return merged
