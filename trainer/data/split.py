"""The train/validation split of a dataset's samples.

`split_samples` keeps a layout's own split (e.g. images/train + images/val, or the VOC split
files) when it leaves both parts non-empty, and otherwise holds out a seeded random share of the
samples for validation. Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Split:
    """Sample names of each part; `note` says why a layout's own split was not used."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    source: Literal["layout", "random"]
    note: str | None = None


def split_samples(
    names: Sequence[str],
    split: Mapping[str, Sequence[str]] | None,
    *,
    val_fraction: float,
    seed: int,
) -> Split:
    """Train and validation sample names.

    The layout's own split wins when it leaves both parts non-empty; otherwise a seeded random
    split holds out round(n * val_fraction) names, at least 1, leaving at least 1 for training.
    """
    available = set(names)
    note = None
    if split is not None:
        train = tuple(sorted(n for n in split.get("train", ()) if n in available))
        val = tuple(sorted(n for n in split.get("val", ()) if n in available))
        if train and val:
            return Split(train, val, "layout")
        note = (
            f"the dataset's own split has {len(train)} train and {len(val)} val samples; "
            f"using a random {val_fraction:.0%} validation split instead"
        )
    ordered = sorted(available)
    count = len(ordered)
    if count < 2:
        return Split(tuple(ordered), (), "random", note)
    num_val = min(count - 1, max(1, round(count * val_fraction)))
    order = np.random.default_rng(seed).permutation(count)
    val_set = {ordered[i] for i in order[:num_val]}
    return Split(
        tuple(n for n in ordered if n not in val_set),
        tuple(n for n in ordered if n in val_set),
        "random",
        note,
    )
