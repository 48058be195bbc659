"""Loading VGG16-BN encoder weights from a local torchvision-layout file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from trainer.config import TrainConfig
from trainer.models.registry import build_model
from trainer.models.vgg16_unet import (
    EncoderWeightsError,
    VGG16BNEncoder,
    VGG16UNet,
    load_vgg16_bn_weights,
)

# Module indices of torchvision's vgg16_bn().features.
CONV_INDICES = (0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40)


def random_encoder(in_channels: int = 3) -> VGG16BNEncoder:
    """An encoder with non-default weights and batch-norm statistics, in eval mode."""
    torch.manual_seed(1)
    encoder = VGG16BNEncoder(in_channels)
    with torch.no_grad():
        for index in CONV_INDICES:
            norm = encoder.features[index + 1]
            assert isinstance(norm, torch.nn.BatchNorm2d)
            norm.running_mean.uniform_(-0.5, 0.5)  # type: ignore[union-attr]
            norm.running_var.uniform_(0.5, 2.0)  # type: ignore[union-attr]
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.1, 0.1)
    return encoder.eval()


def torchvision_file(path: Path, encoder: VGG16BNEncoder, *, legacy: bool = False) -> Path:
    """Save `encoder` like torchvision's vgg16_bn: `features.*` plus a `classifier.*` head.

    `legacy` drops the `num_batches_tracked` buffers, as in torchvision's published file.
    """
    state = {
        key: value
        for key, value in encoder.state_dict().items()
        if not (legacy and key.endswith("num_batches_tracked"))
    }
    state["classifier.0.weight"] = torch.randn(8, 4)
    state["classifier.0.bias"] = torch.randn(8)
    torch.save(state, path)
    return path


def stage_outputs(encoder: VGG16BNEncoder, x: Tensor) -> list[Tensor]:
    with torch.no_grad():
        return list(encoder.eval()(x))


def test_state_dict_keys_follow_torchvision_layout() -> None:
    keys = VGG16BNEncoder().state_dict().keys()
    assert "features.0.weight" in keys
    assert "features.1.running_var" in keys
    assert "features.41.running_mean" in keys
    assert max(int(key.split(".")[1]) for key in keys) == 41
    assert len(VGG16BNEncoder().features) == 44


@pytest.mark.parametrize("legacy", [False, True])
def test_loaded_encoder_reproduces_the_source_outputs(tmp_path: Path, legacy: bool) -> None:
    source = random_encoder()
    path = torchvision_file(tmp_path / "vgg16_bn.pth", source, legacy=legacy)

    model = VGG16UNet(3, 2, base_channels=8, encoder_weights=path)

    x = torch.randn(1, 3, 32, 48)
    for loaded, expected in zip(
        stage_outputs(model.encoder, x), stage_outputs(source, x), strict=True
    ):
        torch.testing.assert_close(loaded, expected, rtol=0, atol=0)


@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_wrapped_state_dicts_load(tmp_path: Path, wrapper: str) -> None:
    source = random_encoder()
    path = tmp_path / "wrapped.pth"
    torch.save({wrapper: source.state_dict(), "epoch": 3}, path)

    encoder = VGG16BNEncoder()
    load_vgg16_bn_weights(encoder, path)

    torch.testing.assert_close(encoder.features[40].weight, source.features[40].weight)


def test_build_model_reads_encoder_weights_from_the_config(tmp_path: Path) -> None:
    source = random_encoder()
    path = torchvision_file(tmp_path / "vgg.pth", source)
    cfg = TrainConfig(dataset="d", model="vgg16-unet", base_channels=8, encoder_weights=str(path))

    model = build_model(cfg, in_channels=3, out_channels=2)

    assert isinstance(model, VGG16UNet)
    torch.testing.assert_close(model.encoder.features[0].weight, source.features[0].weight)


@pytest.mark.parametrize("in_channels", [1, 4])
def test_first_conv_is_adapted_to_other_channel_counts(tmp_path: Path, in_channels: int) -> None:
    source = random_encoder()
    path = torchvision_file(tmp_path / "vgg.pth", source)

    model = VGG16UNet(in_channels, 2, base_channels=8, encoder_weights=path)

    # A gray image copied into every channel gives the RGB network's activations on that
    # gray image copied into R, G and B.
    gray = torch.randn(1, 1, 32, 32)
    adapted = stage_outputs(model.encoder, gray.repeat(1, in_channels, 1, 1))
    expected = stage_outputs(source, gray.repeat(1, 3, 1, 1))
    for actual, wanted in zip(adapted, expected, strict=True):
        torch.testing.assert_close(actual, wanted, rtol=1e-4, atol=1e-4)
    assert model(torch.randn(2, in_channels, 20, 20)).shape == (2, 2, 20, 20)


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.pth"
    with pytest.raises(EncoderWeightsError, match=r"nowhere\.pth does not exist"):
        VGG16UNet(3, 2, encoder_weights=path)


def test_file_that_is_not_a_state_dict_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("not weights", encoding="utf-8")
    with pytest.raises(EncoderWeightsError, match=r"notes\.pth is not a PyTorch state dict"):
        load_vgg16_bn_weights(VGG16BNEncoder(), path)

    tensor_path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor_path)
    with pytest.raises(EncoderWeightsError, match=r"tensor\.pth must hold a state dict"):
        load_vgg16_bn_weights(VGG16BNEncoder(), tensor_path)


def test_other_architecture_names_the_first_mismatching_keys(tmp_path: Path) -> None:
    state = random_encoder().state_dict()
    state["features.45.weight"] = torch.zeros(1)
    del state["features.0.weight"]
    path = tmp_path / "resnet.pth"
    torch.save(state, path)

    with pytest.raises(EncoderWeightsError) as caught:
        load_vgg16_bn_weights(VGG16BNEncoder(), path)

    message = str(caught.value)
    assert "resnet.pth" in message
    assert "missing features.0.weight" in message
    assert "unexpected features.45.weight" in message


def test_state_dict_without_features_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "unet.pth"
    torch.save({"inc.0.weight": torch.zeros(8, 3, 3, 3)}, path)
    with pytest.raises(EncoderWeightsError, match=r"unet\.pth .*missing features\.0\.bias"):
        load_vgg16_bn_weights(VGG16BNEncoder(), path)


def test_wrong_shapes_are_named(tmp_path: Path) -> None:
    state = random_encoder().state_dict()
    state["features.40.weight"] = torch.zeros(512, 256, 3, 3)
    path = tmp_path / "narrow.pth"
    torch.save(state, path)
    with pytest.raises(EncoderWeightsError, match=r"narrow\.pth .*features\.40\.weight"):
        load_vgg16_bn_weights(VGG16BNEncoder(), path)
