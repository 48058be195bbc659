"""ResNet-18/34/50 UNets: torchvision's key layout, any input size and channel count."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from trainer.config import ENCODER_MODELS, MODEL_NAMES, TrainConfig
from trainer.models.registry import build_model, build_model_by_name, encoder_of
from trainer.models.resnet import ResNetEncoder
from trainer.models.resnet_unet import ResNetUNet

# Parameter counts of torchvision's resnet18/34/50 without their `fc` (512 or 2048 x 1000 + 1000).
TORCHVISION_PARAMETERS = {
    18: 11_689_512 - 513_000,
    34: 21_797_672 - 513_000,
    50: 25_557_032 - 2_049_000,
}


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_encoder_matches_torchvision_parameter_count(depth: int) -> None:
    encoder = ResNetEncoder(depth)
    assert sum(p.numel() for p in encoder.parameters()) == TORCHVISION_PARAMETERS[depth]


def test_state_dict_keys_follow_torchvision_layout() -> None:
    basic = ResNetEncoder(18).state_dict().keys()
    assert {
        "conv1.weight",
        "bn1.running_var",
        "layer1.1.conv2.weight",
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.num_batches_tracked",
        "layer4.1.bn2.bias",
    } <= basic
    assert "layer1.0.downsample.0.weight" not in basic
    assert not any(key.startswith("fc.") for key in basic)
    bottleneck = ResNetEncoder(50).state_dict().keys()
    assert {
        "layer1.0.downsample.0.weight",
        "layer3.5.conv3.weight",
        "layer4.2.bn3.bias",
    } <= bottleneck
    assert ResNetEncoder(50).layer4[0].conv2.stride == (2, 2)  # ResNet v1.5, as torchvision


@pytest.mark.parametrize(("depth", "channels"), [(18, 512), (34, 512), (50, 2048)])
def test_encoder_stages_have_strides_two_to_thirty_two(depth: int, channels: int) -> None:
    encoder = ResNetEncoder(depth, width=8)
    outputs = encoder(torch.randn(1, 3, 64, 96))
    assert [tuple(out.shape[-2:]) for out in outputs] == [
        (32, 48),
        (16, 24),
        (8, 12),
        (4, 6),
        (2, 3),
    ]
    assert [out.shape[1] for out in outputs] == list(encoder.stage_channels)
    assert encoder.stage_channels[-1] == channels // 8


@pytest.mark.parametrize("upsampling", ["bilinear", "transpose"])
@pytest.mark.parametrize("in_channels", [1, 3, 4])
@pytest.mark.parametrize("name", ["resnet18-unet", "resnet34-unet", "resnet50-unet"])
def test_forward_backward_at_an_odd_size(name: str, in_channels: int, upsampling: str) -> None:
    torch.manual_seed(0)
    model = build_model_by_name(
        name,
        in_channels=in_channels,
        out_channels=3,
        base_channels=8,
        encoder_width=8,
        upsampling=upsampling,
    )
    x = torch.randn(2, in_channels, 37, 53)

    logits = model(x)

    assert isinstance(logits, Tensor)
    assert logits.shape == (2, 3, 37, 53)
    torch.autograd.backward(logits.square().mean())
    assert isinstance(model, ResNetUNet)
    grad = model.encoder.conv1.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert model.encoder.conv1.in_channels == in_channels


def test_full_width_resnet50_unet_on_a_small_image() -> None:
    model = build_model(
        TrainConfig(dataset="d", model="resnet50-unet", base_channels=8),
        in_channels=3,
        out_channels=2,
    )
    x = torch.randn(1, 3, 40, 33)
    logits = model(x)
    assert logits.shape == (1, 2, 40, 33)
    torch.autograd.backward(logits.mean())


def test_encoder_of_names_only_pretrained_style_encoders() -> None:
    resnet = build_model_by_name("resnet18-unet", in_channels=3, out_channels=2, encoder_width=8)
    unet_pp = build_model_by_name("unet++", in_channels=3, out_channels=2, base_channels=4, depth=2)
    assert isinstance(resnet, ResNetUNet)
    assert encoder_of(resnet) is resnet.encoder
    assert encoder_of(unet_pp) is None


def test_the_config_and_the_registry_agree_on_which_models_have_an_encoder() -> None:
    tiny = {"base_channels": 4}
    for name in MODEL_NAMES:
        options = {**tiny, "encoder_width": 4} if name.startswith("resnet") else tiny
        model = build_model_by_name(name, in_channels=3, out_channels=2, **options)
        assert (encoder_of(model) is not None) == (name in ENCODER_MODELS), name


def test_unknown_depth_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"depth 101.*18, 34, 50"):
        ResNetEncoder(101)
