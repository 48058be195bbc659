"""SQL for metric points: reading series and summaries, and (from `server.metric.upsert`)
writing points. Never commits."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import psycopg
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.metric.points import SYSTEM_PREFIX, MetricPoint, Series, UpsertStats
from server.metric.upsert import upsert_points
from server.models import Metric, MetricSummary

__all__ = [
    "MetricPoint",
    "Series",
    "UpsertStats",
    "epoch_values",
    "last_epoch",
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
    session: Session, run_id: int, keys: Sequence[str] | None, after_step: int | None
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
    if after_step is not None:
        sql += f" AND step > {mark}"
        params.append(after_step)
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
    session: Session, run_id: int, keys: Sequence[str] | None, after_step: int | None
) -> dict[str, Series]:
    """Points of the run per key in step order; all keys when `keys` is None."""
    rows = _fetch(session, run_id, sorted(set(keys)) if keys is not None else None, after_step)
    series: dict[str, Series] = {}
    if not rows:
        return series
    names, steps, values = zip(*rows, strict=True)
    step_array = np.asarray(steps, dtype=np.int64)
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


def _uses_epochs(session: Session, run_id: int) -> bool:
    """Whether any point of the run carries an epoch (runs that never do count steps as epochs)."""
    query = select(Metric.step).where(
        Metric.run_id == run_id, Metric.epoch.is_not(None), _NOT_SYSTEM
    )
    return session.scalar(query.limit(1)) is not None


def epoch_values(session: Session, run_id: int, epoch: int) -> dict[str, tuple[int, float]]:
    """Each key's value at the end of `epoch`: key -> (step, value).

    A key logged several times in the epoch (per-step metrics tagged with it) gives its point of
    the largest step. In a run whose points carry no epoch at all, the point at step `epoch` is
    taken instead, the same rule the run's `best_epoch` follows.
    """
    query = select(Metric.key, Metric.step, Metric.value).where(Metric.run_id == run_id)
    if _uses_epochs(session, run_id):
        query = query.where(Metric.epoch == epoch)
    else:
        query = query.where(Metric.step == epoch)
    found: dict[str, tuple[int, float]] = {}
    for key, step, value in session.execute(query.order_by(Metric.key, Metric.step)):
        found[key] = (step, value)
    return found


def last_epoch(session: Session, run_id: int) -> int | None:
    """The run's largest epoch (its largest step when no point carries an epoch, system series
    aside); None if empty."""
    epoch = session.scalar(select(func.max(Metric.epoch)).where(Metric.run_id == run_id))
    if epoch is not None:
        return int(epoch)
    step = session.scalar(select(func.max(Metric.step)).where(Metric.run_id == run_id, _NOT_SYSTEM))
    return int(step) if step is not None else None
