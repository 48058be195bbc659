"""Sweep queries: the sweeps, their runs, and the metric values their trials are scored by.
Never commits."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, load_only

from server.errors import NotFound
from server.models import Metric, MetricSummary, Run, Sweep

ACTIVE = ("running", "paused")
CONTROLLER_LOCK = 0x5EE9_0001
"""The PostgreSQL advisory lock a controller pass holds, so that one API process runs it."""


def add_sweep(session: Session, sweep: Sweep) -> Sweep:
    session.add(sweep)
    session.flush()
    return sweep


def get_sweep(session: Session, sweep_id: int, *, for_update: bool = False) -> Sweep:
    """The sweep, or NotFound naming the id."""
    query = select(Sweep).where(Sweep.id == sweep_id)
    if for_update:
        query = query.with_for_update()
    sweep = session.scalars(query).one_or_none()
    if sweep is None:
        raise NotFound(f"sweep {sweep_id} does not exist")
    return sweep


def list_sweeps(session: Session, *, limit: int, before_id: int | None = None) -> list[Sweep]:
    """Newest first; `before_id` pages on."""
    query = select(Sweep).order_by(Sweep.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(Sweep.id < before_id)
    return list(session.scalars(query))


def try_controller_lock(session: Session) -> bool:
    """Take the controller's lock for this transaction; False when another process holds it.
    SQLite serves one process: always True there."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    taken = session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": CONTROLLER_LOCK})
    return bool(taken)


def has_active_sweeps(session: Session) -> bool:
    return session.scalar(select(Sweep.id).where(Sweep.status.in_(ACTIVE)).limit(1)) is not None


def active_sweeps(session: Session) -> list[Sweep]:
    """Running and paused sweeps, locked (a sweep an API request holds is skipped this time)."""
    query = select(Sweep).where(Sweep.status.in_(ACTIVE)).order_by(Sweep.id)
    return list(session.scalars(query.with_for_update(skip_locked=True)))


TRIAL_COLUMNS = (
    Run.id,
    Run.name,
    Run.status,
    Run.sweep_id,
    Run.trial_number,
    Run.sweep_params,
    Run.epochs_done,
    Run.prune_requested_at,
    Run.trial_status,
    Run.failure_reason,
    Run.started_at,
)
"""What a sweep needs of its runs (the others load when read: configs are large)."""


def sweep_runs(session: Session, sweep_id: int) -> list[Run]:
    """The sweep's runs (its trials) in trial order."""
    query = (
        select(Run)
        .options(load_only(*TRIAL_COLUMNS))
        .where(Run.sweep_id == sweep_id)
        .order_by(Run.trial_number, Run.id)
    )
    return list(session.scalars(query))


def run_counts(session: Session, sweep_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per sweep: how many of its trials are in each status (a run resumed outside its sweep
    counts with the status its trial ended with)."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    if sweep_ids:
        trial_status = func.coalesce(Run.trial_status, Run.status)
        rows = session.execute(
            select(Run.sweep_id, trial_status, func.count())
            .where(Run.sweep_id.in_(list(sweep_ids)))
            .group_by(Run.sweep_id, trial_status)
        )
        for sweep_id, status, count in rows:
            if sweep_id is not None:
                counts[sweep_id][status] = count
    return counts


def best_values(
    session: Session, run_ids: Sequence[int], key: str, *, maximize: bool
) -> dict[int, float]:
    """Each run's best value of metric `key` (the largest when `maximize`)."""
    if not run_ids:
        return {}
    column = MetricSummary.max_value if maximize else MetricSummary.min_value
    rows = session.execute(
        select(MetricSummary.run_id, column).where(
            MetricSummary.run_id.in_(list(run_ids)), MetricSummary.key == key
        )
    )
    return {run_id: value for run_id, value in rows}  # noqa: C416 (rows are not pairs to mypy)


def epoch_values(session: Session, run_ids: Sequence[int], key: str) -> dict[int, dict[int, float]]:
    """Each run's per-epoch values of metric `key`."""
    curves: dict[int, dict[int, float]] = defaultdict(dict)
    if run_ids:
        rows = session.execute(
            select(Metric.run_id, Metric.epoch, Metric.value).where(
                Metric.run_id.in_(list(run_ids)), Metric.key == key, Metric.epoch.is_not(None)
            )
        )
        for run_id, epoch, value in rows:
            if epoch is not None:
                curves[run_id][epoch] = value
    return curves
