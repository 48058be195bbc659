"""Stored rollups of metric series (`metric_rollups`, PostgreSQL): per run, key and width of
`server.metric.downsample.ROLLUP_WIDTHS`, one row per bucket of that width with the bucket's
first, earliest lowest, latest highest and last points and its count. A chart of a long series
reads the buckets of one width instead of every point, and gets the same points
(`server.metric.downsample` explains why).

Kept exact on ingest: after an upsert every bucket the batch touched is recomputed, the finest
width from the stored points and each coarser one from the four buckets of the width below, so
a replay, a changed value or a point landing in an old bucket leave no trace but the right
answer. Writers of one (run, key) are serialised by the key's summary row, which the upsert
locks before this runs: the later writer recomputes in a statement that sees the earlier one's
commit. Never commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any, cast

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.orm import Session

from server.metric.downsample import ROLLUP_FACTOR, ROLLUP_WIDTHS
from server.metric.points import MetricPoint

COLUMNS = (
    "count, first_step, first_value, min_step, min_value, max_step, max_value, "
    "last_step, last_value"
)

# The aggregates of one bucket: from points (`m`), and from the buckets of the width below
# (`c`). Ties keep the earliest minimum and the latest maximum, as the downsampling does.
_FROM_POINTS = """
    count(*)::int AS count,
    min(m.step) AS first_step,
    (array_agg(m.value ORDER BY m.step))[1] AS first_value,
    (array_agg(m.step ORDER BY m.value, m.step))[1] AS min_step,
    min(m.value) AS min_value,
    (array_agg(m.step ORDER BY m.value DESC, m.step DESC))[1] AS max_step,
    max(m.value) AS max_value,
    max(m.step) AS last_step,
    (array_agg(m.value ORDER BY m.step DESC))[1] AS last_value
"""
_FROM_BUCKETS = """
    sum(c.count)::int AS count,
    min(c.first_step) AS first_step,
    (array_agg(c.first_value ORDER BY c.bucket))[1] AS first_value,
    (array_agg(c.min_step ORDER BY c.min_value, c.min_step))[1] AS min_step,
    min(c.min_value) AS min_value,
    (array_agg(c.max_step ORDER BY c.max_value DESC, c.max_step DESC))[1] AS max_step,
    max(c.max_value) AS max_value,
    max(c.last_step) AS last_step,
    (array_agg(c.last_value ORDER BY c.bucket DESC))[1] AS last_value
"""
_UPSERT_TAIL = f"""
ORDER BY 1, 2, 4
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
"""
_TOUCHED = (
    "unnest(CAST(:keys AS text[]), CAST(:buckets AS bigint[])) AS t(key, bucket)"
)  # fmt: skip
_INSERT = f"INSERT INTO metric_rollups (run_id, key, width, bucket, {COLUMNS})"

_RECOMPUTE_FROM_POINTS = text(f"""
{_INSERT}
SELECT :run_id, t.key, :width, t.bucket, a.*
FROM {_TOUCHED}
CROSS JOIN LATERAL (
    SELECT {_FROM_POINTS}
    FROM metrics m
    WHERE m.run_id = :run_id AND m.key = t.key
      AND m.step >= t.bucket * CAST(:width AS bigint)
      AND m.step < (t.bucket + 1) * CAST(:width AS bigint)
) AS a
WHERE a.count > 0
{_UPSERT_TAIL}
""")

_RECOMPUTE_FROM_BUCKETS = text(f"""
{_INSERT}
SELECT :run_id, t.key, :width, t.bucket, a.*
FROM {_TOUCHED}
CROSS JOIN LATERAL (
    SELECT {_FROM_BUCKETS}
    FROM metric_rollups c
    WHERE c.run_id = :run_id AND c.key = t.key AND c.width = :child
      AND c.bucket >= t.bucket * {ROLLUP_FACTOR} AND c.bucket < (t.bucket + 1) * {ROLLUP_FACTOR}
) AS a
WHERE a.count > 0
{_UPSERT_TAIL}
""")


def _literal(items: Iterable[str]) -> str:
    """A PostgreSQL array literal (one string rather than a list psycopg adapts item by item)."""
    return "{" + ",".join(items) + "}"


def _quoted(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def update_rollups(session: Session, run_id: int, points: Sequence[MetricPoint]) -> None:
    """Recompute every bucket the batch's points fall in, at every width, finest first.

    The caller has written `points` and holds their keys' summary rows (`upsert_points`). A
    width whose touched buckets all came out unchanged leaves the coarser ones as they are.
    """
    steps_of: dict[str, list[int]] = defaultdict(list)
    for point in points:
        steps_of[point.key].append(point.step)
    finest = {
        key: np.unique(np.asarray(steps, dtype=np.int64) // ROLLUP_WIDTHS[0])
        for key, steps in sorted(steps_of.items())
    }
    for level, width in enumerate(ROLLUP_WIDTHS):
        keys: list[str] = []
        buckets: list[str] = []
        for key, finest_buckets in finest.items():
            touched = np.unique(finest_buckets // ROLLUP_FACTOR**level)
            keys.extend([_quoted(key)] * len(touched))
            buckets.extend(str(bucket) for bucket in touched.tolist())
        parameters = {
            "run_id": run_id,
            "width": width,
            "keys": _literal(keys),
            "buckets": _literal(buckets),
        }
        if level == 0:
            result = session.execute(_RECOMPUTE_FROM_POINTS, parameters)
        else:
            parameters["child"] = ROLLUP_WIDTHS[level - 1]
            result = session.execute(_RECOMPUTE_FROM_BUCKETS, parameters)
        if not cast(CursorResult[Any], result).rowcount:
            return


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
        SELECT m.run_id, m.key, {finest}, m.step / {finest}, {_FROM_POINTS}
        FROM metrics m WHERE {_run_filter(run_ids, "m")}
        GROUP BY m.run_id, m.key, m.step / {finest}
        """),
        parameters,
    )
    for child, width in pairwise(ROLLUP_WIDTHS):
        connection.execute(
            text(f"""
            {_INSERT}
            SELECT c.run_id, c.key, {width}, c.bucket / {ROLLUP_FACTOR}, {_FROM_BUCKETS}
            FROM metric_rollups c WHERE c.width = {child} AND {_run_filter(run_ids, "c")}
            GROUP BY c.run_id, c.key, c.bucket / {ROLLUP_FACTOR}
            """),
            parameters,
        )
