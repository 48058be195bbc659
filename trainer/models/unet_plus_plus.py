"""UNet++ (Zhou et al., 2018): nested dense skip pathways with optional deep supervision."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trainer.config import Upsampling
from trainer.models.blocks import (
    DoubleConv,
    Upsampler,
    check_positive,
    check_upsampling,
    crop_to,
    pad_to_multiple,
)


def _node(level: int, step: int) -> str:
    return f"x{level}_{step}"


class UNetPlusPlus(nn.Module):
    """Nested UNet: node X^{i,j} fuses X^{i,0..j-1} with the up-sampled X^{i+1,j-1}.

    Widths are `base_channels * 2**i` for levels i = 0..depth. Every node is a DoubleConv. The
    up-sampling of X^{i+1,j-1} keeps its channels ("bilinear", as in the paper) or halves them
    with a transposed convolution ("transpose").

    With `deep_supervision`, a 1x1 head sits on each of X^{0,1..depth}: in training mode
    `forward` returns the list of their logits (the loss averages over them); in eval mode it
    returns only the last head's logits so prediction, export and metrics always get a tensor.

    Args:
        in_channels: image channels.
        out_channels: logit channels.
        base_channels: width of the first level (32 in the paper).
        depth: number of 2x down-sampling steps; the stride is 2**depth.
        deep_supervision: one head per nested output X^{0,j}.
        upsampling: "bilinear" or "transpose".

    Shapes: (N, in_channels, H, W) -> (N, out_channels, H, W), or a list of `depth` such
    tensors in training mode with deep supervision.
    """

    def __init__(  # noqa: PLR0917 - the positional order is the public signature
        self,
        in_channels: int,
        out_channels: int,
        base_channels: int = 32,
        depth: int = 4,
        deep_supervision: bool = False,
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
        self.depth = depth
        self.deep_supervision = deep_supervision
        widths = [base_channels * 2**level for level in range(depth + 1)]

        self.pool = nn.MaxPool2d(2)
        self.encoder = nn.ModuleList(
            DoubleConv(in_channels if level == 0 else widths[level - 1], widths[level])
            for level in range(depth + 1)
        )
        self.upsamplers = nn.ModuleDict()
        self.nodes = nn.ModuleDict()
        for level in range(depth):
            for step in range(1, depth - level + 1):
                upsampler = Upsampler(widths[level + 1], upsampling)
                self.upsamplers[_node(level, step)] = upsampler
                self.nodes[_node(level, step)] = DoubleConv(
                    step * widths[level] + upsampler.out_channels, widths[level]
                )
        head_count = depth if deep_supervision else 1
        self.heads = nn.ModuleList(
            nn.Conv2d(widths[0], out_channels, kernel_size=1) for _ in range(head_count)
        )

    def forward(self, x: Tensor) -> Tensor | list[Tensor]:
        """(N, in_channels, H, W) -> logits (N, out_channels, H, W) (a list: see the class)."""
        height, width = x.shape[-2:]
        # rows[i] holds X^{i,0}, X^{i,1}, ... as they are computed, one anti-diagonal at a time.
        rows: list[list[Tensor]] = [[] for _ in range(self.depth + 1)]
        x = pad_to_multiple(x, self.stride)
        for level, encode in enumerate(self.encoder):
            x = encode(x if level == 0 else self.pool(x))
            rows[level].append(x)
            for step in range(1, level + 1):
                row = level - step
                name = _node(row, step)
                below = self.upsamplers[name](rows[row + 1][step - 1], rows[row][0])
                rows[row].append(self.nodes[name](torch.cat([*rows[row], below], dim=1)))
        if self.deep_supervision and self.training:
            return [
                crop_to(head(output), height, width)
                for head, output in zip(self.heads, rows[0][1:], strict=True)
            ]
        return crop_to(self.heads[-1](rows[0][-1]), height, width)
