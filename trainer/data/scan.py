"""Reading every mask and image header of a dataset once, in threads, into pixel statistics.

Torch-free. `scan_samples` feeds `inspection`: which raw values the masks hold and how often, the
image sizes and channels, and the files that could not be read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from trainer.data.image_files import UnreadableFileError, image_shape, read_mask
from trainer.data.layout import Sample
from trainer.data.mask_encoding import combine_class_masks, pack_colour, pack_colours

_GREY_BINS = 256


@dataclass
class SampleScan:
    """What one sample's files hold.

    Attributes:
        values: Distinct raw mask values: grey values, packed colours (`colour`), or class
            indices for class-folders samples.
        counts: Pixels per entry of `values`.
        image_shape: (H, W, C) of the image, None when unreadable.
        mask_shapes: (H, W) of each mask file read.
        overlap: Pixels claimed by more than one class-folders mask.
        unreadable: (path, reason) of every file that could not be read.
    """

    sample: Sample
    values: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    counts: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    colour: bool = False
    wide: bool = False
    image_shape: tuple[int, int, int] | None = None
    mask_shapes: list[tuple[int, int]] = field(default_factory=list)
    overlap: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def _value_counts(raw: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Distinct values and their pixel counts; bincount for uint8 is far faster than unique."""
    values: npt.NDArray[Any]
    counts: npt.NDArray[Any]
    if raw.ndim == 3:
        values, counts = np.unique(pack_colours(raw), return_counts=True)
    elif raw.dtype == np.uint8:
        histogram = np.bincount(raw.ravel(), minlength=_GREY_BINS)
        values = np.flatnonzero(histogram)
        counts = histogram[values]
    else:
        values, counts = np.unique(raw, return_counts=True)
    return values.astype(np.int64), counts.astype(np.int64)


def _scan_class_masks(scan: SampleScan, shape: tuple[int, int] | None) -> None:
    raws: list[npt.NDArray[Any] | None] = []
    claimed = 0
    for path in scan.sample.masks:
        if path is None:
            raws.append(None)
            continue
        raw = read_mask(path)
        scan.mask_shapes.append((raw.shape[0], raw.shape[1]))
        raws.append(raw)
        claimed += int(np.count_nonzero(raw if raw.ndim == 2 else raw.any(axis=2)))
    if len({*scan.mask_shapes, *([shape] if shape else [])}) > 1:
        return  # sizes disagree: reported as a mismatch, nothing to combine
    first = next((raw for raw in raws if raw is not None), None)
    if shape is None and first is None:
        return
    size = shape if shape is not None else (first.shape[0], first.shape[1])  # type: ignore[union-attr]
    index = combine_class_masks(raws, size)
    scan.values, scan.counts = _value_counts(index)
    scan.overlap = claimed - int(np.count_nonzero(index))


def scan_sample(sample: Sample, *, class_folders: bool) -> SampleScan:
    """Read one sample's image header and mask(s); never raises for unreadable files."""
    scan = SampleScan(sample)
    try:
        scan.image_shape = image_shape(sample.image)
    except UnreadableFileError as error:
        scan.unreadable.append((str(error.path), error.reason))
    try:
        if class_folders:
            size = scan.image_shape[:2] if scan.image_shape is not None else None
            _scan_class_masks(scan, size)
        elif sample.masks[0] is not None:
            raw = read_mask(sample.masks[0])
            scan.mask_shapes.append((raw.shape[0], raw.shape[1]))
            scan.colour = raw.ndim == 3
            scan.wide = raw.dtype == np.uint16
            scan.values, scan.counts = _value_counts(raw)
    except UnreadableFileError as error:
        scan.unreadable.append((str(error.path), error.reason))
    return scan


def scan_samples(samples: Sequence[Sample], *, class_folders: bool) -> list[SampleScan]:
    """`scan_sample` for every sample, in threads (decoding releases the GIL), in input order."""
    with ThreadPoolExecutor(thread_name_prefix="scan") as pool:
        return list(pool.map(lambda s: scan_sample(s, class_folders=class_folders), samples))


@dataclass
class ValueTotals:
    """Pixel and image counts per raw value over all scanned masks.

    Attributes:
        colour: Whether values are packed colours (any RGB mask makes grey values (g, g, g)).
        pixels: Raw value -> pixels.
        images: Raw value -> number of masks holding it.
        total: All mask pixels.
    """

    colour: bool
    pixels: Counter[int]
    images: Counter[int]
    total: int


def total_values(scans: Sequence[SampleScan]) -> ValueTotals:
    """Sum the per-mask statistics, lifting grey values to colours when any mask is RGB."""
    colour = any(scan.colour for scan in scans)
    pixels: Counter[int] = Counter()
    images: Counter[int] = Counter()
    for scan in scans:
        values = scan.values
        if colour and not scan.colour:
            values = values * pack_colour((1, 1, 1))  # grey g -> packed (g, g, g)
        keys = values.tolist()
        pixels.update(dict(zip(keys, scan.counts.tolist(), strict=True)))
        images.update(keys)
    return ValueTotals(colour, pixels, images, sum(pixels.values()))
