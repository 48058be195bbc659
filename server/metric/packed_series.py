"""Several runs' series read in one query on PostgreSQL, for the compare page: each (run, key)
comes back as two byte strings (its steps and values packed by the database), which numpy
reads without a Python object per point. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import psycopg
from sqlalchemy.orm import Session

from server.metric.points import Series

# One aggregate per (run, key), each over its own range of the primary key's index: about a
# third of the database's time of grouping every row of the runs in one hash aggregate (which
# spills to disk at 500,000 rows). Both aggregates of a pair see its rows in the same order, so
# the n-th step and the n-th value belong together; the reader restores step order anyway.
_PACKED = """
SELECT run.id, wanted.key, packed.steps, packed.values
FROM unnest(%s::int[]) AS run(id)
CROSS JOIN unnest(%s::text[]) AS wanted(key)
CROSS JOIN LATERAL (
    SELECT string_agg(int8send(step), ''::bytea) AS steps,
           string_agg(float8send(value), ''::bytea) AS values
    FROM metrics
    WHERE metrics.run_id = run.id AND metrics.key = wanted.key
) AS packed
WHERE packed.steps IS NOT NULL
"""


def read_packed(
    session: Session, run_ids: Sequence[int], keys: Sequence[str]
) -> dict[tuple[int, str], Series]:
    """Every point of each (run, key) there is among `run_ids` x `keys`, in step order."""
    dbapi = cast(psycopg.Connection[Any], session.connection().connection.dbapi_connection)
    with dbapi.cursor(binary=True) as cursor:
        # 200 index scans look costly enough to the planner to compile the query first (JIT),
        # which takes longer than running it.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(_PACKED, [list(run_ids), list(keys)])
        rows = cursor.fetchall()
    found: dict[tuple[int, str], Series] = {}
    for run_id, key, packed_steps, packed_values in rows:
        steps = np.frombuffer(packed_steps, dtype=">i8").astype(np.int64)
        values = np.frombuffer(packed_values, dtype=">f8").astype(np.float64)
        order = np.argsort(steps, kind="stable")
        found[run_id, key] = Series(steps[order], values[order])
    return found
