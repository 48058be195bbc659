"""SQL for metric points: reading series and summaries, and (from `server.metric.upsert`)
writing points. Never commits."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import psycopg
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from server.metric.points import SYSTEM_PREFIX, MetricPoint, Series, StepRange, UpsertStats
from server.metric.upsert import upsert_points
from server.models import Metric, MetricSummary, Run

__all__ = [
    "EpochFacts",
    "MetricPoint",
    "Series",
    "UpsertStats",
    "epoch_facts",
    "epoch_values",
    "read_rows",
    "read_series",
    "summaries",
    "upsert_points",
]


def summaries(session: Session, run_ids: Sequence[int]) -> dict[int, dict[str, MetricSummary]]:
    """The summaries of several runs: run id -> key -> summary."""
    found: dict[int, dict[str, MetricSummary]] = defaultdict(dict)
    if run_ids:
        for summary in session.scalars(
            select(MetricSummary).where(MetricSummary.run_id.in_(run_ids))
        ):
            found[summary.run_id][summary.key] = summary
    return found


def _fetch(
    session: Session, run_id: int, keys: Sequence[str] | None, steps: StepRange
) -> list[tuple[str, int, float]]:
    """(key, step, value) rows through the driver's own cursor (psycopg in binary mode): about
    three times faster than SQLAlchemy result rows for the 10,000-point histories charts ask for.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    sql = f"SELECT key, step, value FROM metrics WHERE run_id = {mark}"
    params: list[Any] = [run_id]
    if keys is not None:
        if postgres:
            sql += " AND key = ANY(%s)"
            params.append(list(keys))
        else:
            sql += f" AND key IN ({', '.join('?' for _ in keys)})"
            params.extend(keys)
    if steps.first is not None:
        sql += f" AND step >= {mark}"
        params.append(steps.first)
    if steps.last is not None:
        sql += f" AND step <= {mark}"
        params.append(steps.last)
    sql += " ORDER BY key, step"
    dbapi = session.connection().connection.dbapi_connection
    rows: list[tuple[str, int, float]]
    if postgres:
        with cast(psycopg.Connection[Any], dbapi).cursor(binary=True) as binary:
            binary.execute(sql, params)
            rows = binary.fetchall()
        return rows
    cursor = cast(sqlite3.Connection, dbapi).execute(sql, params)
    try:
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return rows


def read_series(
    session: Session, run_id: int, keys: Sequence[str] | None, steps: StepRange
) -> dict[str, Series]:
    """Points of the run in `steps` per key in step order; all keys when `keys` is None."""
    rows = _fetch(session, run_id, sorted(set(keys)) if keys is not None else None, steps)
    series: dict[str, Series] = {}
    if not rows:
        return series
    names, at, values = zip(*rows, strict=True)
    step_array = np.asarray(at, dtype=np.int64)
    value_array = np.asarray(values, dtype=np.float64)
    start = 0
    for index in range(1, len(names) + 1):
        if index == len(names) or names[index] != names[start]:
            series[names[start]] = Series(step_array[start:index], value_array[start:index])
            start = index
    return series


def read_rows(session: Session, run_id: int) -> list[tuple[str, int, float, int | None]]:
    """Every point of the run as (key, step, value, epoch), for exports."""
    query = select(Metric.key, Metric.step, Metric.value, Metric.epoch).where(
        Metric.run_id == run_id
    )
    return [tuple(row) for row in session.execute(query.order_by(Metric.step, Metric.key))]  # type: ignore[misc]


_NOT_SYSTEM = Metric.key.not_like(f"{SYSTEM_PREFIX}%")
"""Points that are not system series: those have steps in seconds, which are no epochs."""


@dataclass(frozen=True)
class EpochFacts:
    """How a run's points count epochs: `uses_epochs` when any point that is not a system
    series carries one (runs that never do count steps as epochs), and its `last` epoch (its
    largest step when none carries one, system series aside); None if it has no points."""

    uses_epochs: bool
    last: int | None


def epoch_facts(session: Session, run_ids: Sequence[int]) -> dict[int, EpochFacts]:
    """`EpochFacts` of each run of `run_ids` (runs that do not exist have no points), in one
    query answered from the (run_id, epoch) index, and one more for runs without epochs."""
    if not run_ids:
        return {}
    of_run = Metric.run_id == Run.id
    largest = select(func.max(Metric.epoch)).where(of_run).scalar_subquery()
    # A max rather than EXISTS: the planner reads a max in index order, where it would run
    # EXISTS as a scan of the table expecting an early hit (seconds for 50 runs).
    tagged = select(func.max(Metric.epoch)).where(of_run, _NOT_SYSTEM).scalar_subquery()
    query = select(Run.id, largest, tagged).where(Run.id.in_(sorted(set(run_ids))))
    rows = session.execute(query).all()
    facts = {run_id: EpochFacts(tagged is not None, last) for run_id, last, tagged in rows}
    untagged = [run_id for run_id, fact in facts.items() if fact.last is None]
    if untagged:
        steps = select(Metric.run_id, func.max(Metric.step)).where(
            Metric.run_id.in_(untagged), _NOT_SYSTEM
        )
        for run_id, step in session.execute(steps.group_by(Metric.run_id)):
            facts[run_id] = EpochFacts(False, int(step))
    return {run_id: facts.get(run_id, EpochFacts(False, None)) for run_id in run_ids}


def epoch_values(
    session: Session,
    chosen: Mapping[int, tuple[int, bool]],
    keys: Sequence[str] | None,
) -> dict[int, dict[str, float]]:
    """Each run's value of each key (or of `keys`) at the end of its chosen epoch, in one query.

    Args:
        chosen: run id -> (epoch, whether the run's points carry epochs); in a run whose
            points carry none, the point at step `epoch` is taken instead, the same rule the
            run's `best_epoch` follows.
        keys: only these keys; None for all.

    Returns:
        run id -> key -> value; a key logged several times in the epoch (per-step metrics
        tagged with it) gives its point of the largest step.
    """
    found: dict[int, dict[str, float]] = {run_id: {} for run_id in chosen}
    if not chosen or (keys is not None and not keys):
        return found
    terms = [
        and_(Metric.run_id == run_id, (Metric.epoch if uses else Metric.step) == epoch)
        for run_id, (epoch, uses) in chosen.items()
    ]
    query = select(Metric.run_id, Metric.key, Metric.value).where(or_(*terms))
    if keys is not None:
        query = query.where(Metric.key.in_(sorted(set(keys))))
    for run_id, key, value in session.execute(
        query.order_by(Metric.run_id, Metric.key, Metric.step)
    ):
        found[run_id][key] = value
    return found
