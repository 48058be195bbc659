"""The train/validation split of a dataset's samples, and the held-out parts evaluation uses.

`split_samples` keeps a layout's own split (e.g. images/train + images/val, or the VOC split
files) when it leaves both parts non-empty, and otherwise holds out a seeded random share of the
samples for validation. `evaluation_samples` picks the test part, that same validation part, or
every pair. Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from trainer.data.errors import DatasetLayoutError
from trainer.data.layout import DatasetLayout, Sample

EvaluationSplit = Literal["test", "val", "all"]
EVALUATION_SPLITS: tuple[str, ...] = ("test", "val", "all")


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


def _has_voc_test_list(layout: DatasetLayout) -> bool:
    return layout.kind == "voc" and (layout.root / "ImageSets/Segmentation/test.txt").is_file()


def evaluation_samples(
    layout: DatasetLayout, which: str, *, val_fraction: float, seed: int
) -> tuple[Sample, ...]:
    """The samples of one part of a dataset, to evaluate a trained model on.

    Args:
        layout: found with `discover_layout(..., include_test=True)`.
        which: "test" (`layout.test_samples`), "val" (the validation part training uses with
            this `val_fraction` and `seed`: the layout's own, or the same seeded random one)
            or "all" (every pair, test pairs included).
        val_fraction: the trained config's `val_fraction`.
        seed: the trained config's `seed`.

    Raises:
        DatasetLayoutError: the part does not exist or is empty; the message lists the parts
            that do.
    """
    if which not in EVALUATION_SPLITS:
        raise DatasetLayoutError(
            f"unknown split {which!r}; choose one of {', '.join(EVALUATION_SPLITS)}"
        )
    by_name = {sample.name: sample for sample in layout.samples}
    everything = {**by_name, **{sample.name: sample for sample in layout.test_samples}}
    split = split_samples(list(by_name), layout.split, val_fraction=val_fraction, seed=seed)
    parts: dict[str, tuple[Sample, ...]] = {
        "test": layout.test_samples,
        "val": tuple(by_name[name] for name in split.val),
        "all": tuple(everything[name] for name in sorted(everything)),
    }
    if not parts[which]:
        raise _missing_part(layout, which, parts, split, val_fraction=val_fraction, seed=seed)
    return parts[which]


def _missing_part(
    layout: DatasetLayout,
    which: str,
    parts: Mapping[str, Sequence[Sample]],
    split: Split,
    *,
    val_fraction: float,
    seed: int,
) -> DatasetLayoutError:
    """The error for an empty part, listing the parts there are."""
    origin = (
        "the dataset's own"
        if split.source == "layout"
        else f"a random {val_fraction:.0%} held out with seed {seed}, as in training"
    )
    found = ", ".join(
        f"{part} ({len(samples)} pair{'' if len(samples) == 1 else 's'}"
        f"{f', {origin}' if part == 'val' else ''})"
        for part, samples in parts.items()
        if samples
    )
    if which == "test":
        where = (
            "ImageSets/Segmentation/test.txt lists no name with both an image and a mask"
            if _has_voc_test_list(layout)
            else "looked for images/test + masks/test, or ImageSets/Segmentation/test.txt in a "
            "Pascal VOC folder"
        )
    else:
        where = f"{len(layout.samples)} pairs leave none for validation"
    others = [part for part, samples in parts.items() if samples]
    hint = f"; choose split {' or '.join(repr(part) for part in others)}" if others else ""
    return DatasetLayoutError(
        f"{layout.root} has no {which} split ({where}); it has: {found or 'nothing'}{hint}"
    )
