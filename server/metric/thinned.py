"""Long series of several runs downsampled inside PostgreSQL, for the compare page: the database
sends a few points per chart pixel instead of every point (50 runs x 10,000 points read in
Python took about 0.7 s per key; their buckets come back in a small fraction of that).

The buckets and the points kept are those of `server.metric.downsample` (the same float
arithmetic for the bucket of a step; per bucket the earliest minimum, the latest maximum and
the last point; the first point of the series), so a chart looks the same whichever path read
it. Never commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import psycopg
from sqlalchemy.orm import Session

from server.metric.points import Series

EXACT_STEPS = 2**53
"""Steps below this are exact as float8, which the bucket aggregates compare them as; series
reaching past it are left to the Python path."""

_THINNED = """
WITH bounds AS (
    SELECT s.run_id, s.key, s.count AS points, s.last_step AS high, first.step AS low
    FROM metric_summaries AS s
    CROSS JOIN LATERAL (
        SELECT step FROM metrics AS m
        WHERE m.run_id = s.run_id AND m.key = s.key ORDER BY step LIMIT 1
    ) AS first
    WHERE s.run_id = ANY(%(runs)s) AND s.key = ANY(%(keys)s)
        AND s.count > %(max_points)s AND s.last_step < %(exact)s
)
SELECT b.run_id, b.key, b.points,
    min(ARRAY[m.value, m.step::float8]) AS lowest,
    max(ARRAY[m.value, m.step::float8]) AS highest,
    max(ARRAY[m.step::float8, m.value]) AS closing,
    min(ARRAY[m.step::float8, m.value]) AS opening
FROM bounds AS b
JOIN metrics AS m ON m.run_id = b.run_id AND m.key = b.key
GROUP BY b.run_id, b.key, b.points,
    LEAST(floor((m.step - b.low)::float8 * %(buckets)s / GREATEST(b.high - b.low, 1)),
          %(buckets)s - 1)
"""


def read_thinned(
    session: Session, run_ids: Sequence[int], keys: Sequence[str], max_points: int
) -> dict[tuple[int, str], tuple[Series, int]]:
    """The series of (run, key) longer than `max_points`, downsampled, with their full point
    counts; pairs not listed are short enough (or absent) and read as they are."""
    buckets = max(1, (max_points - 1) // 3)
    parameters = {
        "runs": list(run_ids),
        "keys": list(keys),
        "max_points": max_points,
        "exact": EXACT_STEPS,
        "buckets": buckets,
    }
    dbapi = cast(psycopg.Connection[Any], session.connection().connection.dbapi_connection)
    with dbapi.cursor(binary=True) as cursor:
        cursor.execute(_THINNED, parameters)
        rows = cursor.fetchall()
    kept: dict[tuple[int, str], dict[float, float]] = defaultdict(dict)
    counts: dict[tuple[int, str], int] = {}
    first: dict[tuple[int, str], tuple[float, float]] = {}
    for run_id, key, points, lowest, highest, closing, opening in rows:
        pair = (run_id, key)
        counts[pair] = points
        by_step = kept[pair]
        by_step[lowest[1]] = lowest[0]
        by_step[highest[1]] = highest[0]
        by_step[closing[0]] = closing[1]
        if pair not in first or opening[0] < first[pair][0]:
            first[pair] = (opening[0], opening[1])
    result: dict[tuple[int, str], tuple[Series, int]] = {}
    for pair, by_step in kept.items():
        step, value = first[pair]
        by_step[step] = value
        steps = np.array(sorted(by_step), dtype=np.float64)
        values = np.array([by_step[item] for item in steps], dtype=np.float64)
        result[pair] = (Series(steps.astype(np.int64), values), counts[pair])
    return result
