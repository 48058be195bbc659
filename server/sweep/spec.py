"""A sweep spec, W&B's sweep keys over a base TrainConfig, read into an Optuna search space.

    config: {dataset: shapes, epochs: 3}          # the base TrainConfig of every run
    method: grid | random | bayes                 # bayes = Optuna's TPE sampler
    metric: {name: val/iou, goal: maximize}       # default: the config's monitor and its direction
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
`description`, `controller`) and the settings without an equivalent here (`metric.target`,
hyperband's `strict`) are accepted and ignored, each named in `SweepSpec.ignored`. Any
other key is refused by name, listing the keys there are; so is a parameter TrainConfig lacks.

A grid runs every combination of its parameters once, in the order the spec lists them (the
last parameter varies fastest), so trial k is always combination k, restarts included.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from optuna.distributions import (
    BaseDistribution,
    CategoricalChoiceType,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.pruners import BasePruner, MedianPruner, SuccessiveHalvingPruner
from optuna.samplers import BaseSampler, RandomSampler, TPESampler

from server.errors import InvalidInput
from trainer.config import TrainConfig

Method = Literal["grid", "random", "bayes"]
Goal = Literal["maximize", "minimize"]

METHODS: tuple[Method, ...] = ("grid", "random", "bayes")
DISTRIBUTIONS = (
    "constant",
    "categorical",
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform",
    "log_uniform_values",
    "q_log_uniform_values",
)
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
PARAMETER_KEYS = ("values", "value", "distribution", "min", "max", "q")
EARLY_TERMINATE_KEYS = {
    "hyperband": ("type", "min_iter", "max_iter", "s", "eta"),
    "median": ("type", "min_iter", "n_startup_trials"),
}
EARLY_TERMINATE_IGNORED = ("strict",)
MAX_RUNS = 10_000
MAX_PARALLEL = 256
MAX_VALUES = 1_000
MAX_NAME = 200
SEED_MAX = 2**32 - 1
DEFAULT_RANDOM_RUNS = 20
"""Runs of a random or bayes sweep whose spec sets no `max_runs` (its space has no end)."""


def _refuse(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", [{"field": field, "message": message}])


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _refuse(field, f"a whole number from {low} to {high}, got {value!r}")
    return value


def _choice(value: Any) -> CategoricalChoiceType:
    """`value` as an Optuna categorical choice: scalars as they are, lists and mappings as JSON."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class Parameter:
    """One swept TrainConfig key and the distribution its values come from."""

    key: str
    distribution: BaseDistribution
    values: tuple[Any, ...] | None = None
    """A categorical's values as the config takes them (lists stay lists)."""
    q: float | None = None
    """A `q_log_uniform_values` draw is rounded to a multiple of q."""

    def config_value(self, sampled: Any) -> Any:
        """The config's value for what Optuna sampled."""
        if self.values is not None:
            assert isinstance(self.distribution, CategoricalDistribution)
            return self.values[int(self.distribution.to_internal_repr(sampled))]
        if self.q is not None:
            assert isinstance(self.distribution, FloatDistribution)
            rounded = round(float(sampled) / self.q) * self.q
            return min(max(rounded, self.distribution.low), self.distribution.high)
        return sampled

    def sampled_value(self, config_value: Any) -> Any:
        """What Optuna is told was sampled when the config holds `config_value`."""
        return _choice(config_value) if self.values is not None else config_value


@dataclass(frozen=True)
class EarlyTerminate:
    """W&B's `early_terminate`, as an Optuna pruner fed each run's epoch metric.

    `hyperband` means what it means in W&B: runs are compared at the epochs min_iter * eta^k
    (up to `max_iter`), and a run outside the best 1/eta of those that reached such an epoch is
    stopped: asynchronous successive halving, Optuna's `SuccessiveHalvingPruner`. `median`
    stops a run whose epoch value is below the median of the finished runs' at that epoch, from
    epoch `min_iter` on, once `n_startup_trials` runs have finished (Optuna's `MedianPruner`).
    """

    type: Literal["hyperband", "median"]
    min_iter: int = 1
    max_iter: int | None = None
    eta: int = 3
    n_startup_trials: int = 5

    def pruner(self) -> BasePruner:
        if self.type == "median":
            return MedianPruner(
                n_startup_trials=self.n_startup_trials, n_warmup_steps=self.min_iter
            )
        return SuccessiveHalvingPruner(
            min_resource=self.min_iter, reduction_factor=self.eta, min_early_stopping_rate=0
        )

    def rung_epochs(self, last: int) -> list[int]:
        """hyperband: the epochs up to `last` at which runs are compared."""
        epochs, epoch = [], self.min_iter
        while epoch <= last and (self.max_iter is None or epoch <= self.max_iter):
            epochs.append(epoch)
            epoch *= self.eta
        return epochs

    def judged(
        self, curve: Mapping[int, float], *, running: bool
    ) -> tuple[dict[int, float], dict[str, Any]]:
        """The epoch values and Optuna system attributes a rebuilt trial carries, so that the
        pruner decides as if it had judged every epoch as it came.

        For hyperband, successive halving keeps each trial's value at each rung it passed
        (`completed_rung_<k>`, read at its first epoch at or past the rung); a training trial's
        latest rung is left for the pruner to judge, on the value of the epoch that reached it,
        so that every pass gives the same answer until the next rung.
        """
        values = dict(curve)
        if self.type != "hyperband" or not values:
            return values, {}
        epochs = sorted(values)
        reached = [
            (rung, next(epoch for epoch in epochs if epoch >= step))
            for rung, step in enumerate(self.rung_epochs(epochs[-1]))
        ]
        if running and reached:
            _, judged_at = reached.pop()
            values = {epoch: value for epoch, value in values.items() if epoch <= judged_at}
        return values, {f"completed_rung_{rung}": values[epoch] for rung, epoch in reached}


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
            "metric": {"name": self.metric, "goal": self.goal},
            "max_runs": self.max_runs,
            "parallel": self.parallel,
            "seed": self.seed,
        }


def _check_keys(raw: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in raw:
        if key not in allowed:
            raise _refuse(
                f"{where}{key}" if where else str(key),
                f"unknown key {key!r}; allowed keys are: {', '.join(allowed)}",
            )


def _mapping(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise _refuse(field, f"expected a mapping, got {type(value).__name__}")
    return value


def _bounds(raw: Mapping[str, Any], field: str) -> tuple[float, float]:
    low, high = raw.get("min"), raw.get("max")
    if not _is_number(low) or not _is_number(high):
        raise _refuse(field, f"min and max must be finite numbers, got {low!r} and {high!r}")
    assert isinstance(low, int | float) and isinstance(high, int | float)
    if low >= high:
        raise _refuse(field, f"min must be below max, got {low!r} and {high!r}")
    return low, high


def _values(raw: Mapping[str, Any], field: str) -> tuple[Any, ...]:
    values = raw.get("values")
    if not isinstance(values, list) or not values or len(values) > MAX_VALUES:
        raise _refuse(f"{field}.values", f"a list of 1 to {MAX_VALUES} values, got {values!r}")
    choices = [_choice(value) for value in values]
    if len(set(map(repr, choices))) != len(choices):
        raise _refuse(f"{field}.values", "the values must differ from one another")
    return tuple(values)


def _implicit_distribution(raw: Mapping[str, Any]) -> str | None:
    if "values" in raw:
        return "categorical"
    if "value" in raw:
        return "constant"
    if "min" in raw or "max" in raw:
        ints = all(isinstance(raw.get(bound), int) for bound in ("min", "max"))
        return "int_uniform" if ints else "uniform"
    return None


def _parameter(key: str, raw: Mapping[str, Any], field: str) -> Parameter | tuple[str, Any]:
    """The parameter `raw` describes, or `(key, value)` for a constant."""
    _check_keys(raw, PARAMETER_KEYS, f"{field}.")
    distribution = raw.get("distribution", _implicit_distribution(raw))
    if distribution not in DISTRIBUTIONS:
        raise _refuse(
            f"{field}.distribution",
            f"{distribution!r} is not supported; supported: {', '.join(DISTRIBUTIONS)}"
            if distribution is not None
            else "give values, value, min and max, or a distribution",
        )
    if distribution == "constant":
        if "value" not in raw:
            raise _refuse(f"{field}.value", "a constant needs a value")
        return key, raw["value"]
    if distribution == "categorical":
        values = _values(raw, field)
        return Parameter(key, CategoricalDistribution([_choice(v) for v in values]), values)
    return _numeric(key, distribution, raw, field)


def _numeric(key: str, distribution: str, raw: Mapping[str, Any], field: str) -> Parameter:
    """A parameter drawn from a range: `distribution` is one of DISTRIBUTIONS past categorical."""
    low, high = _bounds(raw, field)
    q = raw.get("q")
    if q is not None and (not _is_number(q) or q <= 0):
        raise _refuse(f"{field}.q", f"a positive number, got {q!r}")
    whole = all(isinstance(value, int) for value in (low, high, q if q is not None else 1))
    if distribution == "int_uniform" and not whole:
        raise _refuse(field, "int_uniform needs whole numbers for min, max (and q)")
    if distribution == "log_uniform":  # W&B: min and max are natural logarithms
        low, high, whole, distribution = math.exp(low), math.exp(high), False, "log_uniform_values"
    log = distribution in ("log_uniform_values", "q_log_uniform_values")
    if log and low <= 0:
        raise _refuse(f"{field}.min", f"{distribution} needs min above 0, got {low!r}")
    if distribution == "uniform":
        return Parameter(key, FloatDistribution(low, high))
    if whole and (not log or (q or 1) == 1):
        step = 1 if log else int(q or 1)
        return Parameter(key, IntDistribution(int(low), int(high), log=log, step=step))
    if distribution == "q_uniform":
        return Parameter(key, FloatDistribution(low, high, step=float(q or 1.0)))
    rounding = float(q) if q is not None and distribution == "q_log_uniform_values" else None
    return Parameter(key, FloatDistribution(low, high, log=True), q=rounding)


def _grid_values(parameter: Parameter, field: str) -> Parameter:
    """A grid's parameter: categorical values, or the whole numbers of an int range."""
    if parameter.values is not None:
        return parameter
    distribution = parameter.distribution
    if isinstance(distribution, IntDistribution) and not distribution.log:
        numbers = range(distribution.low, distribution.high + 1, distribution.step)
        if len(numbers) <= MAX_VALUES:
            values = tuple(numbers)
            return Parameter(parameter.key, CategoricalDistribution(list(values)), values=values)
    raise _refuse(
        field,
        "a grid takes values lists (or int_uniform ranges of at most "
        f"{MAX_VALUES} values); use method random or bayes for distributions",
    )


def _parameters(raw: object, method: Method) -> tuple[tuple[Parameter, ...], dict[str, Any]]:
    parameters = _mapping(raw, "parameters")
    if not parameters:
        raise _refuse("parameters", "name at least one TrainConfig key to sweep")
    allowed = sorted(TrainConfig.model_fields)
    swept: list[Parameter] = []
    constants: dict[str, Any] = {}
    for key, value in parameters.items():
        field = f"parameters.{key}"
        if key not in TrainConfig.model_fields:
            raise _refuse(field, f"not a TrainConfig key; allowed keys are: {', '.join(allowed)}")
        described = _mapping(value, field)
        if "parameters" in described:
            raise _refuse(f"{field}.parameters", "TrainConfig's keys are flat: no nesting")
        parameter = _parameter(key, described, field)
        if isinstance(parameter, tuple):
            constants[parameter[0]] = parameter[1]
        else:
            swept.append(_grid_values(parameter, field) if method == "grid" else parameter)
    if not swept and method != "grid":
        raise _refuse("parameters", "sweep at least one key over values or a distribution")
    return tuple(swept), constants


def _metric(raw: object, config: Mapping[str, Any], ignored: list[str]) -> tuple[str, Goal]:
    default = config.get("monitor", TrainConfig.model_fields["monitor"].default)
    if raw is None:
        name = str(default)
        return name, "minimize" if name.endswith("loss") else "maximize"
    metric = _mapping(raw, "metric")
    _check_keys(metric, ("name", "goal", "target"), "metric.")
    if "target" in metric:
        ignored.append("metric.target")
    name = metric.get("name", default)
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or "\x00" in name:
        raise _refuse("metric.name", f"a metric key of 1 to {MAX_NAME} characters, got {name!r}")
    goal = metric.get("goal", "minimize" if name.endswith("loss") else "maximize")
    if goal not in ("maximize", "minimize"):
        raise _refuse("metric.goal", f"maximize or minimize, got {goal!r}")
    return name, cast(Goal, goal)


def _early_terminate(raw: object, ignored: list[str]) -> EarlyTerminate | None:
    if raw is None:
        return None
    spec = _mapping(raw, "early_terminate")
    kind = spec.get("type")
    if kind not in EARLY_TERMINATE_KEYS:
        raise _refuse("early_terminate.type", f"hyperband or median, got {kind!r}")
    for key in EARLY_TERMINATE_IGNORED:
        if key in spec:
            ignored.append(f"early_terminate.{key}")
    known = {key: value for key, value in spec.items() if key not in EARLY_TERMINATE_IGNORED}
    _check_keys(known, EARLY_TERMINATE_KEYS[kind], "early_terminate.")
    options: dict[str, Any] = {}
    for key, low in (("min_iter", 1), ("max_iter", 1), ("eta", 2), ("n_startup_trials", 0)):
        if key in known:
            options[key] = _whole(known[key], f"early_terminate.{key}", low, MAX_RUNS)
    brackets = _whole(known.get("s", 1), "early_terminate.s", 1, 32)
    if "min_iter" not in options and "max_iter" in options:  # W&B: rungs at max_iter / eta^k
        options["min_iter"] = max(options["max_iter"] // options.get("eta", 3) ** brackets, 1)
    return EarlyTerminate(type=kind, **options)


def _max_runs(raw: Mapping[str, Any], method: Method, grid_size: int, ignored: list[str]) -> int:
    given = raw.get("max_runs", raw.get("run_cap"))
    if given is None:
        return grid_size if method == "grid" else DEFAULT_RANDOM_RUNS
    runs = _whole(given, "max_runs", 1, MAX_RUNS)
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
    spec = _mapping(raw, "spec")
    ignored = [key for key in WANDB_AGENT_KEYS if key in spec]
    _check_keys({k: v for k, v in spec.items() if k not in WANDB_AGENT_KEYS}, SPEC_KEYS, "")
    config = dict(_mapping(spec.get("config", {}), "config"))
    method = spec.get("method")
    if method not in METHODS:
        raise _refuse("method", f"one of {', '.join(METHODS)}, got {method!r}")
    parameters, constants = _parameters(spec.get("parameters"), method)
    metric, goal = _metric(spec.get("metric"), {**config, **constants}, ignored)
    grid_size = math.prod(len(p.values or ()) for p in parameters) if method == "grid" else 0
    if method == "grid" and grid_size > MAX_RUNS:
        raise _refuse("parameters", f"the grid has {grid_size} combinations; at most {MAX_RUNS}")
    seed = spec.get("seed")
    tags = spec.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise _refuse("tags", f"a list of texts, got {tags!r}")
    queue = spec.get("queue")
    if queue is not None and not isinstance(queue, str):
        raise _refuse("queue", f"a queue name, got {queue!r}")
    name = spec.get("name") or f"{method} sweep"
    if not isinstance(name, str) or len(name) > MAX_NAME or "\x00" in name:
        raise _refuse("name", f"a text of at most {MAX_NAME} characters")
    return SweepSpec(
        name=name,
        method=method,
        metric=metric,
        goal=goal,
        config=config,
        parameters=parameters,
        constants=constants,
        early_terminate=_early_terminate(spec.get("early_terminate"), ignored),
        max_runs=_max_runs(spec, method, grid_size, ignored),
        parallel=_whole(spec.get("parallel", 1), "parallel", 1, MAX_PARALLEL),
        seed=_whole(seed, "seed", 0, SEED_MAX)
        if seed is not None
        else random.SystemRandom().randrange(SEED_MAX + 1),
        tags=tuple(tags),
        queue=queue,
        priority=_whole(spec.get("priority", 0), "priority", 0, 9),
        raw=dict(spec),
        ignored=tuple(ignored),
    )
