"""freeze_encoder_epochs: the decoder trains alone first, then the whole model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from tests.trainer.factories import tiny_config
from trainer.checkpoint import load_checkpoint
from trainer.config import ConfigError, validate_config
from trainer.encoder_freeze import (
    encoder_frozen_at,
    freeze_encoder_for_epoch,
    hold_frozen_norms,
    is_frozen_norm,
    set_encoder_frozen,
)
from trainer.loop import TrainingError, fit
from trainer.models.registry import build_model_by_name
from trainer.models.resnet import ResNetEncoder
from trainer.models.resnet_unet import ResNetUNet
from trainer.optim import build_optimizer
from trainer.predict import load_for_inference


def tiny_resnet_unet() -> ResNetUNet:
    torch.manual_seed(0)
    model = build_model_by_name(
        "resnet18-unet", in_channels=3, out_channels=2, base_channels=8, encoder_width=8
    )
    assert isinstance(model, ResNetUNet)
    return model


def snapshot(module: nn.Module) -> dict[str, Tensor]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def changed(before: dict[str, Tensor], module: nn.Module) -> set[str]:
    return {
        key for key, value in module.state_dict().items() if not torch.equal(value, before[key])
    }


def train_epoch(model: ResNetUNet, optimizer: torch.optim.Optimizer, epoch: int, cfg: Any) -> None:
    """What the training loop does each epoch: train mode, the freeze hook, a few steps."""
    model.train()
    freeze_encoder_for_epoch(model, cfg, epoch)
    generator = torch.Generator().manual_seed(epoch)
    for _ in range(2):
        images = torch.randn(4, 3, 32, 32, generator=generator)
        target = torch.randint(0, 2, (4, 32, 32), generator=generator)
        loss = nn.functional.cross_entropy(model(images), target)
        torch.autograd.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_frozen_epochs_leave_encoder_weights_and_statistics_unchanged(optimizer: str) -> None:
    cfg = validate_config(
        {
            "dataset": "d",
            "model": "resnet18-unet",
            "optimizer": optimizer,
            "weight_decay": 0.1,
            "freeze_encoder_epochs": 2,
        }
    )
    model = tiny_resnet_unet()
    optim = build_optimizer(model, cfg)
    encoder_start = snapshot(model.encoder)
    decoder_start = snapshot(model.ups)

    for epoch in (1, 2):
        train_epoch(model, optim, epoch, cfg)
        assert changed(encoder_start, model.encoder) == set(), f"epoch {epoch}"
        assert all(not norm.training for norm in model.encoder.modules() if is_frozen_norm(norm))
    assert changed(decoder_start, model.ups)

    train_epoch(model, optim, 3, cfg)
    moved = changed(encoder_start, model.encoder)
    assert "conv1.weight" in moved
    assert "bn1.running_mean" in moved
    assert "layer4.1.bn2.num_batches_tracked" in moved
    assert all(p.requires_grad for p in model.parameters())
    assert all(module.training for module in model.modules())


def test_frozen_encoder_gets_no_gradient_and_norms_stay_in_eval() -> None:
    model = tiny_resnet_unet()
    model.train()
    assert set_encoder_frozen(model, frozen=True)
    model.train()  # the loop switches modes every epoch; frozen norms are put back
    hold_frozen_norms(model)

    torch.autograd.backward(model(torch.randn(2, 3, 40, 40)).mean())

    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.head.parameters())
    assert not model.encoder.bn1.training
    decoder_norm = next(m for m in model.ups.modules() if isinstance(m, nn.BatchNorm2d))
    assert decoder_norm.training
    assert not set_encoder_frozen(model, frozen=True)  # already frozen: nothing changes
    assert set_encoder_frozen(model, frozen=False)
    assert model.encoder.bn1.training


def test_the_frozen_epochs_depend_only_on_the_epoch_so_resumes_keep_them() -> None:
    cfg = validate_config({"dataset": "d", "model": "resnet34-unet", "freeze_encoder_epochs": 3})
    assert [encoder_frozen_at(cfg, epoch) for epoch in range(1, 6)] == [True] * 3 + [False] * 2
    # A run resumed after epoch 2 starts frozen and unfreezes at epoch 4.
    model = tiny_resnet_unet()
    model.train()
    freeze_encoder_for_epoch(model, cfg, 3)
    assert not any(p.requires_grad for p in model.encoder.parameters())
    freeze_encoder_for_epoch(model, cfg, 4)
    assert all(p.requires_grad for p in model.encoder.parameters())


def test_zero_frozen_epochs_never_touches_the_model() -> None:
    cfg = validate_config({"dataset": "d", "model": "resnet18-unet"})
    model = tiny_resnet_unet()
    for parameter in model.encoder.parameters():
        parameter.requires_grad_(False)  # someone else's choice, left alone
    freeze_encoder_for_epoch(model, cfg, 1)
    assert not any(p.requires_grad for p in model.encoder.parameters())


def test_models_without_an_encoder_are_left_alone() -> None:
    unet = build_model_by_name("unet", in_channels=3, out_channels=2, base_channels=4, depth=2)
    assert not set_encoder_frozen(unet, frozen=True)
    assert all(p.requires_grad for p in unet.parameters())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"model": "unet", "freeze_encoder_epochs": 2},
            r"freeze_encoder_epochs only applies to models with an encoder \(vgg16-unet, "
            r"resnet18-unet, resnet34-unet, resnet50-unet\); model 'unet' has none",
        ),
        (
            {"model": "unet++", "encoder_lr_multiplier": 0.1},
            r"encoder_lr_multiplier only applies .*model 'unet\+\+' has none",
        ),
        (
            {"model": "unet", "encoder_weights": "w.pth", "freeze_encoder_epochs": 1},
            r"encoder_weights, freeze_encoder_epochs only apply",
        ),
        ({"model": "resnet18-unet", "freeze_encoder_epochs": -1}, r"freeze_encoder_epochs"),
        ({"model": "resnet18-unet", "encoder_lr_multiplier": 0}, r"encoder_lr_multiplier"),
    ],
)
def test_encoder_options_are_refused_by_name(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config({"dataset": "d", **overrides})


def test_encoder_options_are_accepted_for_every_encoder_model() -> None:
    for model in ("vgg16-unet", "resnet18-unet", "resnet34-unet", "resnet50-unet"):
        cfg = validate_config(
            {
                "dataset": "d",
                "model": model,
                "freeze_encoder_epochs": 5,
                "encoder_lr_multiplier": 0.1,
            }
        )
        assert cfg.freeze_encoder_epochs == 5


def test_fit_keeps_the_loaded_encoder_through_the_frozen_epochs_and_trains_it_after(
    small_demo_dataset: Path, tmp_path: Path
) -> None:
    torch.manual_seed(3)
    source = ResNetEncoder(18)
    weights = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), weights)
    settings = {
        "model": "resnet18-unet",
        "image_size": 32,
        "encoder_weights": str(weights),
        "freeze_encoder_epochs": 2,
        "encoder_lr_multiplier": 0.5,
    }

    frozen = fit(tiny_config(small_demo_dataset, epochs=2, **settings), out_dir=tmp_path / "run")
    assert frozen.last_metrics["lr/encoder"] == pytest.approx(0.5 * frozen.last_metrics["lr"])
    after_freeze = load_checkpoint(tmp_path / "run" / "last.pt")
    with pytest.raises(TrainingError, match=r"encoder_lr_multiplier=0\.5"):
        fit(
            tiny_config(small_demo_dataset, epochs=3, **{**settings, "encoder_lr_multiplier": 1.0}),
            out_dir=tmp_path / "run",
            resume_from=tmp_path / "run" / "last.pt",
        )
    weights.unlink()  # a resume takes its weights from the checkpoint, not from this file
    resumed = fit(
        tiny_config(small_demo_dataset, epochs=3, **settings),
        out_dir=tmp_path / "run",
        resume_from=tmp_path / "run" / "last.pt",
    )
    after_unfreeze = load_checkpoint(tmp_path / "run" / "last.pt")
    _, model = load_for_inference(tmp_path / "run" / "last.pt", torch.device("cpu"))
    assert model(torch.zeros(1, 3, 32, 32)).shape[2:] == (32, 32)  # without the weights file

    assert frozen.status == resumed.status == "completed"
    encoder = {f"encoder.{key}": value for key, value in source.state_dict().items()}
    assert all(torch.equal(after_freeze.model_state[key], value) for key, value in encoder.items())
    assert not torch.equal(
        after_freeze.model_state["head.weight"], after_unfreeze.model_state["head.weight"]
    )
    moved = {
        key
        for key, value in encoder.items()
        if not torch.equal(after_unfreeze.model_state[key], value)
    }
    assert {"encoder.conv1.weight", "encoder.bn1.running_var"} <= moved
    groups = after_unfreeze.optimizer_state["param_groups"]  # type: ignore[index]
    assert [group["name"] for group in groups] == ["decoder", "encoder"]
    assert groups[1]["lr"] == pytest.approx(0.5 * groups[0]["lr"])
