"""Metric rules: what a valid batch is, and what reading a series returns.

`record_metrics` is also the worker's entry point (per epoch, in its own short transaction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.bounds import INT32_MAX
from server.errors import InvalidInput, NotFound, PayloadTooLarge
from server.events import record_event
from server.metric.chart_reads import keys_of, read_chart_series, series_out
from server.metric.downsample import MIN_POINTS
from server.metric.points import WHOLE, StepRange
from server.metric.repository import MetricPoint, UpsertStats, read_series, upsert_points
from server.metric.schemas import MAX_KEY_LENGTH, MAX_STEP
from server.models import Run

MAX_POINTS_PER_CALL = 10_000
EVENT_POINTS = 500
"""Batches up to this size travel whole in their event; bigger ones as a summary."""


def check_points(points: Sequence[MetricPoint]) -> None:
    """Raise PayloadTooLarge or InvalidInput (naming the point index) for a bad batch.

    The HTTP schema checks the same rules; this guards callers that skip it (the worker).
    """
    if len(points) > MAX_POINTS_PER_CALL:
        raise PayloadTooLarge(
            f"{len(points)} points in one call; the limit is {MAX_POINTS_PER_CALL} per call, "
            "send them in several batches",
            {"max_points": MAX_POINTS_PER_CALL, "received": len(points)},
        )
    problems: list[dict[str, str]] = []
    for index, point in enumerate(points):
        if (
            not point.key
            or len(point.key) > MAX_KEY_LENGTH
            or point.key != point.key.strip()
            or "\x00" in point.key
        ):
            problems.append(
                {
                    "field": f"points.{index}.key",
                    "message": f"keys are 1 to {MAX_KEY_LENGTH} characters without whitespace "
                    "at either end or NUL characters",
                }
            )
        if not math.isfinite(point.value):
            problems.append(
                {"field": f"points.{index}.value", "message": "values must be finite numbers"}
            )
        if not 0 <= point.step <= MAX_STEP:
            problems.append(
                {"field": f"points.{index}.step", "message": f"steps are integers 0 to {MAX_STEP}"}
            )
        if point.epoch is not None and not 0 <= point.epoch <= INT32_MAX:
            problems.append(
                {
                    "field": f"points.{index}.epoch",
                    "message": f"epochs are integers 0 to {INT32_MAX}",
                }
            )
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise InvalidInput(
            f"invalid metric points: {first['field']}: {first['message']}{more}", problems
        )


def _event_payload(points: Sequence[MetricPoint], stats: UpsertStats) -> dict[str, Any]:
    if len(points) <= EVENT_POINTS:
        return {"points": [point._asdict() for point in points]}
    return {
        "summary": True,
        "keys": list(stats.keys),
        "count": stats.written,
        "min_step": stats.min_step,
        "max_step": stats.max_step,
    }


def record_metrics(session: Session, run_id: int, points: Sequence[MetricPoint]) -> UpsertStats:
    """Validate and store a batch of one run's points, and record one `metrics` event.

    Raises:
        NotFound: no run `run_id`.
        PayloadTooLarge: more than MAX_POINTS_PER_CALL points.
        InvalidInput: a bad key, a non-finite value, a step or epoch out of range (the field
            names the index).
    """
    check_points(points)
    monitor = session.execute(select(Run.monitor).where(Run.id == run_id)).one_or_none()
    if monitor is None:
        raise NotFound(f"run {run_id} does not exist")
    stats = upsert_points(session, run_id, points, monitor=monitor[0])
    if stats.written:
        record_event(session, "metrics", run_id, _event_payload(points, stats))
    return stats


def read_metrics(
    session: Session,
    run_id: int,
    *,
    keys: Sequence[str] | None,
    after_step: int | None,
    max_points: int | None,
    steps: StepRange = WHOLE,
) -> dict[str, dict[str, Any]]:
    """The run's series per key in `steps` (and after `after_step`), each downsampled to
    `max_points` when longer.

    Returns `{key: {"step", "value", "min", "max", "last": {"step", "value"}, "count",
    "downsampled"}}` where min, max, last and count describe the series before downsampling
    (of the steps read). Steps and values are numpy arrays (the router encodes them).
    """
    if session.scalar(select(Run.id).where(Run.id == run_id)) is None:
        raise NotFound(f"run {run_id} does not exist")
    if max_points is not None and max_points < MIN_POINTS:
        raise InvalidInput(
            f"max_points must be at least {MIN_POINTS}",
            [{"field": "max_points", "message": f"must be at least {MIN_POINTS}"}],
        )
    if after_step is not None:
        # Steps end at MAX_STEP, so the step after it is still a bigint.
        after = min(after_step, MAX_STEP) + 1
        steps = StepRange(after if steps.first is None else max(after, steps.first), steps.last)
    if max_points is not None and steps.whole and session.get_bind().dialect.name == "postgresql":
        # Long series from their rollups: the same points, fewer rows read.
        every_key = sorted(set(keys)) if keys is not None else keys_of(session, [run_id])
        found = read_chart_series(session, [run_id], every_key, max_points)
        return {key: found[run_id, key] for key in every_key if (run_id, key) in found}
    return {
        key: series_out(series, max_points)
        for key, series in read_series(session, run_id, keys, steps).items()
    }
