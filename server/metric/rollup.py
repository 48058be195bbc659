"""Stored rollups of metric series (`metric_rollups`, PostgreSQL): per run, key and width of
`server.metric.downsample.ROLLUP_WIDTHS`, one row per bucket of that width with the bucket's
first, earliest lowest, latest highest and last points and its count. A chart of a long series
reads the buckets of one width instead of every point, and gets the same points
(`server.metric.downsample` explains why).

Kept exact on ingest: after an upsert every bucket the batch touched is recomputed in one
statement, the finest width from the stored points and each coarser one from the four buckets
of the width below, so a replay, a changed value or a point landing in an old bucket leave no
trace but the right answer. Writers of one (run, key) are serialised by the key's summary row,
which the upsert locks before this runs: the later writer recomputes in a statement that sees
the earlier one's commit. Never commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import pairwise

import numpy as np
from sqlalchemy import TextClause, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from server.metric.downsample import ROLLUP_FACTOR, ROLLUP_WIDTHS
from server.metric.points import MetricPoint

COLUMNS = (
    "count, first_step, first_value, min_step, min_value, max_step, max_value, "
    "last_step, last_value"
)
_POINT_AS_BUCKET = """
    1 AS count, m.step AS first_step, m.value AS first_value, m.step AS min_step,
    m.value AS min_value, m.step AS max_step, m.value AS max_value, m.step AS last_step,
    m.value AS last_value
"""
"""A point `m` as a bucket of one, so that one rule aggregates points and buckets alike."""


def _aggregates(alias: str) -> str:
    """The columns of one bucket aggregated from the buckets `alias` inside it (the points, or
    the buckets of the width below). Ties keep the earliest minimum and the latest maximum, as
    the downsampling does."""
    c = alias
    return f"""
    sum({c}.count)::int AS count,
    min({c}.first_step) AS first_step,
    (array_agg({c}.first_value ORDER BY {c}.first_step))[1] AS first_value,
    (array_agg({c}.min_step ORDER BY {c}.min_value, {c}.min_step))[1] AS min_step,
    min({c}.min_value) AS min_value,
    (array_agg({c}.max_step ORDER BY {c}.max_value DESC, {c}.max_step DESC))[1] AS max_step,
    max({c}.max_value) AS max_value,
    max({c}.last_step) AS last_step,
    (array_agg({c}.last_value ORDER BY {c}.last_step DESC))[1] AS last_value
    """


_INSERT = f"INSERT INTO metric_rollups (run_id, key, width, bucket, {COLUMNS})"


def _update_statement() -> TextClause:
    """One statement recomputing every bucket of every width that the touched finest buckets
    (`:keys` x `:buckets`, of run `:run_id`) lie in: the finest from their stored points, each
    coarser width from the width below's new buckets and their stored untouched siblings.
    Buckets that come out as stored are not rewritten.

    Each bucket's inputs are read by a LATERAL index range scan (OFFSET 0 keeps the planner
    from turning it into a join over every point of the run, which it did for fresh runs
    whose rollups it had no statistics of)."""
    finest = ROLLUP_WIDTHS[0]
    levels = [
        f"""l0 AS (
        SELECT t.key, t.bucket, a.*
        FROM (
            SELECT DISTINCT key, bucket
            FROM unnest(CAST(:keys AS text[]), CAST(:buckets AS bigint[])) AS t(key, bucket)
        ) AS t
        CROSS JOIN LATERAL (
            SELECT {_aggregates("c")}
            FROM (
                SELECT {_POINT_AS_BUCKET} FROM metrics m
                WHERE m.run_id = :run_id AND m.key = t.key
                  AND m.step >= t.bucket * {finest} AND m.step < (t.bucket + 1) * {finest}
            ) AS c
        ) AS a
    )"""
    ]
    stored = ", ".join(f"r.{name}" for name in COLUMNS.split(", "))
    for level, child in enumerate(ROLLUP_WIDTHS[:-1], start=1):
        below = f"l{level - 1}"
        # A child bucket the batch recomputed comes from `below`, not from its stored row.
        levels.append(f"""l{level} AS (
        SELECT c.key, c.bucket / {ROLLUP_FACTOR} AS bucket, {_aggregates("c")}
        FROM (
            SELECT DISTINCT ON (key, bucket) key, bucket, {COLUMNS}
            FROM (
                SELECT 0 AS stale, key, bucket, {COLUMNS} FROM {below}
                UNION ALL
                SELECT 1, p.key, r.bucket, {stored}
                FROM (SELECT DISTINCT key, bucket / {ROLLUP_FACTOR} AS parent FROM {below}) AS p
                CROSS JOIN LATERAL (
                    SELECT * FROM metric_rollups r
                    WHERE r.run_id = :run_id AND r.key = p.key AND r.width = {child}
                      AND r.bucket >= p.parent * {ROLLUP_FACTOR}
                      AND r.bucket < (p.parent + 1) * {ROLLUP_FACTOR}
                    OFFSET 0
                ) AS r
            ) AS u
            ORDER BY key, bucket, stale
        ) AS c
        GROUP BY c.key, c.bucket / {ROLLUP_FACTOR}
    )""")
    every = "\n        UNION ALL ".join(
        f"SELECT key, {width} AS width, bucket, {COLUMNS} FROM l{level}"
        for level, width in enumerate(ROLLUP_WIDTHS)
    )
    return text(f"""
    WITH {", ".join(levels)}
    {_INSERT}
    SELECT :run_id, key, width, bucket, {COLUMNS}
    FROM ({every}) AS fresh
    ORDER BY key, width, bucket
    ON CONFLICT (run_id, key, width, bucket) DO UPDATE SET
        ({COLUMNS}) = (
            excluded.count, excluded.first_step, excluded.first_value, excluded.min_step,
            excluded.min_value, excluded.max_step, excluded.max_value, excluded.last_step,
            excluded.last_value
        )
        WHERE (
            metric_rollups.count, metric_rollups.first_step, metric_rollups.first_value,
            metric_rollups.min_step, metric_rollups.min_value, metric_rollups.max_step,
            metric_rollups.max_value, metric_rollups.last_step, metric_rollups.last_value
        ) IS DISTINCT FROM (
            excluded.count, excluded.first_step, excluded.first_value, excluded.min_step,
            excluded.min_value, excluded.max_step, excluded.max_value, excluded.last_step,
            excluded.last_value
        )
    """)


_UPDATE = _update_statement()


def _literal(items: Iterable[str]) -> str:
    """A PostgreSQL array literal (one string rather than a list psycopg adapts item by item)."""
    return "{" + ",".join(items) + "}"


def _quoted(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def update_rollups(session: Session, run_id: int, points: Sequence[MetricPoint]) -> None:
    """Recompute every bucket the batch's points fall in, at every width, in one statement.

    The caller has written `points` and holds their keys' summary rows (`upsert_points`).
    """
    keys: list[str] = []
    buckets: list[str] = []
    steps_of: dict[str, list[int]] = defaultdict(list)
    for point in points:
        steps_of[point.key].append(point.step)
    for key, steps in sorted(steps_of.items()):
        touched = np.unique(np.asarray(steps, dtype=np.int64) // ROLLUP_WIDTHS[0])
        keys.extend([_quoted(key)] * len(touched))
        buckets.extend(str(bucket) for bucket in touched.tolist())
    session.execute(
        _UPDATE, {"run_id": run_id, "keys": _literal(keys), "buckets": _literal(buckets)}
    )


def _run_filter(run_ids: Sequence[int] | None, alias: str) -> str:
    if run_ids is None:
        return f"{alias}.run_id IN (SELECT id FROM runs)"
    return f"{alias}.run_id = ANY(CAST(:run_ids AS integer[]))"


def rebuild_rollups(connection: Connection | Session, run_ids: Sequence[int] | None) -> None:
    """Build the rollups of `run_ids` (None: every run) afresh from their stored points, on
    PostgreSQL; for data written around `upsert_points` (bulk loads, COPY)."""
    parameters: dict[str, object] = {}
    if run_ids is not None:
        parameters["run_ids"] = list(run_ids)
    delete_filter = _run_filter(run_ids, "metric_rollups")
    connection.execute(text(f"DELETE FROM metric_rollups WHERE {delete_filter}"), parameters)
    finest = ROLLUP_WIDTHS[0]
    connection.execute(
        text(f"""
        {_INSERT}
        SELECT c.run_id, c.key, {finest}, c.bucket, {_aggregates("c")}
        FROM (
            SELECT m.run_id, m.key, m.step / {finest} AS bucket, {_POINT_AS_BUCKET}
            FROM metrics m WHERE {_run_filter(run_ids, "m")}
        ) AS c
        GROUP BY c.run_id, c.key, c.bucket
        """),
        parameters,
    )
    for child, width in pairwise(ROLLUP_WIDTHS):
        connection.execute(
            text(f"""
            {_INSERT}
            SELECT c.run_id, c.key, {width}, c.bucket / {ROLLUP_FACTOR}, {_aggregates("c")}
            FROM metric_rollups c WHERE c.width = {child} AND {_run_filter(run_ids, "c")}
            GROUP BY c.run_id, c.key, c.bucket / {ROLLUP_FACTOR}
            """),
            parameters,
        )
