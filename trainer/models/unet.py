"""UNet (Ronneberger et al., 2015) with same-padding convolutions, any depth and any input size."""

from __future__ import annotations

from torch import Tensor, nn

from trainer.config import Upsampling
from trainer.models.blocks import (
    DoubleConv,
    Down,
    Up,
    check_positive,
    check_upsampling,
    crop_to,
    pad_to_multiple,
)


class UNet(nn.Module):
    """Encoder-decoder with skip connections; logits at the input size.

    Encoder widths are `base_channels * 2**i` for levels i = 0..depth. With bilinear up-sampling
    the bottleneck and every decoder stage are halved, as in milesial/Pytorch-UNet, because
    interpolation cannot halve the channels the way a transposed convolution does; this keeps
    the concatenations balanced and the model about half the size (UNet(3, 2) has ~17.3M
    parameters bilinear, ~31.0M transpose).

    Args:
        in_channels: image channels (any number, e.g. 1 for grayscale, 4 for RGB + NIR).
        out_channels: logit channels (classes, or 1 for a sigmoid head).
        base_channels: width of the first level; 64 is the original UNet.
        depth: number of 2x down-sampling steps; the stride is 2**depth.
        upsampling: "bilinear" or "transpose".

    Shapes: (N, in_channels, H, W) -> (N, out_channels, H, W) for any H, W >= 1.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_channels: int = 64,
        depth: int = 4,
        upsampling: Upsampling = "bilinear",
    ):
        super().__init__()
        check_positive(
            in_channels=in_channels,
            out_channels=out_channels,
            base_channels=base_channels,
            depth=depth,
        )
        check_upsampling(upsampling)
        self.stride: int = 2**depth
        widths = [base_channels * 2**level for level in range(depth + 1)]
        halve = 2 if upsampling == "bilinear" else 1
        bottleneck = widths[depth] // halve

        self.inc = DoubleConv(in_channels, widths[0])
        self.downs = nn.ModuleList(
            Down(widths[level - 1], bottleneck if level == depth else widths[level])
            for level in range(1, depth + 1)
        )
        ups = []
        channels = bottleneck
        for level in reversed(range(depth)):
            out = widths[level] // halve if level > 0 else widths[0]
            ups.append(Up(channels, widths[level], out, upsampling, mid_channels=widths[level]))
            channels = out
        self.ups = nn.ModuleList(ups)
        self.head = nn.Conv2d(widths[0], out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_channels, H, W) -> logits (N, out_channels, H, W)."""
        height, width = x.shape[-2:]
        x = self.inc(pad_to_multiple(x, self.stride))
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        for up, skip in zip(self.ups, reversed(skips[:-1]), strict=True):
            x = up(x, skip)
        return crop_to(self.head(x), height, width)
