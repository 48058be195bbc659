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
