"""Sweep specs: W&B's keys and distributions read into Optuna's search space, unknown keys refused
by name, grids enumerated, and seeded random and bayes draws repeatable."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.pruners import MedianPruner, SuccessiveHalvingPruner

from server.errors import InvalidInput
from server.sweep.spec import DEFAULT_RANDOM_RUNS, SweepSpec, parse_spec

WANDB_YAML = """
program: train.py
project: segmentation
entity: lab
method: bayes
metric:
  name: val/iou
  goal: maximize
  target: 0.9
parameters:
  learning_rate:
    distribution: log_uniform_values
    min: 0.0001
    max: 0.1
  batch_size:
    values: [4, 8, 16]
  optimizer:
    value: adamw
  weight_decay:
    min: 0.0
    max: 0.1
  epochs:
    min: 2
    max: 5
early_terminate:
  type: hyperband
  min_iter: 1
  eta: 2
  s: 2
run_cap: 12
"""


def spec(parameters: dict[str, Any], method: str = "random", **extra: Any) -> SweepSpec:
    return parse_spec(
        {"config": {"dataset": "shapes"}, "method": method, "parameters": parameters, **extra}
    )


def refused(raw: dict[str, Any]) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_spec(raw)
    return caught.value.message


def test_a_wandb_yaml_pastes_in() -> None:
    parsed = parse_spec({"config": {"dataset": "shapes"}, **yaml.safe_load(WANDB_YAML)})
    assert (parsed.method, parsed.metric, parsed.goal, parsed.max_runs) == (
        "bayes",
        "val/iou",
        "maximize",
        12,
    )
    distributions = parsed.distributions()
    assert distributions["learning_rate"] == FloatDistribution(1e-4, 0.1, log=True)
    assert distributions["batch_size"] == CategoricalDistribution([4, 8, 16])
    assert distributions["weight_decay"] == FloatDistribution(0.0, 0.1)  # implicit uniform
    assert distributions["epochs"] == IntDistribution(2, 5)  # implicit int_uniform
    assert parsed.constants == {"optimizer": "adamw"}
    assert "optimizer" not in distributions
    pruner = parsed.pruner()
    assert isinstance(pruner, SuccessiveHalvingPruner)
    assert set(parsed.ignored) == {"program", "project", "entity"}
    assert parsed.target == 0.9
    stored = parsed.stored()
    assert "program" not in stored and stored["max_runs"] == 12
    again = parse_spec(stored)  # what the database keeps reads back the same
    assert again.distributions() == distributions and again.seed == parsed.seed
    assert again.target == 0.9


@pytest.mark.parametrize(
    ("goal", "value", "reached"),
    [
        ("maximize", 0.9, True),
        ("maximize", 0.95, True),
        ("maximize", 0.89, False),
        ("minimize", 0.9, True),
        ("minimize", 0.95, False),
        ("maximize", None, False),
    ],
)
def test_metric_target_is_reached_in_the_goals_direction(
    goal: str, value: float | None, reached: bool
) -> None:
    parsed = spec(
        {"learning_rate": {"min": 1e-4, "max": 1e-1}},
        metric={"name": "val/iou", "goal": goal, "target": 0.9},
    )
    assert parsed.reached(value) is reached
    assert spec({"learning_rate": {"min": 1e-4, "max": 1e-1}}).reached(1.0) is False


@pytest.mark.parametrize("target", ["high", True, float("nan"), [1]])
def test_a_metric_target_that_is_no_number_is_refused(target: object) -> None:
    message = refused(
        {
            "config": {"dataset": "shapes"},
            "method": "random",
            "parameters": {"learning_rate": {"min": 1e-4, "max": 1e-1}},
            "metric": {"name": "val/iou", "target": target},
        }
    )
    assert message.startswith("metric.target: a finite number")


@pytest.mark.parametrize(
    ("described", "expected"),
    [
        ({"distribution": "uniform", "min": 0.1, "max": 0.5}, FloatDistribution(0.1, 0.5)),
        ({"distribution": "int_uniform", "min": 1, "max": 4}, IntDistribution(1, 4)),
        (
            {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.25},
            FloatDistribution(0.0, 1.0, step=0.25),
        ),
        (
            {"distribution": "q_uniform", "min": 2, "max": 10, "q": 2},
            IntDistribution(2, 10, step=2),
        ),
        (
            {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2},
            FloatDistribution(1e-4, 1e-2, log=True),
        ),
        (
            {"distribution": "log_uniform", "min": -4.0, "max": 0.0},
            FloatDistribution(math.exp(-4.0), 1.0, log=True),
        ),
        (
            {"distribution": "q_log_uniform_values", "min": 1e-4, "max": 1e-1, "q": 1e-4},
            FloatDistribution(1e-4, 1e-1, log=True),
        ),
        (
            {"distribution": "q_log_uniform_values", "min": 8, "max": 64, "q": 1},
            IntDistribution(8, 64, log=True),
        ),
        (
            {"distribution": "categorical", "values": ["ce", "dice"]},
            CategoricalDistribution(["ce", "dice"]),
        ),
        ({"min": 0.5, "max": 2}, FloatDistribution(0.5, 2)),
    ],
)
def test_each_distribution(described: dict[str, Any], expected: object) -> None:
    assert spec({"learning_rate": described}).distributions()["learning_rate"] == expected


def test_q_log_uniform_values_rounds_to_q() -> None:
    [parameter] = spec(
        {
            "learning_rate": {
                "distribution": "q_log_uniform_values",
                "min": 1e-3,
                "max": 1e-1,
                "q": 1e-3,
            }
        }
    ).parameters
    assert parameter.config_value(0.01234) == pytest.approx(0.012)


def test_list_values_are_categorical_choices_given_back_as_lists() -> None:
    [parameter] = spec({"image_size": {"values": [[32, 32], [64, 48]]}}).parameters
    sampled = parameter.distribution.to_external_repr(1)
    assert parameter.config_value(sampled) == [64, 48]
    assert parameter.sampled_value([64, 48]) == sampled


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (
            {"program": "x", "method": "grid", "parameters": {"lr": {"values": [1]}}},
            "parameters.lr",
        ),
        ({"method": "grid", "parameters": {"epochs": {"values": [1]}}, "budget": 3}, "budget"),
        ({"method": "hill", "parameters": {"epochs": {"values": [1]}}}, "method"),
        ({"method": "random", "parameters": {"epochs": {"distribution": "normal", "mu": 0}}}, "mu"),
        (
            {"method": "random", "parameters": {"epochs": {"distribution": "normal"}}},
            "'normal' is not supported",
        ),
        (
            {"method": "random", "parameters": {"learning_rate": {"min": 0.1, "max": 0.01}}},
            "min must be below max",
        ),
        (
            {"method": "grid", "parameters": {"learning_rate": {"min": 0.1, "max": 0.5}}},
            "use method random or bayes",
        ),
        (
            {
                "method": "random",
                "parameters": {"epochs": {"values": [1]}},
                "early_terminate": {"type": "asha"},
            },
            "hyperband or median",
        ),
        (
            {
                "method": "random",
                "parameters": {"epochs": {"values": [1]}},
                "early_terminate": {"type": "median", "eta": 3},
            },
            "early_terminate.eta",
        ),
        (
            {"method": "random", "parameters": {"epochs": {"values": [1]}}, "parallel": 0},
            "parallel",
        ),
        (
            {"method": "random", "parameters": {"epochs": {"values": [1]}}, "max_runs": True},
            "max_runs",
        ),
        (
            {"method": "random", "parameters": {"optimizer": {"parameters": {"lr": {}}}}},
            "no nesting",
        ),
    ],
)
def test_refused_by_name(raw: dict[str, Any], named: str) -> None:
    assert named in refused(raw)


def test_an_unknown_parameter_lists_the_allowed_keys() -> None:
    message = refused({"method": "random", "parameters": {"lr": {"values": [0.1]}}})
    assert "parameters.lr: not a TrainConfig key" in message
    assert "learning_rate" in message and "batch_size" in message


def test_grid_of_2_by_3_makes_6_configs_in_order() -> None:
    parsed = spec(
        {"batch_size": {"values": [2, 4]}, "learning_rate": {"values": [0.1, 0.01, 0.001]}},
        method="grid",
    )
    assert parsed.max_runs == 6
    grid = parsed.grid()
    assert len(grid) == 6 and len({tuple(sorted(c.items())) for c in grid}) == 6
    assert grid[0] == {"batch_size": 2, "learning_rate": 0.1}
    assert grid[5] == {"batch_size": 4, "learning_rate": 0.001}
    assert parsed.run_config(grid[1]) == {
        "dataset": "shapes",
        "batch_size": 2,
        "learning_rate": 0.01,
    }


def test_grid_int_range_and_max_runs_capped_at_its_size() -> None:
    parsed = spec(
        {"epochs": {"distribution": "int_uniform", "min": 1, "max": 3}}, "grid", max_runs=10
    )
    assert [c["epochs"] for c in parsed.grid()] == [1, 2, 3]
    assert parsed.max_runs == 3
    assert spec({"epochs": {"values": [1, 2]}}, "grid", max_runs=1).max_runs == 1


def test_defaults_metric_from_monitor_and_runs_for_random() -> None:
    parsed = parse_spec(
        {
            "config": {"dataset": "shapes", "monitor": "val/loss"},
            "method": "random",
            "parameters": {"learning_rate": {"min": 1e-4, "max": 1e-2}},
        }
    )
    assert (parsed.metric, parsed.goal) == ("val/loss", "minimize")
    assert parsed.max_runs == DEFAULT_RANDOM_RUNS
    assert spec({"epochs": {"values": [1]}}).metric == "val/iou"
    median = spec({"epochs": {"values": [1]}}, early_terminate={"type": "median", "min_iter": 2})
    assert isinstance(median.pruner(), MedianPruner)


def draws(parsed: SweepSpec, count: int) -> list[dict[str, Any]]:
    """Draw `count` trials one after another as the controller does, scoring each by a fixed
    function so that bayes has a history to learn from."""
    study = optuna.create_study(direction="maximize", sampler=parsed.sampler(0))
    configs = []
    for number in range(count):
        study.sampler = parsed.sampler(number)
        trial = study.ask(parsed.distributions())
        values = {p.key: p.config_value(trial.params[p.key]) for p in parsed.parameters}
        configs.append(values)
        score = -abs(math.log10(values["learning_rate"]) + 2.5) + values["batch_size"] / 100
        study.tell(trial, score)
    return configs


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_seeded_draws_repeat(method: str) -> None:
    parameters = {
        "learning_rate": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
        "batch_size": {"values": [2, 4, 8]},
    }
    first = draws(spec(parameters, method, seed=11), 14)  # past TPE's 10 random start-up trials
    assert first == draws(spec(parameters, method, seed=11), 14)
    assert first != draws(spec(parameters, method, seed=12), 14)
    assert len({c["learning_rate"] for c in first}) == 14


def test_hyperband_rungs_are_wandb_brackets() -> None:
    parameters = {"epochs": {"values": [1]}}
    hyperband = spec(parameters, early_terminate={"type": "hyperband", "max_iter": 27, "s": 2})
    rules = hyperband.early_terminate
    assert rules is not None and rules.min_iter == 3  # 27 / 3^2
    assert rules.rung_epochs(30) == [3, 9, 27]
    curve = {epoch: epoch / 10 for epoch in range(1, 11)}
    finished, attrs = rules.judged(curve, running=False)
    assert finished == curve and attrs == {"completed_rung_0": 0.3, "completed_rung_1": 0.9}
    training, attrs = rules.judged(curve, running=True)
    assert max(training) == 9 and attrs == {"completed_rung_0": 0.3}
