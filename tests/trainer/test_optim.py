from __future__ import annotations

from typing import Any

import pytest
import torch

from trainer.config import validate_config
from trainer.models.registry import build_model_by_name
from trainer.optim import LrSchedule, build_optimizer


def _schedule(**overrides: Any) -> tuple[torch.optim.Optimizer, LrSchedule]:
    cfg = validate_config({"dataset": "d", "learning_rate": 0.1, "min_lr": 0.0, **overrides})
    model = torch.nn.Linear(2, 2)
    optimizer = build_optimizer(model, cfg)
    return optimizer, LrSchedule(optimizer, cfg)


def _rates(schedule: LrSchedule, epochs: int) -> list[float]:
    return [schedule.apply(epoch) for epoch in range(1, epochs + 1)]


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop"])
def test_every_optimizer_builds_and_steps(name: str) -> None:
    optimizer, _ = _schedule(optimizer=name, nesterov=True)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_logged_rate_is_the_rate_set_on_the_optimizer() -> None:
    optimizer, schedule = _schedule(scheduler="cosine", epochs=5)
    for epoch in range(1, 6):
        assert schedule.apply(epoch) == optimizer.param_groups[0]["lr"]


def test_multistep_actually_decays_at_its_milestones() -> None:
    _, schedule = _schedule(scheduler="multistep", milestones=[2, 4], gamma=0.5, epochs=5)
    assert _rates(schedule, 5) == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_step_schedule() -> None:
    _, schedule = _schedule(scheduler="step", step_size=2, gamma=0.1, epochs=5)
    assert _rates(schedule, 5) == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])


def test_cosine_with_warmup_ramps_then_decays_to_the_floor() -> None:
    _, schedule = _schedule(scheduler="cosine", warmup_epochs=2, epochs=6, min_lr=0.001)
    rates = _rates(schedule, 6)
    assert rates[:2] == pytest.approx([0.1 / 3, 0.2 / 3])
    assert rates[2] == pytest.approx(0.1)
    assert rates[-1] == pytest.approx(0.001)
    assert rates[2:] == sorted(rates[2:], reverse=True)


def test_poly_decays_monotonically() -> None:
    _, schedule = _schedule(scheduler="poly", epochs=4, poly_power=1.0)
    assert _rates(schedule, 4) == pytest.approx([0.1, 0.075, 0.05, 0.025])


def test_plateau_decays_after_patience_and_survives_a_resume() -> None:
    optimizer, schedule = _schedule(scheduler="plateau", plateau_patience=1, gamma=0.5, epochs=10)
    observed = [0.5, 0.6, 0.6, 0.6]
    for epoch, value in enumerate(observed, start=1):
        schedule.apply(epoch)
        schedule.observe(value, mode="max")
    assert schedule.apply(5) == pytest.approx(0.05)

    _, resumed = _schedule(scheduler="plateau", plateau_patience=1, gamma=0.5, epochs=10)
    resumed.load_state_dict(schedule.state_dict())
    assert resumed.apply(5) == pytest.approx(0.05)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


def _encoder_model_schedule(**overrides: Any) -> tuple[torch.optim.Optimizer, LrSchedule]:
    cfg = validate_config(
        {"dataset": "d", "model": "resnet18-unet", "learning_rate": 0.1, "min_lr": 0.0, **overrides}
    )
    torch.manual_seed(0)
    model = build_model_by_name(
        "resnet18-unet", in_channels=3, out_channels=2, base_channels=4, encoder_width=4
    )
    optimizer = build_optimizer(model, cfg)
    encoder_ids = {id(p) for p in model.encoder.parameters()}  # type: ignore[union-attr]
    groups = {group["name"]: group for group in optimizer.param_groups}
    if "encoder" in groups:
        assert {id(p) for p in groups["encoder"]["params"]} == encoder_ids
        assert not encoder_ids & {id(p) for p in groups["decoder"]["params"]}
        assert sum(len(group["params"]) for group in optimizer.param_groups) == len(
            list(model.parameters())
        )
    return optimizer, LrSchedule(optimizer, cfg)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop"])
def test_encoder_lr_multiplier_gives_the_encoder_its_own_group(name: str) -> None:
    optimizer, _ = _encoder_model_schedule(optimizer=name, encoder_lr_multiplier=0.1)
    assert [group["name"] for group in optimizer.param_groups] == ["decoder", "encoder"]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)
    assert optimizer.param_groups[1]["lr"] == pytest.approx(0.01)


def test_warmup_and_schedule_keep_the_encoder_ratio_and_survive_a_resume() -> None:
    overrides = {"encoder_lr_multiplier": 0.25, "warmup_epochs": 2, "epochs": 6}
    optimizer, schedule = _encoder_model_schedule(**overrides)
    for epoch in range(1, 5):
        reported = schedule.apply(epoch)
        decoder, encoder = (group["lr"] for group in optimizer.param_groups)
        assert reported == decoder
        assert encoder == pytest.approx(0.25 * decoder)

    resumed_optimizer, resumed = _encoder_model_schedule(**overrides)
    resumed_optimizer.load_state_dict(optimizer.state_dict())
    resumed.load_state_dict(schedule.state_dict())
    resumed.apply(5)
    schedule.apply(5)
    assert [g["lr"] for g in resumed_optimizer.param_groups] == pytest.approx(
        [g["lr"] for g in optimizer.param_groups]
    )


def test_a_multiplier_of_one_keeps_a_single_group() -> None:
    optimizer, _ = _encoder_model_schedule()
    assert len(optimizer.param_groups) == 1
