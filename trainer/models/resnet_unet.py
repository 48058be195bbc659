"""UNets over ResNet-18/34/50 encoders (`resnet18-unet`, `resnet34-unet`, `resnet50-unet`).

The decoder follows segmentation_models' Unet: one up-sampling step per encoder stage, each
concatenating the stage's output, and a last step back to full resolution without a skip (the
ResNet stem already halves the input). Inputs of any size are mirror-padded to a multiple of 32
and the logits cropped back, as in every model here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn

from trainer.config import Upsampling
from trainer.models.blocks import (
    DoubleConv,
    Up,
    Upsampler,
    check_positive,
    check_upsampling,
    crop_to,
    pad_to_multiple,
)
from trainer.models.resnet import STANDARD_WIDTH, ResNetEncoder, load_resnet_weights

STAGES = 5
"""Encoder stages, each halving the resolution: the network's stride is 2**5 = 32."""


class ResNetUNet(nn.Module):
    """UNet whose encoder is a ResNet (optionally ImageNet-initialised from a local file).

    The encoder's five stages (strides 2..32) feed four decoder steps that up-sample,
    concatenate the matching stage and apply a DoubleConv of width `base_channels * 2**i`
    (i = 4..1); a fifth step up-samples to full resolution and applies a DoubleConv of width
    `base_channels`, then a 1x1 head. `base_channels` only scales the decoder; the encoder's
    widths are ResNet's.

    Args:
        depth: 18, 34 or 50.
        in_channels: image channels; with weights and in_channels != 3 conv1 is adapted.
        out_channels: logit channels.
        base_channels: decoder width at full resolution.
        upsampling: "bilinear" or "transpose".
        encoder_weights: local torchvision/timm `resnet<depth>` state-dict file, or None for
            torchvision's random initialisation.
        encoder_width: stem width of the encoder; 64 (ResNet's) unless building tiny test
            models, and 64 whenever weights are loaded.

    Shapes: (N, in_channels, H, W) -> (N, out_channels, H, W) for any H, W >= 1.
    """

    def __init__(
        self,
        depth: int,
        in_channels: int,
        out_channels: int,
        *,
        base_channels: int = 32,
        upsampling: Upsampling = "bilinear",
        encoder_weights: Path | str | None = None,
        encoder_width: int = STANDARD_WIDTH,
    ):
        super().__init__()
        check_positive(
            in_channels=in_channels,
            out_channels=out_channels,
            base_channels=base_channels,
            encoder_width=encoder_width,
        )
        check_upsampling(upsampling)
        self.stride: int = 2**STAGES
        self.encoder = ResNetEncoder(depth, in_channels, width=encoder_width)
        if encoder_weights is not None:
            load_resnet_weights(self.encoder, Path(encoder_weights))
        stage_channels = self.encoder.stage_channels
        ups = []
        channels = stage_channels[-1]
        for level in reversed(range(STAGES - 1)):
            width = base_channels * 2 ** (level + 1)
            ups.append(Up(channels, stage_channels[level], width, upsampling))
            channels = width
        self.ups = nn.ModuleList(ups)
        self.final_upsample = Upsampler(channels, upsampling)
        self.final_conv = DoubleConv(self.final_upsample.out_channels, base_channels)
        self.head = nn.Conv2d(base_channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_channels, H, W) -> logits (N, out_channels, H, W)."""
        height, width = x.shape[-2:]
        padded = pad_to_multiple(x, self.stride)
        *skips, y = self.encoder(padded)
        for up, skip in zip(self.ups, reversed(skips), strict=True):
            y = up(y, skip)
        y = self.final_conv(self.final_upsample(y, padded))
        return crop_to(self.head(y), height, width)


def resnet18_unet(in_channels: int, out_channels: int, **options: Any) -> ResNetUNet:
    """`ResNetUNet(18, ...)`; `options` are its keyword arguments."""
    return ResNetUNet(18, in_channels, out_channels, **options)


def resnet34_unet(in_channels: int, out_channels: int, **options: Any) -> ResNetUNet:
    """`ResNetUNet(34, ...)`; `options` are its keyword arguments."""
    return ResNetUNet(34, in_channels, out_channels, **options)


def resnet50_unet(in_channels: int, out_channels: int, **options: Any) -> ResNetUNet:
    """`ResNetUNet(50, ...)`; `options` are its keyword arguments."""
    return ResNetUNet(50, in_channels, out_channels, **options)
