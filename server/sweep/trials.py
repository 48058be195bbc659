"""A sweep's trials, read from its runs, and the Optuna study rebuilt from them.

The database is the only state of a sweep: each of its runs is one trial (`Run.trial_number`,
`Run.sweep_params`), its score is the run's best value of the sweep's metric (the largest for
`maximize`, the smallest for `minimize`; from the metric summaries) and its intermediate values
are that metric's per-epoch points. A finished run is told to Optuna as `COMPLETE` with its score
when it succeeded (and reported the metric), `PRUNED` when it was pruned, `FAIL` otherwise
(failed or cancelled: a failure is never a score); a queued or training run is `RUNNING`.

A run resumed after its trial ended (`POST /runs/{id}/resume`, e.g. a pruned run given its
remaining epochs) trains outside its sweep: its trial keeps the status it ended with
(`Run.trial_status`), so it is no new trial, takes no `parallel` slot, is not judged by the
pruner again and is never told as a score.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState, create_trial
from sqlalchemy.orm import Session

from server.models import Run, Sweep
from server.sweep import repository
from server.sweep.spec import SweepSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)
logger = logging.getLogger(__name__)

IN_FLIGHT = ("queued", "running", "cancelling")


@dataclass(frozen=True)
class Trial:
    """One run of a sweep, as the sampler and the pruner see it."""

    run: Run
    value: float | None
    """The run's best value of the sweep's metric so far (None before its first epoch)."""
    curve: dict[int, float] = field(default_factory=dict)
    """The metric at each epoch."""

    @property
    def number(self) -> int:
        assert self.run.trial_number is not None
        return self.run.trial_number

    @property
    def status(self) -> str:
        """The trial's status in its sweep: the run's, or the one its trial ended with when the
        run was resumed outside the sweep."""
        return self.run.trial_status or self.run.status

    @property
    def in_flight(self) -> bool:
        """Queued or training as a trial of its sweep (taking one of its `parallel` slots)."""
        return self.status in IN_FLIGHT

    @property
    def state(self) -> TrialState:
        status = self.status
        if status in IN_FLIGHT:
            return TrialState.RUNNING
        if status == "succeeded" and self.value is not None:
            return TrialState.COMPLETE
        return TrialState.PRUNED if status == "pruned" else TrialState.FAIL


def load_trials(session: Session, sweep: Sweep, *, curves: bool) -> list[Trial]:
    """The sweep's trials in number order; with `curves`, each with its per-epoch metric."""
    runs = repository.sweep_runs(session, sweep.id)
    ids = [run.id for run in runs]
    values = repository.best_values(session, ids, sweep.metric, maximize=sweep.goal == "maximize")
    by_epoch = repository.epoch_values(session, ids, sweep.metric) if curves else {}
    return [Trial(run, values.get(run.id), by_epoch.get(run.id, {})) for run in runs]


def _contains(distribution: BaseDistribution, value: object) -> bool:
    try:
        return distribution._contains(distribution.to_internal_repr(value))
    except (ValueError, TypeError):
        return False


def _frozen(spec: SweepSpec, trial: Trial) -> optuna.trial.FrozenTrial:
    """`trial` for Optuna; a swept value outside the spec's space (none should be) is left out."""
    swept = trial.run.sweep_params or {}
    params: dict[str, object] = {}
    distributions: dict[str, BaseDistribution] = {}
    for parameter in spec.parameters:
        if parameter.key not in swept:
            continue
        value = parameter.sampled_value(swept[parameter.key])
        if _contains(parameter.distribution, value):
            params[parameter.key] = value
            distributions[parameter.key] = parameter.distribution
    state = trial.state
    curve: dict[int, float] = dict(trial.curve)
    attrs: dict[str, Any] = {}
    if spec.early_terminate is not None:
        curve, attrs = spec.early_terminate.judged(curve, running=state == TrialState.RUNNING)
    return create_trial(
        state=state,
        params=params,
        distributions=distributions,
        value=trial.value if state == TrialState.COMPLETE else None,
        intermediate_values=curve,
        system_attrs=attrs,
    )


def build_study(sweep: Sweep, spec: SweepSpec, trials: Sequence[Trial]) -> optuna.Study:
    """An in-memory Optuna study holding `trials` (in number order), with the spec's pruner.

    Its name is fixed by the sweep, which the hyperband pruner's bracket assignment depends on.
    The sampler is set per draw (`SweepSpec.sampler`).
    """
    study = optuna.create_study(
        study_name=f"sweep-{sweep.id}",
        direction=spec.goal,
        pruner=spec.pruner(),
        sampler=spec.sampler(0),
    )
    for trial in trials:
        study.add_trial(_frozen(spec, trial))
    return study
