"""Writing metric points, their per-key summaries and the run's summary columns. Never commits.

Points are upserted on (run_id, key, step), so replaying a batch changes nothing. Summaries are
maintained incrementally: the batch's min/max/last fold into the stored ones and `count` grows by
the points that were new. When a replay changes a stored value the key's summary is recomputed
from `metrics`, so summaries stay exact. Rows are written in (key, step) order and summaries in
key order, so concurrent writers to one run take their locks in the same order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    case,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import Session, aliased

from server.metric.points import MetricPoint, UpsertStats
from server.metric.rollup import update_rollups
from server.models import Metric, MetricSummary, Run

METRICS = cast(Table, Metric.__table__)
SUMMARIES = cast(Table, MetricSummary.__table__)
MONITOR_DEFAULT = "val/iou"
VAL_IOU = "val/iou"

# PostgreSQL: points and summaries in one statement over arrays, several times faster than
# executemany. A point whose value and epoch are unchanged is left alone; `xmax = 0` marks rows
# this statement inserted (rather than updated), which counts the new points per key.
_POSTGRES_UPSERT = text("""
WITH batch AS (
    SELECT * FROM unnest(
        CAST(:keys AS text[]), CAST(:steps AS bigint[]),
        CAST(:values AS float8[]), CAST(:epochs AS integer[])
    ) WITH ORDINALITY AS b(key, step, value, epoch, position)
),
written AS (
    INSERT INTO metrics (run_id, key, step, value, epoch)
    SELECT :run_id, key, step, value, epoch FROM batch ORDER BY position
    ON CONFLICT (run_id, key, step) DO UPDATE
        SET value = excluded.value, epoch = excluded.epoch
        WHERE (metrics.value, metrics.epoch) IS DISTINCT FROM (excluded.value, excluded.epoch)
    RETURNING key, xmax = 0 AS inserted
),
counts AS (
    SELECT key, count(*) FILTER (WHERE inserted) AS new_points, bool_or(NOT inserted) AS changed
    FROM written GROUP BY key
),
per_key AS (
    SELECT key, min(value) AS min_value, max(value) AS max_value,
           (array_agg(step ORDER BY step DESC))[1] AS last_step,
           (array_agg(value ORDER BY step DESC))[1] AS last_value
    FROM batch GROUP BY key
),
summaries AS (
    INSERT INTO metric_summaries
        (run_id, key, last_step, last_value, min_value, max_value, count)
    SELECT :run_id, p.key, p.last_step, p.last_value, p.min_value, p.max_value,
           coalesce(c.new_points, 0)
    FROM per_key p LEFT JOIN counts c USING (key) ORDER BY p.key
    ON CONFLICT (run_id, key) DO UPDATE SET
        last_step = CASE WHEN excluded.last_step >= metric_summaries.last_step
                         THEN excluded.last_step ELSE metric_summaries.last_step END,
        last_value = CASE WHEN excluded.last_step >= metric_summaries.last_step
                          THEN excluded.last_value ELSE metric_summaries.last_value END,
        min_value = least(metric_summaries.min_value, excluded.min_value),
        max_value = greatest(metric_summaries.max_value, excluded.max_value),
        count = metric_summaries.count + excluded.count
)
SELECT key, coalesce(new_points, 0), coalesce(changed, false)
FROM per_key LEFT JOIN counts USING (key)
""")


def _array_item(text_value: str) -> str:
    escaped = text_value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _array_literal(items: Iterable[str]) -> str:
    """A PostgreSQL array literal. psycopg adapts a 10,000-item list element by element (about
    10 ms per list); one string per array costs a small fraction of that."""
    return "{" + ",".join(items) + "}"


def _write_postgres(
    session: Session, run_id: int, points: Sequence[MetricPoint]
) -> tuple[dict[str, int], set[str]]:
    """Upsert points and fold summaries; returns new points per key and the changed keys."""
    quoted = {key: _array_item(key) for key in {point.key for point in points}}
    result = session.execute(
        _POSTGRES_UPSERT,
        {
            "run_id": run_id,
            "keys": _array_literal(quoted[point.key] for point in points),
            "steps": _array_literal(str(point.step) for point in points),
            "values": _array_literal(repr(point.value) for point in points),
            "epochs": _array_literal(
                "NULL" if point.epoch is None else str(point.epoch) for point in points
            ),
        },
    )
    new_points: dict[str, int] = {}
    changed: set[str] = set()
    for key, count, updated in result:
        new_points[key] = count
        if updated:
            changed.add(key)
    return new_points, changed


def _summary_rows(
    run_id: int, points: Sequence[MetricPoint], new_points: dict[str, int]
) -> list[dict[str, Any]]:
    by_key: dict[str, list[MetricPoint]] = defaultdict(list)
    for point in points:
        by_key[point.key].append(point)
    rows = []
    for key in sorted(by_key):
        series = by_key[key]
        last = max(series, key=lambda point: point.step)
        values = [point.value for point in series]
        rows.append(
            {
                "run_id": run_id,
                "key": key,
                "last_step": last.step,
                "last_value": last.value,
                "min_value": min(values),
                "max_value": max(values),
                "count": new_points.get(key, 0),
            }
        )
    return rows


_SQLITE_INSERT_NEW = sqlite.insert(METRICS).on_conflict_do_nothing(
    index_elements=["run_id", "key", "step"]
)
_SQLITE_UPSERT = sqlite.insert(METRICS)
_SQLITE_REPLACE_CHANGED = _SQLITE_UPSERT.on_conflict_do_update(
    index_elements=["run_id", "key", "step"],
    set_={"value": _SQLITE_UPSERT.excluded.value, "epoch": _SQLITE_UPSERT.excluded.epoch},
    where=or_(
        METRICS.c.value.is_distinct_from(_SQLITE_UPSERT.excluded.value),
        METRICS.c.epoch.is_distinct_from(_SQLITE_UPSERT.excluded.epoch),
    ),
)


def _write_sqlite(
    session: Session, run_id: int, points: Sequence[MetricPoint]
) -> tuple[dict[str, int], set[str]]:
    """Per key: insert the points that are new, then overwrite the stored ones whose value or
    epoch differs; the rows each statement changed count the new points and name the changed
    keys.

    The counts come from the writes themselves, and the first one takes the database's write
    lock until the commit, so concurrent replays of one batch count each point once.
    """
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for point in points:
        by_key[point.key].append({"run_id": run_id, **point._asdict()})
    new_points: dict[str, int] = {}
    changed: set[str] = set()
    for key, rows in by_key.items():
        new_points[key] = _rowcount(session.execute(_SQLITE_INSERT_NEW, rows))
        if new_points[key] < len(rows) and _rowcount(
            session.execute(_SQLITE_REPLACE_CHANGED, rows)
        ):
            changed.add(key)
    summary = sqlite.insert(SUMMARIES)
    new, old = summary.excluded, SUMMARIES.c
    later = new.last_step >= old.last_step
    summary = summary.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={
            "last_step": case((later, new.last_step), else_=old.last_step),
            "last_value": case((later, new.last_value), else_=old.last_value),
            "min_value": case((new.min_value < old.min_value, new.min_value), else_=old.min_value),
            "max_value": case((new.max_value > old.max_value, new.max_value), else_=old.max_value),
            "count": old["count"] + new["count"],
        },
    )
    session.execute(summary, _summary_rows(run_id, points, new_points))
    return new_points, changed


def _rowcount(result: Result[Any]) -> int:
    """Rows an executemany changed (SQLite sums them; a conflict left alone counts none)."""
    return int(cast(CursorResult[Any], result).rowcount)


def recompute_summaries(session: Session, run_id: int, keys: Iterable[str]) -> None:
    """Rebuild the summaries of `keys` from the stored points.

    One pass over the keys' points, and the last value through the primary key's index: a join
    of the aggregates back to the points let the planner, which counts the rows of a
    transaction's own writes as none, rerun an aggregate once per point.
    """
    keys = sorted(set(keys))
    if not keys:
        return
    session.execute(
        delete(MetricSummary).where(MetricSummary.run_id == run_id, MetricSummary.key.in_(keys))
    )
    latest = aliased(Metric)
    last_value = (
        select(latest.value)
        .where(latest.run_id == Metric.run_id, latest.key == Metric.key)
        .order_by(latest.step.desc())
        .limit(1)
        .scalar_subquery()
    )
    session.execute(
        SUMMARIES.insert().from_select(
            ["run_id", "key", "count", "min_value", "max_value", "last_step", "last_value"],
            select(
                Metric.run_id,
                Metric.key,
                func.count(),
                func.min(Metric.value),
                func.max(Metric.value),
                func.max(Metric.step),
                last_value,
            )
            .where(Metric.run_id == run_id, Metric.key.in_(keys))
            .group_by(Metric.run_id, Metric.key),
        )
    )


def _summary_of(run_id: int, key: str, column: Any) -> ColumnElement[Any]:
    query = select(column).where(MetricSummary.run_id == run_id, MetricSummary.key == key)
    return query.scalar_subquery()


def _update_run_summary(
    session: Session, run_id: int, points: Sequence[MetricPoint], monitor: str
) -> None:
    """One UPDATE folding the batch into the run: epochs_done, best/last val IoU, and the best
    value of `monitor` with its epoch (minimised when the monitor ends in "loss")."""
    values: dict[str, Any] = {}
    epochs = [point.epoch for point in points if point.epoch is not None]
    if epochs:
        top = max(epochs)
        values["epochs_done"] = case((Run.epochs_done < top, top), else_=Run.epochs_done)
    keys = {point.key for point in points}
    if VAL_IOU in keys:
        values["best_val_iou"] = _summary_of(run_id, VAL_IOU, MetricSummary.max_value)
        values["last_val_iou"] = _summary_of(run_id, VAL_IOU, MetricSummary.last_value)
    if monitor in keys:
        extreme = MetricSummary.min_value if monitor.endswith("loss") else MetricSummary.max_value
        best = _summary_of(run_id, monitor, extreme)
        values["best_metric"] = best
        values["best_epoch"] = (
            select(func.coalesce(Metric.epoch, Metric.step))
            .where(Metric.run_id == run_id, Metric.key == monitor, Metric.value == best)
            .order_by(Metric.step)
            .limit(1)
            .scalar_subquery()
        )
    if values:
        session.execute(
            update(Run).where(Run.id == run_id).values(**values),
            execution_options={"synchronize_session": False},
        )


def upsert_points(
    session: Session, run_id: int, points: Sequence[MetricPoint], *, monitor: str | None = None
) -> UpsertStats:
    """Write `points` of one run (the last of duplicate (key, step) pairs wins).

    Also maintains `metric_summaries`, on PostgreSQL `metric_rollups`
    (`server.metric.rollup`), and the run's summary columns (`epochs_done`, `best_val_iou`,
    `last_val_iou`, and `best_metric`/`best_epoch` of `monitor`, by default val/iou). The
    caller checks that the run exists and holds it (see `record_metrics`).
    """
    unique = {(point.key, point.step): point for point in points}
    ordered = [unique[pair] for pair in sorted(unique)]
    if not ordered:
        return UpsertStats(written=0, new=0, keys=(), min_step=0, max_step=0)
    postgres = session.get_bind().dialect.name == "postgresql"
    new_points, changed = (_write_postgres if postgres else _write_sqlite)(session, run_id, ordered)
    recompute_summaries(session, run_id, changed)
    if postgres:
        # After the summaries: their rows, locked until the commit, serialise the key's writers.
        update_rollups(session, run_id, ordered)
    _update_run_summary(session, run_id, ordered, monitor or MONITOR_DEFAULT)
    steps = [point.step for point in ordered]
    return UpsertStats(
        written=len(ordered),
        new=sum(new_points.values()),
        keys=tuple(sorted({key for key, _ in unique})),
        min_step=min(steps),
        max_step=max(steps),
    )
