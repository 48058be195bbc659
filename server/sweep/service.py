"""Sweep rules for the API: create (check the spec and the runs' configs), view, pause, resume,
cancel and change `max_runs` / `parallel`. The controller (`server.sweep.controller`) makes
the runs."""

from __future__ import annotations

import logging
import threading
import warnings
from typing import Any

import optuna
from pydantic import ValidationError
from sqlalchemy.orm import Session

from server.auth.principal import Principal
from server.bounds import check_json
from server.errors import Conflict, Forbidden, InvalidInput
from server.models import Sweep, utcnow
from server.queue import TaskQueue
from server.run.schemas import RunCreate
from server.run.service import cancel_run, prepare_config
from server.settings import Settings
from server.sweep import repository
from server.sweep.events import sweep_changed
from server.sweep.schemas import (
    BestSoFar,
    SweepCounts,
    SweepOut,
    SweepPatch,
    SweepRunOut,
    SweepSummaryOut,
)
from server.sweep.spec import SweepSpec, parse_spec
from server.sweep.trials import Trial, build_study, load_trials
from trainer.config import TrainConfig, describe_validation_error

logger = logging.getLogger(__name__)

COUNTED = {
    "succeeded": "done",
    "running": "running",
    "cancelling": "running",
    "queued": "queued",
    "pruned": "pruned",
    "failed": "failed",
    "cancelled": "cancelled",
}


def _check_configs(session: Session, settings: Settings, spec: SweepSpec) -> None:
    """Every grid combination is a valid TrainConfig, and the first run's config passes what a
    queued run must (dataset found and inspected, caps, run fields): InvalidInput otherwise."""
    for number, combination in enumerate(spec.grid()):
        try:
            TrainConfig.model_validate(spec.run_config(combination))
        except ValidationError as error:
            problem = describe_validation_error(error)[0]
            message = f"{problem['field']}: {problem['message']}"
            raise InvalidInput(
                f"parameters: combination {number} ({combination}) is no valid config: {message}",
                [{"field": "parameters", "message": message}],
            ) from error
    probe = spec.probe_config()
    try:
        RunCreate(config=probe, tags=list(spec.tags), priority=spec.priority, queue=spec.queue)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "spec"
        message = first["msg"]
        raise InvalidInput(f"{field}: {message}", [{"field": field, "message": message}]) from error
    prepare_config(session, settings, probe)


def create_sweep(
    session: Session, settings: Settings, principal: Principal, raw: dict[str, Any]
) -> tuple[Sweep, SweepSpec]:
    """Check `raw` (a W&B-style spec over a base config) and store the sweep, running; the
    controller queues its first runs on its next pass."""
    check_json(raw, "spec")
    spec = parse_spec(raw)
    _check_configs(session, settings, spec)
    now = utcnow()
    sweep = Sweep(
        name=spec.name,
        status="running",
        method=spec.method,
        metric=spec.metric,
        goal=spec.goal,
        spec=spec.stored(),
        max_runs=spec.max_runs,
        parallel=spec.parallel,
        seed=spec.seed,
        submitted_by_id=principal.user_id,
        submitted_by=principal.name if principal.via != "open" else None,
        created_at=now,
        updated_at=now,
    )
    repository.add_sweep(session, sweep)
    sweep_changed(session, sweep, "created")
    return sweep, spec


def check_owner(sweep: Sweep, principal: Principal) -> None:
    """Members change only their own sweeps (as with runs); admins any."""
    if principal.is_admin or sweep.submitted_by_id == principal.user_id:
        return
    owner = sweep.submitted_by or "nobody recorded"
    raise Forbidden(
        f"sweep {sweep.id} was created by {owner}; a {principal.role} may only change the sweeps "
        "they created (admins may change any)"
    )


def pause_sweep(session: Session, sweep: Sweep) -> Sweep:
    """Queue no more runs (those queued or training go on)."""
    if sweep.status != "running":
        raise Conflict(f"sweep {sweep.id} is {sweep.status}; only a running sweep can be paused")
    sweep.status = "paused"
    session.flush()
    sweep_changed(session, sweep, "paused")
    return sweep


def resume_sweep(session: Session, sweep: Sweep) -> Sweep:
    if sweep.status != "paused":
        raise Conflict(f"sweep {sweep.id} is {sweep.status}; only a paused sweep can be resumed")
    sweep.status, sweep.note = "running", None
    session.flush()
    sweep_changed(session, sweep, "resumed")
    return sweep


def cancel_sweep(session: Session, task_queue: TaskQueue, sweep: Sweep) -> Sweep:
    """Stop the sweep and cancel its queued and training runs."""
    if sweep.status in ("finished", "cancelled"):
        raise Conflict(f"sweep {sweep.id} is {sweep.status} already")
    sweep.status = "cancelled"
    sweep.finished_at = utcnow()
    for run in repository.sweep_runs(session, sweep.id):
        if run.status in ("queued", "running") and run.trial_status is None:
            cancel_run(session, task_queue, run.id)
    session.flush()
    sweep_changed(session, sweep, "cancelled")
    return sweep


def patch_sweep(session: Session, sweep: Sweep, body: SweepPatch) -> Sweep:
    """A new `max_runs` (at least the runs made; a grid's at most its size) or `parallel`; a
    finished sweep given more runs runs again."""
    if sweep.status == "cancelled":
        raise Conflict(f"sweep {sweep.id} is cancelled; create a new sweep instead")
    if body.max_runs is not None:
        numbers = [run.trial_number for run in repository.sweep_runs(session, sweep.id)]
        made = max((number for number in numbers if number is not None), default=-1) + 1
        grid = len(parse_spec(sweep.spec).grid()) if sweep.method == "grid" else None
        if body.max_runs < made or (grid is not None and body.max_runs > grid):
            allowed = f"from {made} (the runs made)" + (f" to {grid} (the grid)" if grid else "")
            raise InvalidInput(
                f"max_runs: {allowed}, got {body.max_runs}",
                [{"field": "max_runs", "message": allowed}],
            )
        sweep.max_runs = body.max_runs
        if sweep.status == "finished" and body.max_runs > made:
            sweep.status, sweep.finished_at = "running", None
    if body.parallel is not None:
        sweep.parallel = body.parallel
    sweep.spec = {**sweep.spec, "max_runs": sweep.max_runs, "parallel": sweep.parallel}
    session.flush()
    sweep_changed(session, sweep, "updated")
    return sweep


# --- views ----------------------------------------------------------------------------------------


def counts_out(counts: dict[str, int]) -> SweepCounts:
    totals: dict[str, int] = {}
    for status, count in counts.items():
        name = COUNTED.get(status)
        if name is not None:
            totals[name] = totals.get(name, 0) + count
    return SweepCounts(**totals)


def _run_out(trial: Trial) -> SweepRunOut:
    run = trial.run
    return SweepRunOut(
        id=run.id,
        name=run.name,
        status=run.status,
        trial_status=trial.status,
        trial_number=trial.number,
        params=run.sweep_params or {},
        value=trial.value,
        epochs_done=run.epochs_done,
        prune_requested=run.prune_requested_at is not None,
        failure_reason=run.failure_reason,
    )


def _scored(trials: list[Trial]) -> list[Trial]:
    return [trial for trial in trials if trial.status == "succeeded" and trial.value is not None]


def _best(sweep: Sweep, trials: list[Trial]) -> Trial | None:
    scored = _scored(trials)
    if not scored:
        return None
    pick = max if sweep.goal == "maximize" else min
    return pick(scored, key=lambda trial: trial.value or 0.0)


def _best_so_far(sweep: Sweep, trials: list[Trial]) -> list[BestSoFar]:
    series: list[BestSoFar] = []
    best: float | None = None
    for trial in _scored(trials):
        value = trial.value
        assert value is not None
        better = best is None or (value > best if sweep.goal == "maximize" else value < best)
        best = value if better else best
        assert best is not None
        series.append(
            BestSoFar(trial_number=trial.number, run_id=trial.run.id, value=value, best=best)
        )
    return series


IMPORTANCE_CACHE = 64
_IMPORTANCE: dict[tuple[Any, ...], tuple[tuple[str, float], ...] | None] = {}
"""Parameter importance by sweep and finished trials (their numbers, statuses and scores): it
changes only when a trial finishes, and a page of 1,000 trials asks for it on every refresh."""
_IMPORTANCE_LOCK = threading.Lock()


def _importance(sweep: Sweep, trials: list[Trial]) -> dict[str, float] | None:
    if len(_scored(trials)) < 2:
        return None
    finished = [trial for trial in trials if not trial.in_flight]
    key = (
        sweep.id,
        sweep.goal,
        repr(sweep.spec.get("parameters")),
        tuple((trial.number, trial.status, trial.value) for trial in finished),
    )
    with _IMPORTANCE_LOCK:
        known = key in _IMPORTANCE
        cached = _IMPORTANCE.get(key)
    if not known:
        cached = _evaluate_importance(sweep, finished)
        with _IMPORTANCE_LOCK:
            while len(_IMPORTANCE) >= IMPORTANCE_CACHE:
                _IMPORTANCE.pop(next(iter(_IMPORTANCE)))
            _IMPORTANCE[key] = cached
    return dict(cached) if cached is not None else None


def _evaluate_importance(
    sweep: Sweep, finished: list[Trial]
) -> tuple[tuple[str, float], ...] | None:
    spec = parse_spec(sweep.spec)
    study = build_study(sweep, spec, finished)
    try:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        with warnings.catch_warnings():  # e.g. "importances will be equal" on equal scores
            warnings.simplefilter("ignore")
            importance = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError) as error:  # e.g. every scored trial has the same values
        logger.info("sweep %d: no parameter importance yet (%s)", sweep.id, error)
        return None
    return tuple((key, float(value)) for key, value in importance.items())


def summary_out(sweep: Sweep, counts: dict[str, int], best_value: float | None) -> SweepSummaryOut:
    return SweepSummaryOut.model_validate(
        {
            **{
                name: getattr(sweep, name)
                for name in SweepSummaryOut.model_fields
                if hasattr(Sweep, name)
            },
            "counts": counts_out(counts),
            "best_value": best_value,
        }
    )


def sweep_out(session: Session, sweep: Sweep, ignored: tuple[str, ...] = ()) -> SweepOut:
    """The full view of a sweep: its runs, best run, best-so-far curve and importance."""
    trials = load_trials(session, sweep, curves=False)
    counts = repository.run_counts(session, [sweep.id])[sweep.id]
    best = _best(sweep, trials)
    fields = {name: getattr(sweep, name) for name in SweepOut.model_fields if hasattr(Sweep, name)}
    return SweepOut.model_validate(
        {
            **fields,
            "counts": counts_out(counts),
            "best_value": best.value if best is not None else None,
            "runs": [_run_out(trial) for trial in trials],
            "best_run": _run_out(best) if best is not None else None,
            "best_so_far": _best_so_far(sweep, trials),
            "importance": _importance(sweep, trials),
            "ignored": list(ignored),
        }
    )


def summaries_out(session: Session, sweeps: list[Sweep]) -> list[SweepSummaryOut]:
    counts = repository.run_counts(session, [sweep.id for sweep in sweeps])
    out = []
    for sweep in sweeps:
        best = _best(sweep, load_trials(session, sweep, curves=False))
        out.append(summary_out(sweep, counts[sweep.id], best.value if best else None))
    return out
