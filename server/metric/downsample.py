"""Thin a long metric series for a chart without losing its peaks.

The step range is cut into equal-width buckets; each bucket keeps its lowest point, its highest
point and its last point. The first and last points of the series always stay. The result is
deterministic (ties keep the earliest minimum and the latest maximum), so a redraw never flickers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

MIN_POINTS = 5


def downsample(
    steps: npt.NDArray[np.int64], values: npt.NDArray[np.float64], max_points: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Keep at most `max_points` of a step-ordered series.

    Args:
        steps: (N,) strictly increasing steps.
        values: (N,) finite values at those steps.
        max_points: Budget, at least MIN_POINTS; series that fit are returned unchanged.

    Returns:
        (M,) steps and (M,) values, M <= max_points, still in step order.
    """
    count = len(steps)
    if count <= max_points:
        return steps, values
    buckets = max(1, (max_points - 1) // 3)
    span = int(steps[-1]) - int(steps[0])
    offsets = (steps - steps[0]).astype(np.float64)
    bucket = np.minimum((offsets * buckets / max(span, 1)).astype(np.int64), buckets - 1)
    # Steps are sorted, so each bucket is one run of positions: (B,) starts and ends. Linear
    # passes over those runs, not a sort: 50 runs x 10,000 points per compare chart.
    ends = np.concatenate((np.flatnonzero(np.diff(bucket)), [count - 1]))
    starts = np.concatenate(([0], ends[:-1] + 1))
    of_point = np.repeat(np.arange(len(starts)), ends - starts + 1)
    lowest = np.minimum.reduceat(values, starts)[of_point] == values
    highest = np.maximum.reduceat(values, starts)[of_point] == values
    keep = np.zeros(count, dtype=bool)
    keep[[0, *ends]] = True
    # The earliest minimum of a bucket: the first lowest position of its run; the latest maximum
    # the last highest one.
    at = np.flatnonzero(lowest)
    keep[at[np.concatenate(([True], of_point[at][1:] != of_point[at][:-1]))]] = True
    at = np.flatnonzero(highest)
    keep[at[np.concatenate((of_point[at][1:] != of_point[at][:-1], [True]))]] = True
    kept = np.flatnonzero(keep)
    return steps[kept], values[kept]
