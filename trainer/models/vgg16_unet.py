"""UNet with a VGG16-BN encoder whose weights can come from a local torchvision file.

The encoder is written here (torchvision is not a dependency) with the same module indices as
torchvision's `vgg16_bn().features`, so a torchvision state dict loads key for key. Nothing is
ever downloaded: `encoder_weights` names a file the user already has.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from trainer.config import Upsampling
from trainer.models.blocks import Up, check_positive, check_upsampling, crop_to, pad_to_multiple
from trainer.models.encoder_weights import RGB, EncoderWeightsError, load_encoder_state

VGG16_BN_LAYOUT: tuple[int | str, ...] = (
    *(64, 64, "M"),
    *(128, 128, "M"),
    *(256, 256, 256, "M"),
    *(512, 512, 512, "M"),
    *(512, 512, 512, "M"),
)
"""Conv widths and max-pools ("M") of VGG16 configuration D; each conv is conv3x3+BN+ReLU."""

STAGE_BOUNDS: tuple[tuple[int, int], ...] = ((0, 6), (6, 13), (13, 23), (23, 33), (33, 43))
"""`features[start:stop]` of the five stages; each after the first starts with a max-pool.

The final max-pool (`features.43`) is kept for the state-dict layout but not used.
"""

STAGE_CHANNELS: tuple[int, ...] = (64, 128, 256, 512, 512)


class VGG16BNEncoder(nn.Module):
    """VGG16-BN convolutional part; `features.N` matches torchvision's `vgg16_bn().features`.

    Shapes: (N, in_channels, H, W) with H, W multiples of 16 -> five maps of 64, 128, 256, 512
    and 512 channels at strides 1, 2, 4, 8 and 16.
    """

    def __init__(self, in_channels: int = RGB):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG16_BN_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                width = int(item)
                layers += [
                    nn.Conv2d(channels, width, kernel_size=3, padding=1),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                ]
                channels = width
        self.features = nn.Sequential(*layers)
        self.in_channels = in_channels

    def forward(self, x: Tensor) -> list[Tensor]:
        """(N, in_channels, H, W) -> the output of each of the five stages."""
        outputs = []
        for start, stop in STAGE_BOUNDS:
            for index in range(start, stop):
                x = self.features[index](x)
            outputs.append(x)
        return outputs


def load_vgg16_bn_weights(encoder: VGG16BNEncoder, path: Path) -> None:
    """Load torchvision-layout VGG16-BN weights (`features.N.*`) from the local file `path`.

    The file holds a state dict, or one under "state_dict" or "model", keys maybe prefixed
    `module.` or `_orig_mod.`; `classifier.*` and other keys outside `features.` are ignored, and
    so are missing `num_batches_tracked` buffers (old torchvision files predate them). An encoder
    with in_channels != 3 gets its first conv adapted (see `adapt_first_conv`).

    Raises:
        EncoderWeightsError: the file is missing, unreadable, or its `features.*` keys or
            shapes do not match VGG16-BN; the message names the file and the first
            mismatching keys.
    """
    load_encoder_state(
        encoder,
        path,
        architecture="VGG16-BN `features.*`",
        first_conv="features.0.weight",
        keep=lambda key: key.startswith("features."),
    )


class VGG16UNet(nn.Module):
    """UNet whose encoder is VGG16-BN (optionally ImageNet-initialised from a local file).

    The five VGG stages (64-128-256-512-512 channels) are the encoder, the last one the
    bottleneck at stride 16. Four decoder steps up-sample, concatenate the matching stage and
    apply a DoubleConv of width `base_channels * 2**i` (i = 3..0); `base_channels` only scales
    the decoder, the encoder widths are fixed by VGG.

    Args:
        in_channels: image channels; with weights and in_channels != 3 the first conv is adapted.
        out_channels: logit channels.
        base_channels: decoder width at full resolution (64 mirrors the encoder).
        upsampling: "bilinear" or "transpose".
        encoder_weights: local torchvision `vgg16_bn` state-dict file, or None for random init.

    Shapes: (N, in_channels, H, W) -> (N, out_channels, H, W) for any H, W >= 1.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_channels: int = 64,
        upsampling: Upsampling = "bilinear",
        encoder_weights: Path | str | None = None,
    ):
        super().__init__()
        check_positive(
            in_channels=in_channels, out_channels=out_channels, base_channels=base_channels
        )
        check_upsampling(upsampling)
        self.stride: int = 2 ** (len(STAGE_CHANNELS) - 1)
        self.encoder = VGG16BNEncoder(in_channels)
        if encoder_weights is not None:
            load_vgg16_bn_weights(self.encoder, Path(encoder_weights))
        ups = []
        channels = STAGE_CHANNELS[-1]
        for level in reversed(range(len(STAGE_CHANNELS) - 1)):
            width = base_channels * 2**level
            ups.append(Up(channels, STAGE_CHANNELS[level], width, upsampling))
            channels = width
        self.ups = nn.ModuleList(ups)
        self.head = nn.Conv2d(base_channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_channels, H, W) -> logits (N, out_channels, H, W)."""
        height, width = x.shape[-2:]
        *skips, x = self.encoder(pad_to_multiple(x, self.stride))
        for up, skip in zip(self.ups, reversed(skips), strict=True):
            x = up(x, skip)
        return crop_to(self.head(x), height, width)


__all__ = ["EncoderWeightsError", "VGG16BNEncoder", "VGG16UNet", "load_vgg16_bn_weights"]
