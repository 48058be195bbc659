"""Series for charts on PostgreSQL: each (run, key) read from its stored rollup when it is
longer than the chart's budget and a stored width serves the bucket width the budget needs,
otherwise point by point; the same answer either way (`server.metric.downsample`). One query
plans (the keys' summaries and their rollups' coarsest buckets), then at most two read. Never
commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import psycopg
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.metric.downsample import (
    ROLLUP_WIDTHS,
    bucket_width,
    downsample,
    reduce_buckets,
    stored_width,
)
from server.metric.packed_series import read_packed, read_packed_buckets
from server.metric.points import WHOLE, Series, StepRange
from server.models import MetricSummary

# A rollup is used only when its coarsest buckets count every point the summary counts: data
# written around the upsert (a bulk load) has none, or not all, and is read point by point.
_PLAN = f"""
SELECT run.id, wanted.key, s.count, s.min_value, s.max_value, s.last_step, s.last_value,
       top.first_step, top.total
FROM unnest(%s::int[]) AS run(id)
CROSS JOIN unnest(%s::text[]) AS wanted(key)
LEFT JOIN metric_summaries s ON s.run_id = run.id AND s.key = wanted.key
LEFT JOIN LATERAL (
    SELECT min(r.first_step) AS first_step, sum(r.count) AS total
    FROM metric_rollups r
    WHERE r.run_id = run.id AND r.key = wanted.key AND r.width = {ROLLUP_WIDTHS[-1]}
) AS top ON s.count > %s
"""


def keys_of(session: Session, run_ids: Sequence[int]) -> list[str]:
    """Every key any of the runs has, sorted."""
    query = select(MetricSummary.key).where(MetricSummary.run_id.in_(run_ids)).distinct()
    return sorted(session.scalars(query))


def series_out(series: Series, max_points: int | None) -> dict[str, Any]:
    """One key's answer: its points (downsampled to `max_points` when longer) and the min,
    max, last point and count of all of them."""
    steps, values = series.steps, series.values
    thinned = max_points is not None and len(steps) > max_points
    if thinned and max_points is not None:
        steps, values = downsample(steps, values, max_points)
    return {
        "step": steps,
        "value": values,
        "min": float(series.values.min()),
        "max": float(series.values.max()),
        "last": {"step": int(series.steps[-1]), "value": float(series.values[-1])},
        "count": len(series.steps),
        "downsampled": thinned,
    }


def read_chart_series(
    session: Session,
    run_ids: Sequence[int],
    keys: Sequence[str],
    max_points: int | None,
    steps: StepRange = WHOLE,
) -> dict[tuple[int, str], dict[str, Any]]:
    """`series_out` of each (run, key) of `run_ids` x `keys` that has points in `steps`.

    A part of the steps (a zoomed chart) is read point by point: a stored bucket across one of
    its ends holds points on both sides.
    """
    if not steps.whole:
        pairs = [(run_id, key) for run_id in run_ids for key in keys]
        return {
            pair: series_out(series, max_points)
            for pair, series in read_packed(session, pairs, steps).items()
        }
    dbapi = cast(psycopg.Connection[Any], session.connection().connection.dbapi_connection)
    with dbapi.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        # Series that fit the budget come whole: no need to look at their rollups.
        shorter = max_points if max_points is not None else 2**63 - 1
        cursor.execute(_PLAN, [list(run_ids), list(keys), shorter])
        plan = cursor.fetchall()
    by_points: list[tuple[int, str]] = []
    by_buckets: dict[tuple[int, str], tuple[int, tuple[Any, ...]]] = {}
    for run_id, key, count, low, high, last_step, last_value, first_step, total in plan:
        width = None
        if max_points is not None and count is not None and total == count:
            width = bucket_width(int(first_step), int(last_step), max_points)
        stored = stored_width(width) if width is not None else None
        if width is None or stored is None:
            by_points.append((run_id, key))
        else:
            by_buckets[run_id, key] = (width, (stored, count, low, high, last_step, last_value))
    found = {
        pair: series_out(series, max_points)
        for pair, series in read_packed(session, by_points).items()
    }
    buckets = read_packed_buckets(
        session, [(run, key, stored) for (run, key), (_, (stored, *_)) in by_buckets.items()]
    )
    for pair, kept in buckets.items():
        width, (_, count, low, high, last_step, last_value) = by_buckets[pair]
        kept_steps, values = reduce_buckets(kept, width)
        found[pair] = {
            "step": kept_steps,
            "value": values,
            "min": float(low),
            "max": float(high),
            "last": {"step": int(last_step), "value": float(last_value)},
            "count": int(count),
            "downsampled": True,
        }
    return found
