"""The model registry: names shared with the config, options from TrainConfig, sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainer.config import MODEL_NAMES, TrainConfig
from trainer.models.registry import (
    MODEL_BUILDERS,
    UnknownModelError,
    build_model,
    build_model_by_name,
)
from trainer.models.unet import UNet
from trainer.models.unet_plus_plus import UNetPlusPlus
from trainer.models.vgg16_unet import VGG16UNet


def parameter_count(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def test_registry_names_equal_the_config_names() -> None:
    assert tuple(MODEL_BUILDERS) == MODEL_NAMES


def test_unknown_model_lists_the_registered_names() -> None:
    with pytest.raises(UnknownModelError, match=r"'segformer'.*unet, unet\+\+, vgg16-unet"):
        build_model_by_name("segformer", in_channels=3, out_channels=2)


def test_unknown_model_from_an_unvalidated_config() -> None:
    cfg = TrainConfig(dataset="d").model_copy(update={"model": "segformer"})
    with pytest.raises(UnknownModelError, match="registered models"):
        build_model(cfg, in_channels=3, out_channels=2)


def test_build_model_uses_the_config_options() -> None:
    cfg = TrainConfig(
        dataset="d",
        model="unet++",
        base_channels=8,
        depth=2,
        upsampling="transpose",
        deep_supervision=True,
    )
    model = build_model(cfg, in_channels=1, out_channels=3)

    assert isinstance(model, UNetPlusPlus)
    assert model.stride == 4
    assert len(model.heads) == 2
    assert any(isinstance(module, nn.ConvTranspose2d) for module in model.modules())
    outputs = model(torch.randn(2, 1, 20, 20))
    assert [tuple(output.shape) for output in outputs] == [(2, 3, 20, 20)] * 2


def test_build_model_unet_and_vgg16_unet() -> None:
    unet = build_model(
        TrainConfig(dataset="d", base_channels=4, depth=1), in_channels=4, out_channels=2
    )
    assert isinstance(unet, UNet)
    assert unet.stride == 2

    vgg = build_model(
        TrainConfig(dataset="d", model="vgg16-unet", base_channels=4, depth=2),
        in_channels=3,
        out_channels=2,
    )
    assert isinstance(vgg, VGG16UNet)
    assert vgg.stride == 16  # vgg16-unet's depth is fixed by VGG


def test_standard_unet_has_the_original_parameter_count() -> None:
    # Ronneberger's UNet with padded convolutions and batch norm: 31,037,698 for 3 -> 2.
    count = parameter_count(UNet(3, 2, 64, 4, "transpose"))
    assert 30_900_000 < count < 31_100_000


def test_bilinear_unet_halves_the_bottleneck_like_pytorch_unet() -> None:
    count = parameter_count(UNet(3, 2, 64, 4, "bilinear"))
    assert 17_200_000 < count < 17_300_000


def test_default_unet_plus_plus_matches_the_paper_size() -> None:
    count = parameter_count(UNetPlusPlus(3, 1))
    assert 9_100_000 < count < 9_200_000


def test_vgg16_encoder_has_the_vgg16_bn_convolution_parameters() -> None:
    # torchvision's vgg16_bn().features holds 14,723,136 parameters.
    assert parameter_count(VGG16UNet(3, 2).encoder) == 14_723_136
