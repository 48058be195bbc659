"""The sweep controller: a periodic task in the API process (like `server.reaper`) that drives
every running sweep with Optuna's ask/tell, never importing torch.

Each pass, under a database lock (PostgreSQL: a transaction-level advisory lock, so one of several
API processes runs it; each sweep row is also locked, SKIP LOCKED, against its own API actions),
for every running or paused sweep:
1. its Optuna study is rebuilt in memory from its runs (`server.sweep.trials`): finished trials
   are told with their params, distributions, score and epoch values, so the database stays the
   only state and a restarted API (or another process) goes on where the last pass stopped;
2. each training trial's epoch metric goes to the pruner; a trial it prunes is asked to stop at
   the end of its epoch (`Run.prune_requested_at`; the worker ends it `pruned`);
3. a running sweep asks for the next configs while fewer than `parallel` of its runs are queued
   or training and fewer than `max_runs` were made; each becomes an ordinary queued run (through
   `server.run.service.create_run`) with its sweep id and trial number. A config the sampler
   draws that is no valid TrainConfig (or one the server's caps refuse) becomes a failed run that
   says why, told to the sampler as a failure (after REFUSED_IN_A_ROW of them in a row the sweep
   is paused, its note saying why);
4. a sweep whose runs are all made and finished is `finished`; so is one whose `metric.target`
   a trial's best value reached (W&B's meaning): its queued runs are cancelled, those training
   go on, and its note names the run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import optuna
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from server.db import session_scope
from server.errors import DomainError
from server.events import record_event
from server.models import Run, Sweep, utcnow
from server.queue import TaskQueue
from server.run import repository as runs
from server.run.lifecycle import one_line
from server.run.schemas import RunCreate
from server.run.service import cancel_run, create_run
from server.settings import Settings
from server.sweep import repository
from server.sweep.events import sweep_changed
from server.sweep.spec import SweepSpec, parse_spec
from server.sweep.trials import Trial, build_study, load_trials

logger = logging.getLogger(__name__)

REFUSED_IN_A_ROW = 10
"""A sweep whose sampler drew this many configs in a row that the server refused (a dataset
gone, a cap lowered) is paused with a note saying why, rather than filling its runs with them."""


@dataclass
class ControllerReport:
    """What one pass did."""

    queued: list[int] = field(default_factory=list)
    pruned: list[int] = field(default_factory=list)
    invalid: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    """Queued runs of a sweep that reached its target."""
    skipped: bool = False
    """Another API process held the controller's lock."""


def _request_prunes(
    session: Session, spec: SweepSpec, study: optuna.Study, trials: list[Trial]
) -> list[int]:
    """Ask the training runs the pruner gives up on to stop at their epoch's end."""
    pruner = study.pruner
    frozen = study.get_trials(deepcopy=False)
    pruned = []
    for trial, optuna_trial in zip(trials, frozen, strict=True):
        run = trial.run
        if trial.status != "running" or run.prune_requested_at is not None or not trial.curve:
            continue
        if not pruner.prune(study, optuna_trial):
            continue
        run.prune_requested_at = utcnow()
        epoch = max(trial.curve)
        logger.info(
            "sweep %d: run %d (trial %d) pruned at epoch %d (%s %.4g); it stops at the end of "
            "its epoch",
            run.sweep_id, run.id, trial.number, epoch, spec.metric, trial.curve[epoch],
        )  # fmt: skip
        record_event(session, "run", run.id, {"action": "prune_requested", "epoch": epoch})
        pruned.append(run.id)
    return pruned


def _draw(
    spec: SweepSpec, study: optuna.Study, number: int, grid: list[dict[str, Any]]
) -> dict[str, Any]:
    """The swept values of trial `number` (grid: its combination; else the sampler's draw, which
    stays in `study` as a running trial for the draws after it)."""
    if spec.method == "grid":
        combination = grid[number]
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.RUNNING,
                params={p.key: p.sampled_value(combination[p.key]) for p in spec.parameters},
                distributions=spec.distributions(),
            )
        )
        return combination
    study.sampler = spec.sampler(number)
    trial = study.ask(spec.distributions())
    return {p.key: p.config_value(trial.params[p.key]) for p in spec.parameters}


def _failed_trial(
    session: Session, settings: Settings, spec: SweepSpec, *, name: str, config: dict[str, Any],
    reason: str,
) -> Run:  # fmt: skip
    """A run that records a trial whose config could not be queued (never sent to a worker)."""
    now = utcnow()
    run = Run(
        name=name,
        status="failed",
        external=False,
        config=config,
        notes="",
        priority=spec.priority,
        queue=spec.queue or settings.default_queue,
        attempt=0,
        max_retries=0,
        resume_requested=False,
        created_at=now,
        updated_at=now,
        finished_at=now,
        epochs_done=0,
        failure_reason=one_line(reason),
    )
    runs.add_run(session, run, spec.tags)
    record_event(
        session, "run", run.id, {"action": "created", "status": run.status, "name": run.name}
    )
    return run


def queue_trial(
    session: Session,
    settings: Settings,
    task_queue: TaskQueue,
    *,
    sweep: Sweep,
    spec: SweepSpec,
    number: int,
    swept: Mapping[str, Any],
) -> Run:
    """Queue trial `number` with the `swept` values as an ordinary run of the sweep; a config
    the run service refuses becomes a failed run with the reason."""
    config = spec.run_config(swept)
    name = f"{sweep.name} #{number}"[:200]
    try:
        with session.begin_nested():
            body = RunCreate(
                config=config,
                name=name,
                tags=list(spec.tags),
                priority=spec.priority,
                queue=spec.queue,
            )
            run = create_run(session, settings, task_queue, body)
    except (DomainError, ValidationError) as error:
        message = error.message if isinstance(error, DomainError) else str(error)
        reason = f"trial {number}: the sampled config is refused: {message}"
        logger.warning("sweep %d: %s", sweep.id, reason)
        run = _failed_trial(session, settings, spec, name=name, config=config, reason=reason)
    run.sweep_id = sweep.id
    run.trial_number = number
    run.sweep_params = dict(swept)
    run.submitted_by_id = sweep.submitted_by_id
    run.submitted_by = sweep.submitted_by
    session.flush()
    return run


def _refused_in_a_row(trials: list[Trial]) -> int:
    """How many of the latest trials are configs the server refused (failed, never started)."""
    count = 0
    for trial in reversed(trials):
        if trial.status != "failed" or trial.run.started_at is not None:
            break
        count += 1
    return count


def _finish_on_target(
    session: Session, task_queue: TaskQueue, sweep: Sweep, spec: SweepSpec, trials: list[Trial]
) -> list[int] | None:
    """Finish `sweep` when a trial of it (not one resumed outside it) reached the target:
    its queued runs are cancelled (the ids returned), those training go on. None: not reached."""
    reached = [
        trial for trial in trials if trial.run.trial_status is None and spec.reached(trial.value)
    ]
    if not reached:
        return None
    pick = max if spec.goal == "maximize" else min
    best = pick(reached, key=lambda trial: trial.value or 0.0)
    sweep.status = "finished"
    sweep.finished_at = utcnow()
    sweep.note = one_line(
        f"finished: run {best.run.id} (trial {best.number}) reached {spec.metric} "
        f"{best.value:.4g}, the target {spec.target:g}; queued runs were cancelled, training "
        "ones go on"
    )
    logger.info("sweep %d %s", sweep.id, sweep.note)
    cancelled = []
    for trial in trials:
        if trial.run.status == "queued" and trial.run.trial_status is None:
            cancel_run(session, task_queue, trial.run.id)
            cancelled.append(trial.run.id)
    return cancelled


def step_sweep(
    session: Session, settings: Settings, task_queue: TaskQueue, sweep: Sweep
) -> ControllerReport:
    """One step of one sweep (the caller holds its row); see the module's docstring. A step
    that changed anything records a `sweep` event."""
    status = sweep.status
    report = _step(session, settings, task_queue, sweep)
    if (
        report.queued
        or report.pruned
        or report.invalid
        or report.finished
        or report.cancelled
        or sweep.status != status
    ):
        sweep_changed(session, sweep, "step")
    return report


def _step(
    session: Session, settings: Settings, task_queue: TaskQueue, sweep: Sweep
) -> ControllerReport:
    report = ControllerReport()
    spec = parse_spec(sweep.spec)
    trials = load_trials(session, sweep, curves=spec.early_terminate is not None)
    cancelled = _finish_on_target(session, task_queue, sweep, spec, trials)
    if cancelled is not None:
        report.finished.append(sweep.id)
        report.cancelled = cancelled
        return report
    study = build_study(sweep, spec, trials)
    if spec.early_terminate is not None:
        report.pruned = _request_prunes(session, spec, study, trials)
    in_flight = sum(1 for trial in trials if trial.in_flight)
    made = max((trial.number for trial in trials), default=-1) + 1
    refused = _refused_in_a_row(trials)
    grid = spec.grid()
    while sweep.status == "running" and in_flight < sweep.parallel and made < sweep.max_runs:
        swept = _draw(spec, study, made, grid)
        run = queue_trial(
            session, settings, task_queue, sweep=sweep, spec=spec, number=made, swept=swept
        )
        made += 1
        if run.status == "queued":
            report.queued.append(run.id)
            in_flight += 1
            refused = 0
            continue
        report.invalid.append(run.id)
        refused += 1
        if refused >= REFUSED_IN_A_ROW:
            sweep.status = "paused"
            sweep.note = one_line(
                f"paused: the last {refused} sampled configs were refused; the last one: "
                f"{run.failure_reason}"
            )
            logger.warning("sweep %d %s", sweep.id, sweep.note)
    if sweep.status == "running" and made >= sweep.max_runs and in_flight == 0:
        sweep.status = "finished"
        sweep.finished_at = utcnow()
        report.finished.append(sweep.id)
        logger.info("sweep %d finished: %d runs made", sweep.id, made)
    return report


def control_once(session: Session, settings: Settings, task_queue: TaskQueue) -> ControllerReport:
    """One pass over the active sweeps, in the caller's transaction."""
    report = ControllerReport()
    if not repository.try_controller_lock(session):
        report.skipped = True
        return report
    for sweep in repository.active_sweeps(session):
        try:
            with session.begin_nested():
                step = step_sweep(session, settings, task_queue, sweep)
        except Exception:  # one broken sweep must not stop the others
            logger.exception("sweep %d: its step failed; trying again next pass", sweep.id)
            continue
        report.queued += step.queued
        report.pruned += step.pruned
        report.invalid += step.invalid
        report.finished += step.finished
        report.cancelled += step.cancelled
    return report


async def run_controller(
    factory: sessionmaker[Session], settings: Settings, task_queue: TaskQueue
) -> None:
    """Drive the sweeps every `sweep_interval_s` until cancelled; a failed pass is logged and
    retried."""

    def one_pass() -> ControllerReport:
        with session_scope(factory, write=False) as session:
            if not repository.has_active_sweeps(session):  # no write lock taken (SQLite)
                return ControllerReport()
        with session_scope(factory) as session:
            return control_once(session, settings, task_queue)

    while True:
        try:
            report = await anyio.to_thread.run_sync(one_pass)
            if report.queued or report.pruned or report.invalid or report.finished:
                logger.info(
                    "sweeps: queued runs %s, pruned %s, refused configs %s, finished sweeps %s",
                    report.queued, report.pruned, report.invalid, report.finished,
                )  # fmt: skip
        except Exception:
            logger.exception(
                "sweep controller pass failed; trying again in %.0f s", settings.sweep_interval_s
            )
        await asyncio.sleep(settings.sweep_interval_s)
