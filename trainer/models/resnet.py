"""ResNet-18/34/50 encoders whose state dicts use torchvision's key layout, and their loader.

Written here because torchvision cannot be installed beside our torch. Module names follow
torchvision's `resnet18/34/50` exactly (`conv1`, `bn1`, `layer1.0.conv1`, `layer2.0.downsample.0`,
...; ResNet v1.5, the stride on the 3x3 convolution of a bottleneck), so a torchvision file loads
key for key. The classifier (`fc`) is left out: a file's `fc.*` tensors are ignored.

timm's `resnet18`, `resnet34` and `resnet50` (every pretrained tag of them, e.g. `a1_in1k`) use
the same module names as torchvision (timm's ResNet started as a copy of torchvision's; its
shortcut is `downsample.0` conv + `downsample.1` norm too, and its extra modules such as `act1`
hold no tensors), so their `pytorch_model.bin` or a timm training script's
checkpoint (state dict under "state_dict" or "model", keys maybe prefixed `module.`) loads the
same way. timm's variants with a deep stem or average-pool shortcut (`resnet50d`, `resnet26t`,
...) have other keys (`conv1.0.weight`, `downsample.2.weight`) and are refused, naming them.
Hugging Face's `model.safetensors` files need re-saving with `torch.save` first (safetensors is
not a dependency). Nothing is ever downloaded: `encoder_weights` names a file the user has.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args

from torch import Tensor, nn

from trainer.models.encoder_weights import EncoderWeightsError, load_encoder_state

ResNetDepth = Literal[18, 34, 50]
RESNET_DEPTHS: tuple[int, ...] = get_args(ResNetDepth)

BLOCKS_PER_LAYER: Mapping[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
}
"""Residual blocks in layer1..layer4 of each depth (torchvision's `layers`)."""

BOTTLENECK_DEPTHS = frozenset({50})
"""Depths built from Bottleneck blocks (4x expansion); the others use BasicBlock."""

IGNORED_PREFIXES = ("fc.",)
"""Keys of a ResNet file the encoder has no place for: the ImageNet classifier."""

STANDARD_WIDTH = 64
"""Width of the stem and layer1 in torchvision's (and every pretrained) ResNet."""


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


def _downsample(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    """torchvision's shortcut projection (`downsample.0` conv, `downsample.1` BN) when needed."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(_conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut: (N, in, H, W) -> (N, width, H/stride, W/stride)."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(in_channels, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = _downsample(in_channels, width, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        result: Tensor = self.relu(out + identity)
        return result


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, with a shortcut.

    Shapes: (N, in, H, W) -> (N, 4 * width, H/stride, W/stride).
    """

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = _conv1x1(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        result: Tensor = self.relu(out + identity)
        return result


class ResNetEncoder(nn.Module):
    """ResNet-18/34/50 without its classifier, returning the output of each of five stages.

    Stages: the stem (conv1 7x7/2, bn1, relu) at stride 2, then maxpool + layer1 at stride 4,
    layer2 at 8, layer3 at 16 and layer4 at 32. `stage_channels` holds their widths: 64, 64,
    128, 256, 512 for depths 18 and 34; 64, 256, 512, 1024, 2048 for 50 (times width / 64).

    Args:
        depth: 18, 34 or 50.
        in_channels: image channels of conv1.
        width: stem and layer1 width; 64 is torchvision's and the only one pretrained files
            fit. Smaller widths make tiny test models.

    Shapes: (N, in_channels, H, W), H and W multiples of 32 -> five maps (N, C_i, H/s, W/s)
    with s = 2, 4, 8, 16, 32.
    """

    def __init__(self, depth: int, in_channels: int = 3, width: int = STANDARD_WIDTH):
        super().__init__()
        if depth not in BLOCKS_PER_LAYER:
            raise ValueError(
                f"unknown ResNet depth {depth}; allowed depths are "
                f"{', '.join(str(d) for d in RESNET_DEPTHS)}"
            )
        block = Bottleneck if depth in BOTTLENECK_DEPTHS else BasicBlock
        self.depth = depth
        self.in_channels = in_channels
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = width
        layers: list[nn.Sequential] = []
        for index, blocks in enumerate(BLOCKS_PER_LAYER[depth]):
            layer_width = width * 2**index
            stride = 1 if index == 0 else 2
            modules: list[nn.Module] = []
            for block_index in range(blocks):
                modules.append(block(channels, layer_width, stride if block_index == 0 else 1))
                channels = layer_width * block.expansion
            layers.append(nn.Sequential(*modules))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.stage_channels: tuple[int, ...] = (
            width,
            *(width * 2**index * block.expansion for index in range(4)),
        )
        self._initialise()

    def _initialise(self) -> None:
        # torchvision's initialisation, so an encoder trained from scratch starts where its does.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(N, in_channels, H, W) -> the five stage outputs, strides 2 to 32."""
        stem = self.relu(self.bn1(self.conv1(x)))
        c2 = self.layer1(self.maxpool(stem))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [stem, c2, c3, c4, c5]


def load_resnet_weights(encoder: ResNetEncoder, path: Path) -> None:
    """Load torchvision- or timm-layout ResNet weights from the local file `path`.

    The file holds a state dict, or one under "state_dict" or "model"; `module.` and
    `_orig_mod.` prefixes (DataParallel, torch.compile) are removed, `fc.*` is ignored, and so
    are missing `num_batches_tracked` buffers (torchvision's published files predate them).
    An encoder with in_channels != 3 gets the file's RGB conv1 adapted (mean RGB kernel repeated,
    scaled by 3 / in_channels).

    Raises:
        EncoderWeightsError: the file is missing or unreadable, or its keys or shapes are not
            those of this ResNet depth; the message names the file and the first
            missing, unexpected or misshapen keys.
    """
    load_encoder_state(
        encoder,
        path,
        architecture=f"ResNet-{encoder.depth}",
        ignored_prefixes=IGNORED_PREFIXES,
        first_conv="conv1.weight",
    )


__all__ = [
    "RESNET_DEPTHS",
    "BasicBlock",
    "Bottleneck",
    "EncoderWeightsError",
    "ResNetEncoder",
    "load_resnet_weights",
]
