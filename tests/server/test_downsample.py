"""Bucketed min/max/last downsampling keeps every peak of a series; buckets are aligned on a
width that stored rollups serve, and reducing finer buckets gives the points of the raw rule."""

from __future__ import annotations

import numpy as np
import pytest

from server.metric.downsample import (
    ROLLUP_WIDTHS,
    Buckets,
    bucket_budget,
    bucket_width,
    downsample,
    reduce_buckets,
    stored_width,
)


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
    """The rule written the slow way: buckets of the chosen width aligned on its multiples;
    sort each by value (stable), keep its first and last entries and its last point, plus the
    series' first point."""
    bucket = steps // bucket_width(int(steps[0]), int(steps[-1]), max_points)
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


@pytest.mark.parametrize("seed", range(200))
def test_the_width_fits_the_budget_and_keeps_most_of_its_resolution(seed: int) -> None:
    rng = np.random.default_rng(seed)
    first = int(rng.integers(0, 10 ** int(rng.integers(1, 12))))
    last = first + int(rng.integers(1, 10 ** int(rng.integers(1, 12))))
    max_points = int(rng.integers(5, 5_000))
    width = bucket_width(first, last, max_points)
    buckets = last // width - first // width + 1
    budget = bucket_budget(max_points)
    assert buckets <= budget
    assert 3 * buckets + 1 <= max_points
    if width >= ROLLUP_WIDTHS[0]:
        assert stored_width(width) is not None, "a stored rollup serves every wide bucket"
    if budget >= 4:
        # Rounding up to a stored width costs at most half the buckets the budget allows.
        assert buckets >= min(last - first + 1, (budget - 1) // 2 - 1)


def _finer_buckets(steps: np.ndarray, values: np.ndarray, width: int) -> Buckets:
    """What a rollup at `width` stores: per bucket its first, earliest lowest, latest highest
    and last point."""
    group = steps // width
    rows: list[list[float]] = []
    for number in np.unique(group):
        members = np.flatnonzero(group == number)
        low = members[np.argsort(values[members], kind="stable")[0]]
        high = members[np.argsort(-values[members], kind="stable")]
        high_at = high[values[high] == values[high[0]]].max()
        rows.append(
            [steps[members[0]], values[members[0]], steps[low], values[low],
             steps[high_at], values[high_at], steps[members[-1]], values[members[-1]]]
        )  # fmt: skip
    table = list(zip(*rows, strict=True))
    ints = [np.asarray(column, dtype=np.int64) for column in table[0::2]]
    floats = [np.asarray(column, dtype=np.float64) for column in table[1::2]]
    return Buckets(ints[0], floats[0], ints[1], floats[1], ints[2], floats[2], ints[3], floats[3])


@pytest.mark.parametrize("seed", range(30))
def test_reducing_stored_buckets_gives_the_points_of_the_raw_rule(seed: int) -> None:
    rng = np.random.default_rng(seed)
    count = int(rng.integers(200, 6_000))
    steps = np.cumsum(rng.integers(1, int(rng.integers(2, 40)), count)).astype(np.int64)
    values = np.round(rng.normal(size=count), int(rng.integers(0, 2)))
    max_points = int(rng.integers(5, max(6, count // 8)))
    width = bucket_width(int(steps[0]), int(steps[-1]), max_points)
    stored = stored_width(width)
    if stored is None:
        pytest.skip("a chart this wide reads raw points")
    for finer in [w for w in ROLLUP_WIDTHS if width % w == 0]:
        kept = reduce_buckets(_finer_buckets(steps, values, finer), width)
        want = downsample(steps, values, max_points)
        assert np.array_equal(kept[0], want[0]) and np.array_equal(kept[1], want[1])
