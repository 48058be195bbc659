"""The one place that turns a model name (TrainConfig.model) into a network."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from trainer.config import TrainConfig
from trainer.models.resnet_unet import ResNetUNet, resnet18_unet, resnet34_unet, resnet50_unet
from trainer.models.unet import UNet
from trainer.models.unet_plus_plus import UNetPlusPlus
from trainer.models.vgg16_unet import VGG16UNet

MODEL_BUILDERS: Mapping[str, Callable[..., nn.Module]] = {
    "unet": UNet,
    "unet++": UNetPlusPlus,
    "vgg16-unet": VGG16UNet,
    "resnet18-unet": resnet18_unet,
    "resnet34-unet": resnet34_unet,
    "resnet50-unet": resnet50_unet,
}
"""Constructors by name; each takes in_channels, out_channels and its own keyword options."""

_CONFIG_OPTIONS: Mapping[str, tuple[str, ...]] = {
    "unet": ("base_channels", "depth", "upsampling"),
    "unet++": ("base_channels", "depth", "deep_supervision", "upsampling"),
    "vgg16-unet": ("base_channels", "upsampling", "encoder_weights"),
    "resnet18-unet": ("base_channels", "upsampling", "encoder_weights"),
    "resnet34-unet": ("base_channels", "upsampling", "encoder_weights"),
    "resnet50-unet": ("base_channels", "upsampling", "encoder_weights"),
}
"""The TrainConfig fields each model takes as keyword options (the encoder models' depth is
fixed by their encoder)."""


ENCODER_MODEL_TYPES: tuple[type[nn.Module], ...] = (VGG16UNet, ResNetUNet)
"""Models built around a classification network's encoder (TrainConfig's ENCODER_MODELS)."""


class UnknownModelError(ValueError):
    """A model name that is not registered; the message lists the registered names."""


def build_model_by_name(
    name: str, *, in_channels: int, out_channels: int, **options: Any
) -> nn.Module:
    """Build model `name`; `options` are its constructor's keyword arguments.

    Every model maps (N, in_channels, H, W) to logits (N, out_channels, H, W) for any H, W and
    has a `stride` attribute (the multiple its input is padded to internally).

    Raises:
        UnknownModelError: `name` is not one of MODEL_BUILDERS.
    """
    builder = MODEL_BUILDERS.get(name)
    if builder is None:
        raise UnknownModelError(
            f"unknown model {name!r}; registered models are {', '.join(MODEL_BUILDERS)}"
        )
    return builder(in_channels=in_channels, out_channels=out_channels, **options)


def build_model(
    cfg: TrainConfig, *, in_channels: int, out_channels: int, load_encoder_weights: bool = True
) -> nn.Module:
    """Build `cfg.model` with the config's architecture options.

    `in_channels` and `out_channels` are passed separately because they are resolved from the
    dataset and the loss (see `trainer.losses.output_channels`), not read from `cfg`.
    `load_encoder_weights=False` skips reading `cfg.encoder_weights`: for a model whose weights
    come from a checkpoint right after (inference, export), where that file may be long gone.
    """
    options: dict[str, Any] = {
        field: getattr(cfg, field) for field in _CONFIG_OPTIONS.get(cfg.model, ())
    }
    if not load_encoder_weights:
        options.pop("encoder_weights", None)
    return build_model_by_name(
        cfg.model, in_channels=in_channels, out_channels=out_channels, **options
    )


def encoder_of(model: nn.Module) -> nn.Module | None:
    """The `encoder` of an encoder model (vgg16-unet, resnet*-unet); None for other models.

    Explicit types rather than any `encoder` attribute: UNet++ names its down path `encoder`,
    but it is no pretrained network to freeze or to train at a lower rate.
    """
    if isinstance(model, ENCODER_MODEL_TYPES):
        encoder = model.encoder
        assert isinstance(encoder, nn.Module)
        return encoder
    return None
