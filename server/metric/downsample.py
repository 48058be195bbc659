"""Thin a long metric series for a chart without losing its peaks.

Steps are cut into buckets of one width aligned on multiples of it (bucket = step // width);
each bucket keeps its lowest point, its highest point and its last point, and the series' first
point always stays. The width is the smallest that fits the budget, rounded up to a multiple of
one of ROLLUP_WIDTHS: buckets of a multiple of a stored width are whole groups of the stored
buckets, so the answer can be computed from a stored rollup (`server.metric.rollup`) and equals,
point for point, the answer from every raw point. The result is deterministic (ties keep the
earliest minimum and the latest maximum), so a redraw never flickers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MIN_POINTS = 5
ROLLUP_FACTOR = 4
ROLLUP_WIDTHS: tuple[int, ...] = tuple(16 * ROLLUP_FACTOR**level for level in range(12))
"""Bucket widths (in steps) of the stored rollups: 16, 64, ..., 67,108,864; each a multiple of
the one before."""

Steps = npt.NDArray[np.int64]
Values = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Buckets:
    """A series summarised per bucket, shape (B,) each, in step order (raw points are buckets of
    one point): the first point, the earliest lowest, the latest highest and the last."""

    first_step: Steps
    first_value: Values
    min_step: Steps
    min_value: Values
    max_step: Steps
    max_value: Values
    last_step: Steps
    last_value: Values

    @classmethod
    def of_points(cls, steps: Steps, values: Values) -> Buckets:
        return cls(steps, values, steps, values, steps, values, steps, values)


def bucket_budget(max_points: int) -> int:
    """Buckets that fit in `max_points`: three points each, plus the first point."""
    return max(1, (max_points - 1) // 3)


def bucket_width(first_step: int, last_step: int, max_points: int) -> int:
    """The width the buckets of a series from `first_step` to `last_step` get for `max_points`.

    The smallest width whose aligned buckets fit the budget, rounded up to a multiple of the
    largest stored width at most half of it (so at least two thirds of the budget's resolution
    is kept); under 16 steps, the width itself (charts that wide read raw points).
    """
    budget = bucket_budget(max_points)
    # Aligned buckets over a span s of width w number at most s // w + 2.
    needed = last_step + 1 if budget == 1 else (last_step - first_step) // (budget - 1) + 1
    if needed < ROLLUP_WIDTHS[0]:
        return needed
    base = ROLLUP_WIDTHS[0]
    for width in ROLLUP_WIDTHS:
        if 2 * width <= needed:
            base = width
    return -(-needed // base) * base


def stored_width(width: int) -> int | None:
    """The coarsest stored rollup width that divides `width`; None when none does."""
    divisors = [stored for stored in ROLLUP_WIDTHS if width % stored == 0]
    return divisors[-1] if divisors else None


def reduce_buckets(buckets: Buckets, width: int) -> tuple[Steps, Values]:
    """The points kept at `width` from finer buckets that each lie inside one bucket of it.

    Returns:
        (M,) steps and (M,) values in step order: the first point, and per bucket of `width`
        its earliest minimum, its latest maximum and its last point.
    """
    count = len(buckets.first_step)
    if count == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    group = buckets.first_step // width
    # Rows are in step order, so each group is one run of positions: (G,) starts and ends.
    ends = np.concatenate((np.flatnonzero(np.diff(group)), [count - 1]))
    starts = np.concatenate(([0], ends[:-1] + 1))
    of_row = np.repeat(np.arange(len(starts)), ends - starts + 1)
    # The earliest minimum of a group: the first row holding its lowest value (each row's own
    # minimum is its earliest); the latest maximum: the last row holding its highest value.
    at = np.flatnonzero(np.minimum.reduceat(buckets.min_value, starts)[of_row] == buckets.min_value)
    lows = at[np.concatenate(([True], of_row[at][1:] != of_row[at][:-1]))]
    at = np.flatnonzero(np.maximum.reduceat(buckets.max_value, starts)[of_row] == buckets.max_value)
    highs = at[np.concatenate((of_row[at][1:] != of_row[at][:-1], [True]))]
    steps = np.concatenate(
        (buckets.first_step[:1], buckets.min_step[lows], buckets.max_step[highs],
         buckets.last_step[ends])
    )  # fmt: skip
    values = np.concatenate(
        (buckets.first_value[:1], buckets.min_value[lows], buckets.max_value[highs],
         buckets.last_value[ends])
    )  # fmt: skip
    # A step is one point, so one value: keep each step once, in order.
    kept_steps, index = np.unique(steps, return_index=True)
    return kept_steps.astype(np.int64), values[index]


def downsample(steps: Steps, values: Values, max_points: int) -> tuple[Steps, Values]:
    """Keep at most `max_points` of a step-ordered series.

    Args:
        steps: (N,) strictly increasing steps, none negative.
        values: (N,) finite values at those steps.
        max_points: Budget, at least MIN_POINTS; series that fit are returned unchanged.

    Returns:
        (M,) steps and (M,) values, M <= max_points, still in step order.
    """
    if len(steps) <= max_points:
        return steps, values
    width = bucket_width(int(steps[0]), int(steps[-1]), max_points)
    return reduce_buckets(Buckets.of_points(steps, values), width)
