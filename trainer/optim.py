"""Optimizers and learning-rate schedules, one registry each.

Schedules are stepped once per epoch and set the rate *before* the epoch trains, so the `lr`
reported for an epoch is the rate every one of its steps used (the seed repositories log the
initial rate, or never step MultiStepLR). Warm-up ramps linearly from `learning_rate / (w + 1)`
to `learning_rate` over `warmup_epochs`, then the chosen schedule starts from epoch 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainer.config import TrainConfig
from trainer.models.registry import encoder_of

Params = Iterable[nn.Parameter] | Iterable[dict[str, Any]]
"""Parameters, or parameter groups (dicts with "params" and their own options, e.g. "lr")."""


class UnknownOptimizerError(ValueError):
    """An optimizer or scheduler name that is not registered."""


def _adam(params: Params, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)


def _adamw(params: Params, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)


def _sgd(params: Params, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        params,
        lr=cfg.learning_rate,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov and cfg.momentum > 0,
        weight_decay=cfg.weight_decay,
    )


def _rmsprop(params: Params, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(
        params, lr=cfg.learning_rate, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )


OPTIMIZERS: dict[str, Callable[[Params, TrainConfig], torch.optim.Optimizer]] = {
    "adam": _adam,
    "adamw": _adamw,
    "sgd": _sgd,
    "rmsprop": _rmsprop,
}


def parameter_groups(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    """The model's trainable parameters as optimizer groups, each with a "name".

    One group, "all", unless `cfg.encoder_lr_multiplier` is not 1: then "decoder" (everything
    but the encoder) at `learning_rate` and "encoder" at `learning_rate x multiplier`. The
    decoder comes first because the first group's rate is the run's reported `lr`. A
    multiplier of 1 keeps one group so checkpoints written before the multiplier existed
    still resume.

    Raises:
        ValueError: a multiplier other than 1 on a model without an encoder.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    if cfg.encoder_lr_multiplier == 1.0:
        return [{"params": trainable, "name": "all"}]
    encoder = encoder_of(model)
    if encoder is None:
        raise ValueError(
            f"encoder_lr_multiplier needs a model with an encoder; {type(model).__name__} has none"
        )
    encoder_ids = {id(p) for p in encoder.parameters()}
    return [
        {"params": [p for p in trainable if id(p) not in encoder_ids], "name": "decoder"},
        {
            "params": [p for p in trainable if id(p) in encoder_ids],
            "name": "encoder",
            "lr": cfg.learning_rate * cfg.encoder_lr_multiplier,
        },
    ]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named by `cfg.optimizer` over `parameter_groups(model, cfg)`.

    Every parameter is in it, frozen or not, so freezing the encoder for some epochs
    (`trainer.encoder_freeze`) leaves the groups, and a checkpoint's optimizer state, the same.
    """
    try:
        factory = OPTIMIZERS[cfg.optimizer]
    except KeyError:
        raise UnknownOptimizerError(
            f"unknown optimizer {cfg.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"
        ) from None
    return factory(parameter_groups(model, cfg), cfg)


def _constant(cfg: TrainConfig, epoch: int, horizon: int) -> float:
    return 1.0


def _step(cfg: TrainConfig, epoch: int, horizon: int) -> float:
    return float(cfg.gamma ** (epoch // cfg.step_size))


def _multistep(cfg: TrainConfig, epoch: int, horizon: int) -> float:
    # Milestones count epochs from 1, like the rest of the user-facing numbering.
    passed = sum(1 for milestone in cfg.milestones if epoch + 1 > milestone)
    return float(cfg.gamma**passed)


def _floor_ratio(cfg: TrainConfig) -> float:
    return min(cfg.min_lr / cfg.learning_rate, 1.0)


def _cosine(cfg: TrainConfig, epoch: int, horizon: int) -> float:
    floor = _floor_ratio(cfg)
    progress = epoch / max(horizon - 1, 1)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _poly(cfg: TrainConfig, epoch: int, horizon: int) -> float:
    floor = _floor_ratio(cfg)
    remaining = max(1.0 - epoch / max(horizon, 1), 0.0)
    return float(floor + (1.0 - floor) * remaining**cfg.poly_power)


LrShape = Callable[[TrainConfig, int, int], float]
"""Multiplier of the base rate at a zero-based epoch of a schedule lasting `horizon` epochs."""

SCHEDULE_SHAPES: dict[str, LrShape] = {
    "constant": _constant,
    "step": _step,
    "multistep": _multistep,
    "cosine": _cosine,
    "poly": _poly,
    "plateau": _constant,
}


@dataclass
class PlateauState:
    """ReduceLROnPlateau on the monitored validation metric, kept resumable."""

    best: float | None = None
    bad_epochs: int = 0
    factor: float = 1.0


def lr_scale(cfg: TrainConfig, world_size: int) -> float:
    """Multiplier of the whole rate curve for `cfg.lr_scaling` on `world_size` processes.

    factor = world_size x grad_accum_steps, the effective batch over `batch_size`: `linear`
    returns it, `sqrt` its square root, `none` 1.
    """
    factor = world_size * cfg.grad_accum_steps
    return {"none": 1.0, "linear": float(factor), "sqrt": math.sqrt(factor)}[cfg.lr_scaling]


class LrSchedule:
    """Sets the learning rate of every parameter group once per epoch.

    Call `apply(epoch)` before training epoch `epoch` (1-based); it returns the rate used.
    Each group keeps its own base rate (the encoder's is `learning_rate x
    encoder_lr_multiplier`) and every group gets the same factor, so warm-up, schedules and
    plateau decays keep the groups' ratio.
    For `plateau`, call `observe(value)` with the monitored metric after validation.
    `scale` (see `lr_scale`) multiplies every rate set; it belongs to the run, not to the
    schedule's state, so a run resumed on another number of processes gets its own.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, cfg: TrainConfig, *, scale: float = 1.0
    ) -> None:
        if cfg.scheduler not in SCHEDULE_SHAPES:
            raise UnknownOptimizerError(
                f"unknown scheduler {cfg.scheduler!r}; choose one of {', '.join(SCHEDULE_SHAPES)}"
            )
        self._optimizer = optimizer
        self._cfg = cfg
        self._shape = SCHEDULE_SHAPES[cfg.scheduler]
        self._base_rates = [float(group["lr"]) for group in optimizer.param_groups]
        self._scale = scale
        self.plateau = PlateauState()

    def factor_at(self, epoch: int) -> float:
        """Multiplier of the base rate for 1-based `epoch`."""
        cfg = self._cfg
        warmup = cfg.warmup_epochs
        if epoch <= warmup:
            return epoch / (warmup + 1)
        factor = self._shape(cfg, epoch - warmup - 1, max(cfg.epochs - warmup, 1))
        if cfg.scheduler == "plateau":
            factor *= self.plateau.factor
        return max(factor, _floor_ratio(cfg)) if cfg.scheduler != "constant" else factor

    def apply(self, epoch: int) -> float:
        """Set the rate for `epoch` on every group; returns the first group's rate."""
        factor = self.factor_at(epoch) * self._scale
        for group, base in zip(self._optimizer.param_groups, self._base_rates, strict=True):
            group["lr"] = base * factor
        return float(self._optimizer.param_groups[0]["lr"])

    def observe(self, value: float, *, mode: str) -> None:
        """Feed the epoch's monitored metric to the plateau rule; a no-op for other schedules."""
        if self._cfg.scheduler != "plateau" or not math.isfinite(value):
            return
        state = self.plateau
        improved = state.best is None or (
            value < state.best if mode == "min" else value > state.best
        )
        if improved:
            state.best = value
            state.bad_epochs = 0
            return
        state.bad_epochs += 1
        if state.bad_epochs > self._cfg.plateau_patience:
            state.factor *= self._cfg.gamma
            state.bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the same curve after a resume."""
        return {
            "base_rates": list(self._base_rates),
            "plateau_best": self.plateau.best,
            "plateau_bad_epochs": self.plateau.bad_epochs,
            "plateau_factor": self.plateau.factor,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._base_rates = [float(rate) for rate in state["base_rates"]]
        self.plateau = PlateauState(
            best=state["plateau_best"],
            bad_epochs=int(state["plateau_bad_epochs"]),
            factor=float(state["plateau_factor"]),
        )
