"""The `parameters` of a sweep spec: W&B's distributions (and implicit forms) read as Optuna
distributions over TrainConfig keys.

    learning_rate: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-1}
    batch_size: {values: [4, 8]}         # categorical (lists and mappings as values too)
    epochs: {min: 2, max: 5}             # integers: int_uniform; floats: uniform
    loss: {value: ce+dice}               # a constant, not swept
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from optuna.distributions import (
    BaseDistribution,
    CategoricalChoiceType,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from server.sweep.checks import check_keys, is_number, mapping, refuse
from trainer.config import TrainConfig

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
PARAMETER_KEYS = ("values", "value", "distribution", "min", "max", "q")
MAX_VALUES = 1_000


def as_choice(value: Any) -> CategoricalChoiceType:
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
        return as_choice(config_value) if self.values is not None else config_value


def _bounds(raw: Mapping[str, Any], field: str) -> tuple[float, float]:
    low, high = raw.get("min"), raw.get("max")
    if not is_number(low) or not is_number(high):
        raise refuse(field, f"min and max must be finite numbers, got {low!r} and {high!r}")
    assert isinstance(low, int | float) and isinstance(high, int | float)
    if low >= high:
        raise refuse(field, f"min must be below max, got {low!r} and {high!r}")
    return low, high


def _values(raw: Mapping[str, Any], field: str) -> tuple[Any, ...]:
    values = raw.get("values")
    if not isinstance(values, list) or not values or len(values) > MAX_VALUES:
        raise refuse(f"{field}.values", f"a list of 1 to {MAX_VALUES} values, got {values!r}")
    choices = [as_choice(value) for value in values]
    if len(set(map(repr, choices))) != len(choices):
        raise refuse(f"{field}.values", "the values must differ from one another")
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
    check_keys(raw, PARAMETER_KEYS, f"{field}.")
    distribution = raw.get("distribution", _implicit_distribution(raw))
    if distribution not in DISTRIBUTIONS:
        raise refuse(
            f"{field}.distribution",
            f"{distribution!r} is not supported; supported: {', '.join(DISTRIBUTIONS)}"
            if distribution is not None
            else "give values, value, min and max, or a distribution",
        )
    if distribution == "constant":
        if "value" not in raw:
            raise refuse(f"{field}.value", "a constant needs a value")
        return key, raw["value"]
    if distribution == "categorical":
        values = _values(raw, field)
        return Parameter(key, CategoricalDistribution([as_choice(v) for v in values]), values)
    return _numeric(key, distribution, raw, field)


def _numeric(key: str, distribution: str, raw: Mapping[str, Any], field: str) -> Parameter:
    """A parameter drawn from a range: `distribution` is one of DISTRIBUTIONS past categorical."""
    low, high = _bounds(raw, field)
    q = raw.get("q")
    if q is not None and (not is_number(q) or q <= 0):
        raise refuse(f"{field}.q", f"a positive number, got {q!r}")
    whole = all(isinstance(value, int) for value in (low, high, q if q is not None else 1))
    if distribution == "int_uniform" and not whole:
        raise refuse(field, "int_uniform needs whole numbers for min, max (and q)")
    if distribution == "log_uniform":  # W&B: min and max are natural logarithms
        low, high, whole, distribution = math.exp(low), math.exp(high), False, "log_uniform_values"
    log = distribution in ("log_uniform_values", "q_log_uniform_values")
    if log and low <= 0:
        raise refuse(f"{field}.min", f"{distribution} needs min above 0, got {low!r}")
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
    raise refuse(
        field,
        "a grid takes values lists (or int_uniform ranges of at most "
        f"{MAX_VALUES} values); use method random or bayes for distributions",
    )


def parse_parameters(
    raw: object, method: Literal["grid", "random", "bayes"]
) -> tuple[tuple[Parameter, ...], dict[str, Any]]:
    """The swept parameters (grids: values only) and the constants (`value`) of `raw`."""
    parameters = mapping(raw, "parameters")
    if not parameters:
        raise refuse("parameters", "name at least one TrainConfig key to sweep")
    allowed = sorted(TrainConfig.model_fields)
    swept: list[Parameter] = []
    constants: dict[str, Any] = {}
    for key, value in parameters.items():
        field = f"parameters.{key}"
        if key not in TrainConfig.model_fields:
            raise refuse(field, f"not a TrainConfig key; allowed keys are: {', '.join(allowed)}")
        described = mapping(value, field)
        if "parameters" in described:
            raise refuse(f"{field}.parameters", "TrainConfig's keys are flat: no nesting")
        parameter = _parameter(key, described, field)
        if isinstance(parameter, tuple):
            constants[parameter[0]] = parameter[1]
        else:
            swept.append(_grid_values(parameter, field) if method == "grid" else parameter)
    if not swept and method != "grid":
        raise refuse("parameters", "sweep at least one key over values or a distribution")
    return tuple(swept), constants
