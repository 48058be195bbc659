"""Every registered model: any channels, any input size, gradients reach the first layer."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainer.config import TrainConfig
from trainer.losses import build_loss
from trainer.models.blocks import align_to, crop_to, pad_to_multiple
from trainer.models.registry import MODEL_BUILDERS, build_model_by_name
from trainer.models.unet import UNet
from trainer.models.unet_plus_plus import UNetPlusPlus

TINY_OPTIONS: dict[str, dict[str, Any]] = {
    "unet": {"base_channels": 8, "depth": 3},
    "unet++": {"base_channels": 8, "depth": 3},
    "vgg16-unet": {"base_channels": 8},
    "resnet18-unet": {"base_channels": 8, "encoder_width": 8},
    "resnet34-unet": {"base_channels": 8, "encoder_width": 8},
    "resnet50-unet": {"base_channels": 8, "encoder_width": 8},
}


def tiny_model(name: str, in_channels: int, out_channels: int, **extra: Any) -> nn.Module:
    torch.manual_seed(0)
    options = {**TINY_OPTIONS[name], **extra}
    return build_model_by_name(name, in_channels=in_channels, out_channels=out_channels, **options)


def first_conv(model: nn.Module) -> nn.Conv2d:
    return next(module for module in model.modules() if isinstance(module, nn.Conv2d))


@pytest.mark.parametrize("upsampling", ["bilinear", "transpose"])
@pytest.mark.parametrize("name", sorted(MODEL_BUILDERS))
@pytest.mark.parametrize(
    ("in_channels", "out_channels", "size"),
    [(1, 1, (37, 53)), (3, 2, (64, 64)), (4, 5, (17, 96))],
)
def test_forward_backward_any_size(
    name: str, upsampling: str, in_channels: int, out_channels: int, size: tuple[int, int]
) -> None:
    model = tiny_model(name, in_channels, out_channels, upsampling=upsampling)
    x = torch.randn(2, in_channels, *size)

    logits = model(x)

    assert isinstance(logits, Tensor)
    assert logits.shape == (2, out_channels, *size)
    torch.autograd.backward(logits.square().mean())
    conv = first_conv(model)
    assert conv.in_channels == in_channels
    assert conv.weight.grad is not None
    assert conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(MODEL_BUILDERS))
def test_inputs_smaller_than_the_stride_work_in_eval_mode(name: str) -> None:
    model = tiny_model(name, 3, 2).eval()
    for size in [(1, 1), (2, 3), (5, 17)]:
        with torch.no_grad():
            assert model(torch.randn(1, 3, *size)).shape == (1, 2, *size)


@pytest.mark.parametrize("name", sorted(MODEL_BUILDERS))
def test_stride_is_the_padding_multiple(name: str) -> None:
    model = tiny_model(name, 3, 2)
    expected = {"vgg16-unet": 16, "resnet18-unet": 32, "resnet34-unet": 32, "resnet50-unet": 32}
    assert model.stride == expected.get(name, 8)


@pytest.mark.parametrize("name", sorted(MODEL_BUILDERS))
def test_channels_last_gives_the_same_logits(name: str) -> None:
    model = tiny_model(name, 3, 2).eval()
    x = torch.randn(2, 3, 40, 24)
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        actual = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_unet_plus_plus_deep_supervision_gives_one_output_per_head_in_training() -> None:
    model = UNetPlusPlus(3, 4, base_channels=8, depth=3, deep_supervision=True)
    x = torch.randn(2, 3, 37, 29)
    target = torch.randint(0, 4, (2, 37, 29))

    outputs = model(x)

    assert isinstance(outputs, list)
    assert len(outputs) == 3
    assert all(output.shape == (2, 4, 37, 29) for output in outputs)
    loss = build_loss(TrainConfig(dataset="d", loss="ce+dice"), num_classes=4)(outputs, target)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(head.weight.grad is not None for head in model.heads)

    model.eval()
    with torch.no_grad():
        final = model(x)
    assert isinstance(final, Tensor)
    assert final.shape == (2, 4, 37, 29)


def test_unet_plus_plus_without_deep_supervision_returns_a_tensor_in_training() -> None:
    model = UNetPlusPlus(3, 2, base_channels=8, depth=2)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2, 32, 32)


def test_invalid_arguments_name_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="bilinear, transpose"):
        UNet(3, 2, upsampling="nearest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="depth"):
        UNet(3, 2, depth=0)
    with pytest.raises(ValueError, match="in_channels"):
        UNetPlusPlus(0, 2)


@pytest.mark.parametrize(("height", "width"), [(16, 16), (17, 30), (9, 31)])
def test_pad_to_multiple_reflects_like_torch_where_torch_can(height: int, width: int) -> None:
    x = torch.randn(2, 3, height, width)
    padded = pad_to_multiple(x, 8)
    expected = F.pad(x, [0, (-width) % 8, 0, (-height) % 8], mode="reflect")
    torch.testing.assert_close(padded, expected, rtol=0, atol=0)
    assert torch.equal(crop_to(padded, height, width), x)


@pytest.mark.parametrize("size", [1, 2, 3])
def test_pad_to_multiple_handles_sides_smaller_than_the_padding(size: int) -> None:
    x = torch.arange(size, dtype=torch.float).view(1, 1, 1, size)
    padded = pad_to_multiple(x, 8)
    assert padded.shape == (1, 1, 8, 8)
    assert set(padded.flatten().tolist()) == set(range(size))
    assert torch.equal(crop_to(padded, 1, size), x)


def test_align_to_pads_or_crops_to_the_reference_size() -> None:
    reference = torch.zeros(1, 1, 10, 7)
    assert align_to(torch.ones(1, 4, 8, 9), reference).shape == (1, 4, 10, 7)
    assert align_to(torch.ones(1, 4, 12, 5), reference).shape == (1, 4, 10, 7)
