"""Several runs' series read in one query on PostgreSQL, for the compare page: each (run, key)
comes back as byte strings (its steps and values, or its rollup buckets, packed by the
database), which numpy reads without a Python object per point. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import psycopg
from sqlalchemy.orm import Session

from server.bounds import INT64_MAX, INT64_MIN
from server.metric.downsample import Buckets
from server.metric.points import WHOLE, Series, StepRange

# One aggregate per (run, key), each over its own range of the primary key's index: about a
# third of the database's time of grouping every row of the runs in one hash aggregate (which
# spills to disk at 500,000 rows). Both aggregates of a pair see its rows in the same order, so
# the n-th step and the n-th value belong together; the reader restores step order anyway.
_PACKED = """
SELECT pair.run_id, pair.key, packed.steps, packed.values
FROM unnest(%s::int[], %s::text[]) AS pair(run_id, key)
CROSS JOIN LATERAL (
    SELECT string_agg(int8send(step), ''::bytea) AS steps,
           string_agg(float8send(value), ''::bytea) AS values
    FROM metrics
    WHERE metrics.run_id = pair.run_id AND metrics.key = pair.key
      AND metrics.step >= %s AND metrics.step <= %s
) AS packed
WHERE packed.steps IS NOT NULL
"""

_BUCKET_COLUMNS = (
    ("first_step", "int8"),
    ("first_value", "float8"),
    ("min_step", "int8"),
    ("min_value", "float8"),
    ("max_step", "int8"),
    ("max_value", "float8"),
    ("last_step", "int8"),
    ("last_value", "float8"),
)
_PACKED_BUCKETS = f"""
SELECT pair.run_id, pair.key, {", ".join(f"packed.{name}" for name, _ in _BUCKET_COLUMNS)}
FROM unnest(%s::int[], %s::text[], %s::int[]) AS pair(run_id, key, width)
CROSS JOIN LATERAL (
    SELECT {", ".join(f"string_agg({kind}send({name}), ''::bytea) AS {name}"
                      for name, kind in _BUCKET_COLUMNS)}
    FROM metric_rollups
    WHERE metric_rollups.run_id = pair.run_id AND metric_rollups.key = pair.key
      AND metric_rollups.width = pair.width
) AS packed
WHERE packed.first_step IS NOT NULL
"""  # fmt: skip


def _fetch(session: Session, sql: str, parameters: list[Any]) -> list[tuple[Any, ...]]:
    dbapi = cast(psycopg.Connection[Any], session.connection().connection.dbapi_connection)
    with dbapi.cursor(binary=True) as cursor:
        # Hundreds of index scans look costly enough to the planner to compile the query first
        # (JIT), which takes longer than running it.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, parameters)
        return cursor.fetchall()


def _array(packed: bytes, kind: str) -> Any:
    return np.frombuffer(packed, dtype=">i8" if kind == "int8" else ">f8").astype(
        np.int64 if kind == "int8" else np.float64
    )


def read_packed(
    session: Session, pairs: Sequence[tuple[int, str]], steps: StepRange = WHOLE
) -> dict[tuple[int, str], Series]:
    """Every point in `steps` of each (run, key) of `pairs` that has any, in step order."""
    if not pairs:
        return {}
    first = steps.first if steps.first is not None else INT64_MIN
    last = steps.last if steps.last is not None else INT64_MAX
    runs, keys = [run for run, _ in pairs], [key for _, key in pairs]
    rows = _fetch(session, _PACKED, [runs, keys, first, last])
    found: dict[tuple[int, str], Series] = {}
    for run_id, key, packed_steps, packed_values in rows:
        at = _array(packed_steps, "int8")
        values = _array(packed_values, "float8")
        order = np.argsort(at, kind="stable")
        found[run_id, key] = Series(at[order], values[order])
    return found


def read_packed_buckets(
    session: Session, wanted: Sequence[tuple[int, str, int]]
) -> dict[tuple[int, str], Buckets]:
    """The rollup buckets of each (run, key, width) of `wanted` that has any, in step order."""
    if not wanted:
        return {}
    rows = _fetch(
        session,
        _PACKED_BUCKETS,
        [[run for run, _, _ in wanted], [key for _, key, _ in wanted], [w for *_, w in wanted]],
    )
    found: dict[tuple[int, str], Buckets] = {}
    for run_id, key, *packed in rows:
        arrays = [
            _array(data, kind) for data, (_, kind) in zip(packed, _BUCKET_COLUMNS, strict=True)
        ]
        order = np.argsort(arrays[0], kind="stable")
        found[run_id, key] = Buckets(*(array[order] for array in arrays))
    return found
