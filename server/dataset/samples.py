"""Sample image/mask pairs of a registered dataset, as small PNGs for the datasets page.

Images become 8-bit grey or RGB (16-bit and float images are stretched to their own range);
masks are decoded with the dataset's stored encoding into uint8 class indices (IGNORE_INDEX = 255
where ignored), which the browser colours with the dataset's class colours. Torch-free: only the
trainer's file, layout and mask-encoding modules are used.

Every read checks again that the folder and the files read still lie inside a dataset root
(`require_inside_roots`): a registered folder swapped for a symlink to elsewhere is refused (403).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from server.dataset.service import require_inside_roots
from server.errors import Conflict, NotFound
from server.models import Dataset
from trainer.data.errors import DatasetLayoutError
from trainer.data.image_files import UnreadableFileError, image_size, read_image, read_mask
from trainer.data.layout import Sample, discover_layout
from trainer.data.mask_encoding import MaskEncoding, MaskValueError, combine_class_masks

LAYOUT_TTL_S = 30.0
"""How long a listed layout is reused: a page asks for a dozen PNGs of the same dataset at once."""
_MAX_CACHED = 16
_READ_ERRORS = (UnreadableFileError, MaskValueError, DatasetLayoutError, OSError)


class _LayoutCache:
    """Each dataset's sample list for LAYOUT_TTL_S, keyed by folder, layout and mask suffix."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str], tuple[float, tuple[Sample, ...]]] = {}

    def samples(self, dataset: Dataset) -> tuple[Sample, ...]:
        suffix = str(dataset.report.get("mask_suffix") or "")
        key = (dataset.path, dataset.layout, suffix)
        now = time.monotonic()
        with self._lock:
            cached = self._entries.get(key)
        if cached is not None and now - cached[0] < LAYOUT_TTL_S:
            return cached[1]
        try:
            found = discover_layout(Path(dataset.path), layout=dataset.layout, mask_suffix=suffix)
        except _READ_ERRORS as error:
            raise _unreadable(dataset, error) from error
        with self._lock:
            if len(self._entries) >= _MAX_CACHED:
                self._entries.pop(min(self._entries, key=lambda k: self._entries[k][0]))
            self._entries[key] = (now, found.samples)
        return found.samples


_LAYOUTS = _LayoutCache()


def _unreadable(dataset: Dataset, error: Exception) -> Conflict:
    return Conflict(
        f"dataset {dataset.name!r} cannot be read at {dataset.path}: {error}; "
        "the folder changed since it was registered"
    )


def list_samples(dataset: Dataset, *, roots: Sequence[Path]) -> tuple[Sample, ...]:
    """The dataset's image/mask pairs in name order (the order of the sample indices).

    Raises:
        PathNotAllowed: the folder now resolves outside every dataset root.
        Conflict: the folder cannot be listed any more.
    """
    # Checked on every call, not once per cached listing: a swap must be refused at once.
    require_inside_roots(roots, dataset, Path(dataset.path))
    return _LAYOUTS.samples(dataset)


def get_sample(dataset: Dataset, index: int, *, roots: Sequence[Path]) -> Sample:
    """Sample `index` with its files resolved, each checked to be inside a dataset root.

    Raises:
        NotFound: no such sample (the message names the valid range).
        PathNotAllowed: the folder or one of the sample's files resolves outside every root.
    """
    samples = list_samples(dataset, roots=roots)
    if not 0 <= index < len(samples):
        raise NotFound(
            f"sample {index} does not exist; dataset {dataset.name!r} has {len(samples)} samples "
            f"(indices 0 to {len(samples) - 1})"
        )
    sample = samples[index]
    return replace(
        sample,
        image=require_inside_roots(roots, dataset, sample.image),
        masks=tuple(
            None if mask is None else require_inside_roots(roots, dataset, mask)
            for mask in sample.masks
        ),
    )


def display_image(raw: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """An image as `read_image` returns it, made viewable.

    Args:
        raw: (H, W, C) uint8, uint16 or float32.

    Returns:
        (H, W) grey for 1 or 2 channels, else (H, W, 3) from the first three channels; uint8,
        other dtypes stretched from their own minimum and maximum to 0..255.
    """
    pixels = raw[:, :, 0] if raw.shape[2] < 3 else raw[:, :, :3]
    if pixels.dtype == np.uint8:
        return np.ascontiguousarray(pixels)
    values = np.nan_to_num(pixels.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def class_index_mask(sample: Sample, encoding: MaskEncoding) -> npt.NDArray[np.uint8]:
    """The sample's mask as (H, W) uint8 class indices, IGNORE_INDEX (255) where ignored."""
    if encoding.mode == "class-folders":
        raws = [read_mask(path) if path is not None else None for path in sample.masks]
        return combine_class_masks(raws, image_size(sample.image))
    path = sample.masks[0]
    if path is None:
        raise UnreadableFileError(sample.image, "the sample has no mask file")
    return encoding.decode(read_mask(path))


def _png(pixels: npt.NDArray[np.uint8], max_side: int, resample: Image.Resampling) -> bytes:
    picture = Image.fromarray(pixels)
    picture.thumbnail((max_side, max_side), resample)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def image_png(dataset: Dataset, index: int, max_side: int, *, roots: Sequence[Path]) -> bytes:
    """Sample `index`'s image as an 8-bit PNG no larger than `max_side` on either side.

    Raises:
        NotFound: no such sample. Conflict: its file cannot be read any more.
        PathNotAllowed: the file now resolves outside every dataset root.
    """
    sample = get_sample(dataset, index, roots=roots)
    try:
        pixels = display_image(read_image(sample.image))
    except _READ_ERRORS as error:
        raise _unreadable(dataset, error) from error
    return _png(pixels, max_side, Image.Resampling.LANCZOS)


def mask_png(dataset: Dataset, index: int, max_side: int, *, roots: Sequence[Path]) -> bytes:
    """Sample `index`'s mask as a grey PNG of class indices (255 = ignored), at most `max_side`.

    Scaled with nearest-neighbour sampling, so every pixel stays a class index.

    Raises:
        NotFound: no such sample. Conflict: its file cannot be read or decoded any more.
        PathNotAllowed: a mask file now resolves outside every dataset root.
    """
    sample = get_sample(dataset, index, roots=roots)
    try:
        encoding = MaskEncoding.from_dict(dataset.report["encoding"])
        pixels = class_index_mask(sample, encoding)
    except KeyError as error:
        raise Conflict(
            f"dataset {dataset.name!r} has no stored mask encoding; register it again"
        ) from error
    except _READ_ERRORS as error:
        raise _unreadable(dataset, error) from error
    return _png(pixels, max_side, Image.Resampling.NEAREST)
