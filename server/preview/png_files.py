"""Preview PNGs as the run page reads them: scaled down to at most PREVIEW_MAX_SIDE and written
atomically. Used by the worker's reporter and by the previews a tracking client uploads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

PREVIEW_MAX_SIDE = 512
"""Previews larger than this are scaled down (nearest for masks) to keep the pages light."""


def shrink(image: Image.Image, *, labels: bool) -> Image.Image:
    """`image` with its longer side at most PREVIEW_MAX_SIDE; class-index masks (`labels`) are
    resampled nearest so no new class values appear."""
    longest = max(image.size)
    if longest <= PREVIEW_MAX_SIDE:
        return image
    scale = PREVIEW_MAX_SIDE / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.NEAREST if labels else Image.Resampling.BILINEAR)


def write_preview_png(path: Path, image: Image.Image, *, labels: bool) -> None:
    """Write `image` (shrunk) to `path` through a temporary file, so readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    shrink(image, labels=labels).save(temporary, format="PNG", compress_level=3)
    temporary.replace(path)


def write_preview_array(path: Path, pixels: npt.NDArray[np.uint8], *, labels: bool) -> None:
    """`write_preview_png` of a uint8 (H, W) or (H, W, 3) array."""
    write_preview_png(path, Image.fromarray(pixels), labels=labels)
