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
        values: (N,) values at those steps.
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
    # Stable sort by (bucket, value): a bucket's first entry is its minimum, its last its maximum.
    order = np.lexsort((values, bucket))
    sorted_buckets = bucket[order]
    edges = np.flatnonzero(np.diff(sorted_buckets)) + 1
    firsts = np.concatenate(([0], edges))
    lasts = np.concatenate((edges - 1, [count - 1]))
    minima = order[firsts]
    maxima = order[lasts]
    # Steps are sorted, so a bucket's last point is the position before the next bucket starts.
    bucket_ends = np.concatenate((np.flatnonzero(np.diff(bucket)), [count - 1]))
    keep = np.unique(np.concatenate(([0], minima, maxima, bucket_ends)))
    return steps[keep], values[keep]
