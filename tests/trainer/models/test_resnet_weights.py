"""Loading ResNet encoder weights from local torchvision- or timm-layout files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from trainer.config import TrainConfig
from trainer.models.encoder_weights import EncoderWeightsError
from trainer.models.registry import build_model
from trainer.models.resnet import ResNetEncoder, load_resnet_weights
from trainer.models.resnet_unet import ResNetUNet


def random_encoder(depth: int = 18, width: int = 8) -> ResNetEncoder:
    """An encoder with non-default BatchNorm weights and statistics, in eval mode."""
    torch.manual_seed(1)
    encoder = ResNetEncoder(depth, width=width)
    with torch.no_grad():
        for module in encoder.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)  # type: ignore[union-attr]
                module.running_var.uniform_(0.5, 2.0)  # type: ignore[union-attr]
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
    return encoder.eval()


def torchvision_state(encoder: ResNetEncoder, *, legacy: bool = False) -> dict[str, Tensor]:
    """`encoder`'s tensors under torchvision's `resnet<depth>` names, with its `fc` head.

    `legacy` drops the `num_batches_tracked` buffers, as torchvision's published files do.
    """
    state = {
        key: value.clone()
        for key, value in encoder.state_dict().items()
        if not (legacy and key.endswith("num_batches_tracked"))
    }
    features = encoder.stage_channels[-1]
    state["fc.weight"] = torch.randn(1000, features)
    state["fc.bias"] = torch.randn(1000)
    return state


def outputs(encoder: ResNetEncoder, x: Tensor) -> list[Tensor]:
    with torch.no_grad():
        return list(encoder.eval()(x))


@pytest.mark.parametrize("legacy", [False, True])
def test_a_torchvision_file_named_in_the_config_loads_identical_tensors(
    tmp_path: Path, legacy: bool
) -> None:
    source = random_encoder(18, width=64)
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(torchvision_state(source, legacy=legacy), path)
    cfg = TrainConfig(
        dataset="d", model="resnet18-unet", base_channels=8, encoder_weights=str(path)
    )

    model = build_model(cfg, in_channels=3, out_channels=2)

    assert isinstance(model, ResNetUNet)
    loaded = model.encoder.state_dict()
    for key, value in source.state_dict().items():
        if not (legacy and key.endswith("num_batches_tracked")):
            assert torch.equal(loaded[key], value), key
    x = torch.randn(1, 3, 64, 64)
    for got, want in zip(outputs(model.encoder, x), outputs(source, x), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("depth", [34, 50])
def test_deeper_encoders_load_their_layout(tmp_path: Path, depth: int) -> None:
    source = random_encoder(depth)
    path = tmp_path / f"resnet{depth}.pth"
    torch.save(torchvision_state(source), path)

    model = ResNetUNet(depth, 3, 2, base_channels=8, encoder_width=8, encoder_weights=path)

    x = torch.randn(1, 3, 64, 64)
    for got, want in zip(outputs(model.encoder, x), outputs(source, x), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_timm_training_checkpoints_load(tmp_path: Path, wrapper: str) -> None:
    # timm's train.py saves {"state_dict": ..., "epoch": ...}; DataParallel adds `module.`.
    source = random_encoder()
    state = {f"module.{key}": value for key, value in torchvision_state(source).items()}
    path = tmp_path / "timm_checkpoint.pth.tar"
    torch.save({wrapper: state, "epoch": 90, "arch": "resnet18"}, path)

    encoder = ResNetEncoder(18, width=8)
    load_resnet_weights(encoder, path)

    key = "layer4.1.conv2.weight"
    assert torch.equal(encoder.state_dict()[key], source.state_dict()[key])


@pytest.mark.parametrize("in_channels", [1, 4])
def test_conv1_is_adapted_to_other_channel_counts(tmp_path: Path, in_channels: int) -> None:
    source = random_encoder()
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision_state(source), path)

    model = ResNetUNet(18, in_channels, 2, base_channels=8, encoder_width=8, encoder_weights=path)

    assert model.encoder.conv1.weight.shape == (8, in_channels, 7, 7)
    # A gray image in every channel gives the RGB network's activations on that gray image.
    gray = torch.randn(1, 1, 32, 32)
    adapted = outputs(model.encoder, gray.repeat(1, in_channels, 1, 1))
    expected = outputs(source, gray.repeat(1, 3, 1, 1))
    for got, want in zip(adapted, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_a_file_of_another_depth_names_missing_and_unexpected_keys(tmp_path: Path) -> None:
    deeper = tmp_path / "resnet50.pth"
    torch.save(torchvision_state(random_encoder(50)), deeper)
    shallower = tmp_path / "resnet18.pth"
    torch.save(torchvision_state(random_encoder(18)), shallower)

    with pytest.raises(EncoderWeightsError) as caught:
        ResNetUNet(18, 3, 2, base_channels=8, encoder_width=8, encoder_weights=deeper)
    message = str(caught.value)
    assert "resnet50.pth does not hold ResNet-18 weights in torchvision's layout" in message
    assert "unexpected layer1.0.bn3.bias" in message
    assert "fc." not in message  # the classifier is ignored, never reported

    with pytest.raises(EncoderWeightsError, match=r"ResNet-34 .*missing layer1\.2\.bn1\.bias"):
        ResNetUNet(34, 3, 2, base_channels=8, encoder_width=8, encoder_weights=shallower)


def test_a_vgg_file_is_refused_with_the_keys_it_lacks(tmp_path: Path) -> None:
    path = tmp_path / "vgg16_bn.pth"
    torch.save(
        {"features.0.weight": torch.randn(64, 3, 3, 3), "classifier.0.bias": torch.randn(4)}, path
    )

    with pytest.raises(
        EncoderWeightsError, match=r"missing bn1\.bias.*unexpected classifier\.0\.bias"
    ):
        load_resnet_weights(ResNetEncoder(18, width=8), path)


def test_another_width_is_refused_by_shape(tmp_path: Path) -> None:
    path = tmp_path / "wide.pth"
    torch.save(torchvision_state(random_encoder(width=16)), path)

    with pytest.raises(
        EncoderWeightsError, match=r"wrong shape for ResNet-18: .*\(16, 3, 7, 7\) != \(8, 3, 7, 7\)"
    ):
        load_resnet_weights(ResNetEncoder(18, width=8), path)


def test_missing_and_foreign_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(EncoderWeightsError, match=r"nowhere\.pth does not exist"):
        load_resnet_weights(ResNetEncoder(18, width=8), tmp_path / "nowhere.pth")
    notes = tmp_path / "notes.pth"
    notes.write_text("not weights")
    with pytest.raises(EncoderWeightsError, match=r"notes\.pth is not a PyTorch state dict"):
        load_resnet_weights(ResNetEncoder(18, width=8), notes)


def test_a_model_rebuilt_for_its_checkpoint_does_not_read_the_encoder_file(tmp_path: Path) -> None:
    gone = tmp_path / "moved-away.pth"
    cfg = TrainConfig(
        dataset="d", model="resnet18-unet", base_channels=8, encoder_weights=str(gone)
    )

    with pytest.raises(EncoderWeightsError, match="does not exist"):
        build_model(cfg, in_channels=3, out_channels=2)
    model = build_model(cfg, in_channels=3, out_channels=2, load_encoder_weights=False)
    assert isinstance(model, ResNetUNet)
