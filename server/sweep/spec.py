"""A sweep spec, W&B's sweep keys over a base TrainConfig, read into an Optuna search space.

    config: {dataset: shapes, epochs: 3}          # the base TrainConfig of every run
    method: grid | random | bayes                 # bayes = Optuna's TPE sampler
    metric: {name: val/iou, goal: maximize, target: 0.9}   # default: the config's monitor and
                                                  # its direction; target: finish on reaching it
    parameters:
      learning_rate: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-1}
      batch_size: {values: [4, 8]}
      loss: {value: ce+dice}
    early_terminate: {type: hyperband, min_iter: 1, eta: 3}   # or {type: median, ...}
    max_runs: 20      # `run_cap` as W&B spells it; a grid's default is its size
    parallel: 2       # most runs queued or training at once
    seed: 7           # drawn at random (and kept) when absent
    name, tags, queue, priority

A W&B sweep YAML pastes in: its `method`, `metric`, `parameters` and `early_terminate` mean what
they mean there. W&B's keys for its own agent (`program`, `command`, `project`, `entity`,
`description`, `controller`) and the settings without an equivalent here (hyperband's `strict`)
are accepted and ignored, each named in `SweepSpec.ignored`. Any other key is refused by name,
listing the keys there are; so is a parameter TrainConfig lacks. `metric.target` finishes the
sweep once a run's best value of the metric reaches it (`server.sweep.controller`).

A grid runs every combination of its parameters once, in the order the spec lists them (the
last parameter varies fastest), so trial k is always combination k, restarts included.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from optuna.distributions import BaseDistribution
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler, RandomSampler, TPESampler

from server.sweep.checks import check_keys, is_number, mapping, refuse, whole
from server.sweep.early_terminate import EarlyTerminate, parse_early_terminate
from server.sweep.parameters import Parameter, parse_parameters
from trainer.config import TrainConfig

Method = Literal["grid", "random", "bayes"]
Goal = Literal["maximize", "minimize"]

METHODS: tuple[Method, ...] = ("grid", "random", "bayes")
SPEC_KEYS = (
    "config",
    "method",
    "metric",
    "parameters",
    "early_terminate",
    "max_runs",
    "run_cap",
    "parallel",
    "seed",
    "name",
    "tags",
    "queue",
    "priority",
)
WANDB_AGENT_KEYS = ("program", "command", "project", "entity", "description", "controller")
MAX_RUNS = 10_000
MAX_PARALLEL = 256
MAX_NAME = 200
SEED_MAX = 2**32 - 1
DEFAULT_RANDOM_RUNS = 20
"""Runs of a random or bayes sweep whose spec sets no `max_runs` (its space has no end)."""


@dataclass(frozen=True)
class SweepSpec:
    """A checked spec; `stored()` is what the database keeps and `parse_spec` reads back."""

    name: str
    method: Method
    metric: str
    goal: Goal
    config: dict[str, Any]
    parameters: tuple[Parameter, ...]
    constants: dict[str, Any]
    early_terminate: EarlyTerminate | None
    max_runs: int
    parallel: int
    seed: int
    target: float | None = None
    """Finish the sweep once a trial's best value reaches this (at or above it when
    maximizing, at or below when minimizing)."""
    tags: tuple[str, ...] = ()
    queue: str | None = None
    priority: int = 0
    raw: dict[str, Any] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()
    """The W&B keys accepted and ignored, for the caller to see."""

    def distributions(self) -> dict[str, BaseDistribution]:
        return {parameter.key: parameter.distribution for parameter in self.parameters}

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of a grid's values, in order (empty for other methods)."""
        if self.method != "grid":
            return []
        keys = [parameter.key for parameter in self.parameters]
        columns = [parameter.values or () for parameter in self.parameters]
        return [dict(zip(keys, row, strict=True)) for row in itertools.product(*columns)]

    def run_config(self, swept: Mapping[str, Any]) -> dict[str, Any]:
        """The TrainConfig (as a dict) of the run with the `swept` values."""
        return {**self.config, **self.constants, **swept}

    def probe_config(self) -> dict[str, Any]:
        """A run config with each parameter at its first value, checked when the sweep is made."""
        first: dict[str, Any] = {}
        for parameter in self.parameters:
            if parameter.values is not None:
                first[parameter.key] = parameter.values[0]
            else:
                low = getattr(parameter.distribution, "low")  # noqa: B009 (int or float)
                first[parameter.key] = parameter.config_value(low)
        return self.run_config(first)

    def reached(self, value: float | None) -> bool:
        """Whether `value` (a trial's best) reaches the target."""
        if self.target is None or value is None:
            return False
        return value >= self.target if self.goal == "maximize" else value <= self.target

    def pruner(self) -> BasePruner | None:
        return self.early_terminate.pruner() if self.early_terminate else None

    def sampler(self, trial_number: int) -> BaseSampler:
        """The sampler that draws trial `trial_number`: seeded from the sweep's seed and the
        number, so the same history draws the same config, after a restart too."""
        seed = (self.seed * 1_000_003 + trial_number) % (SEED_MAX + 1)
        if self.method == "bayes":
            return TPESampler(seed=seed)
        return RandomSampler(seed=seed)

    def stored(self) -> dict[str, Any]:
        """The spec to keep: as given, with its defaults made explicit (W&B's agent keys out)."""
        kept = {key: value for key, value in self.raw.items() if key not in WANDB_AGENT_KEYS}
        kept.pop("run_cap", None)
        return {
            **kept,
            "name": self.name,
            "metric": {"name": self.metric, "goal": self.goal}
            | ({"target": self.target} if self.target is not None else {}),
            "max_runs": self.max_runs,
            "parallel": self.parallel,
            "seed": self.seed,
        }


def _metric(raw: object, config: Mapping[str, Any]) -> tuple[str, Goal, float | None]:
    default = config.get("monitor", TrainConfig.model_fields["monitor"].default)
    if raw is None:
        name = str(default)
        return name, "minimize" if name.endswith("loss") else "maximize", None
    metric = mapping(raw, "metric")
    check_keys(metric, ("name", "goal", "target"), "metric.")
    target = metric.get("target")
    if target is not None and not is_number(target):
        raise refuse("metric.target", f"a finite number (or left out), got {target!r}")
    name = metric.get("name", default)
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or "\x00" in name:
        raise refuse("metric.name", f"a metric key of 1 to {MAX_NAME} characters, got {name!r}")
    goal = metric.get("goal", "minimize" if name.endswith("loss") else "maximize")
    if goal not in ("maximize", "minimize"):
        raise refuse("metric.goal", f"maximize or minimize, got {goal!r}")
    return name, cast(Goal, goal), float(target) if target is not None else None


def _max_runs(raw: Mapping[str, Any], method: Method, grid_size: int, ignored: list[str]) -> int:
    given = raw.get("max_runs", raw.get("run_cap"))
    if given is None:
        return grid_size if method == "grid" else DEFAULT_RANDOM_RUNS
    runs = whole(given, "max_runs", 1, MAX_RUNS)
    if method == "grid" and runs > grid_size:
        ignored.append(f"max_runs above the grid's {grid_size} combinations")
        return grid_size
    return runs


def parse_spec(raw: Mapping[str, Any]) -> SweepSpec:
    """Check a sweep spec (a parsed YAML or JSON mapping) and read its search space.

    Raises:
        InvalidInput: naming the key at fault and what is allowed there. The runs' configs are
            checked against TrainConfig by the caller (`server.sweep.service`).
    """
    spec = mapping(raw, "spec")
    ignored = [key for key in WANDB_AGENT_KEYS if key in spec]
    check_keys({k: v for k, v in spec.items() if k not in WANDB_AGENT_KEYS}, SPEC_KEYS, "")
    config = dict(mapping(spec.get("config", {}), "config"))
    method = spec.get("method")
    if method not in METHODS:
        raise refuse("method", f"one of {', '.join(METHODS)}, got {method!r}")
    parameters, constants = parse_parameters(spec.get("parameters"), method)
    metric, goal, target = _metric(spec.get("metric"), {**config, **constants})
    grid_size = math.prod(len(p.values or ()) for p in parameters) if method == "grid" else 0
    if method == "grid" and grid_size > MAX_RUNS:
        raise refuse("parameters", f"the grid has {grid_size} combinations; at most {MAX_RUNS}")
    seed = spec.get("seed")
    tags = spec.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise refuse("tags", f"a list of texts, got {tags!r}")
    queue = spec.get("queue")
    if queue is not None and not isinstance(queue, str):
        raise refuse("queue", f"a queue name, got {queue!r}")
    name = spec.get("name") or f"{method} sweep"
    if not isinstance(name, str) or len(name) > MAX_NAME or "\x00" in name:
        raise refuse("name", f"a text of at most {MAX_NAME} characters")
    return SweepSpec(
        name=name,
        method=method,
        metric=metric,
        goal=goal,
        target=target,
        config=config,
        parameters=parameters,
        constants=constants,
        early_terminate=parse_early_terminate(spec.get("early_terminate"), ignored),
        max_runs=_max_runs(spec, method, grid_size, ignored),
        parallel=whole(spec.get("parallel", 1), "parallel", 1, MAX_PARALLEL),
        seed=whole(seed, "seed", 0, SEED_MAX)
        if seed is not None
        else random.SystemRandom().randrange(SEED_MAX + 1),
        tags=tuple(tags),
        queue=queue,
        priority=whole(spec.get("priority", 0), "priority", 0, 9),
        raw=dict(spec),
        ignored=tuple(ignored),
    )
