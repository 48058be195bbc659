"""Bucketed min/max/last downsampling keeps every peak of a series."""

from __future__ import annotations

import numpy as np
import pytest

from server.metric.downsample import downsample


def _series(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    steps = np.cumsum(rng.integers(1, 5, count)).astype(np.int64)
    return steps, rng.normal(size=count)


@pytest.mark.parametrize("max_points", [5, 10, 99, 500])
def test_budget_extremes_and_ends(max_points: int) -> None:
    steps, values = _series(5_000)
    kept_steps, kept_values = downsample(steps, values, max_points)
    assert len(kept_steps) <= max_points
    assert np.all(np.diff(kept_steps) > 0)
    assert kept_steps[0] == steps[0] and kept_steps[-1] == steps[-1]
    assert kept_values.max() == values.max() and kept_values.min() == values.min()
    index = np.searchsorted(steps, kept_steps)
    assert np.array_equal(values[index], kept_values), "kept points are real points"


def test_short_series_are_untouched() -> None:
    steps, values = _series(50)
    kept_steps, kept_values = downsample(steps, values, 50)
    assert kept_steps is steps and kept_values is values


def test_every_bucket_keeps_its_local_peak() -> None:
    steps = np.arange(1_000, dtype=np.int64)
    values = np.zeros(1_000)
    values[::100] = np.arange(1, 11)  # one spike per 100 steps
    _, kept = downsample(steps, values, 40)
    assert set(range(1, 11)) <= set(kept.tolist())


def test_deterministic_with_ties() -> None:
    steps = np.arange(100, dtype=np.int64)
    values = np.ones(100)
    first = downsample(steps, values, 10)
    second = downsample(steps, values, 10)
    assert np.array_equal(first[0], second[0])


def _by_sorting(
    steps: np.ndarray, values: np.ndarray, max_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """The rule written the slow way: sort each bucket by value (stable), keep its first and
    last entries and its last point, plus the series' first point."""
    buckets = max(1, (max_points - 1) // 3)
    span = max(int(steps[-1]) - int(steps[0]), 1)
    bucket = np.minimum(((steps - steps[0]) * buckets / span).astype(np.int64), buckets - 1)
    keep = {0}
    for number in np.unique(bucket):
        members = np.flatnonzero(bucket == number)
        ranked = members[np.argsort(values[members], kind="stable")]
        keep |= {int(ranked[0]), int(ranked[-1]), int(members[-1])}
    kept = np.array(sorted(keep))
    return steps[kept], values[kept]


@pytest.mark.parametrize("seed", range(40))
def test_same_points_as_sorting_each_bucket(seed: int) -> None:
    rng = np.random.default_rng(seed)
    count = int(rng.integers(6, 3_000))
    steps = np.cumsum(rng.integers(1, int(rng.integers(2, 300)), count)).astype(np.int64)
    # Rounded values: plateaus, so ties of minima and maxima inside buckets.
    values = np.round(rng.normal(size=count), int(rng.integers(0, 3)))
    max_points = int(rng.integers(5, count))
    kept_steps, kept_values = downsample(steps, values, max_points)
    want_steps, want_values = _by_sorting(steps, values, max_points)
    assert np.array_equal(kept_steps, want_steps)
    assert np.array_equal(kept_values, want_values)
