"""A small synthetic segmentation dataset: coloured circles, squares and triangles on a noisy field.

Deterministic (same seed, same bytes) and learnable: each class has its own colour family and its
own shape, the background is a dull low-frequency texture, and pixel noise keeps it honest.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from trainer.data.classes_file import write_classes_file
from trainer.data.image_files import write_mask

logger = logging.getLogger(__name__)

DEMO_CLASS_NAMES: tuple[str, ...] = ("background", "circle", "square", "triangle")
DEMO_CLASS_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (228, 26, 28),
    (77, 175, 74),
    (55, 126, 184),
)
"""Display colours written to classes.json (background, circle, square, triangle)."""
DEMO_TEST_COUNT = 12
"""Held-out test pairs of `segtrack up`'s demo dataset and of `segtrack demo-data` by default,
so evaluation has a test split to score."""

_SHAPE_COLOURS = {1: (225, 45, 40), 2: (45, 205, 55), 3: (45, 75, 235)}
"""Centre of each shape class's colour family; each shape is jittered around it."""
_COLOUR_JITTER = 25
_RADIUS = (0.14, 0.26)
_BACKGROUND_LEVELS = (50, 120)
_BACKGROUND_TINT = 10
_BACKGROUND_CELLS = 4
_NOISE_STD = 8.0
_MIN_SIZE = 16
_TRIANGLE_SCALE = 1.3
"""Triangles get a larger circumradius so their area is close to the other shapes'."""


@dataclass(frozen=True)
class DemoDataset:
    """A generated dataset in the images/masks layout."""

    root: Path
    count: int
    test_count: int
    class_names: tuple[str, ...]


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """Smooth greyish blobs: a coarse random grid scaled up bilinearly."""
    cells = (_BACKGROUND_CELLS, _BACKGROUND_CELLS)
    level = rng.uniform(*_BACKGROUND_LEVELS, size=cells)[:, :, None]
    tint = rng.uniform(-_BACKGROUND_TINT, _BACKGROUND_TINT, size=(*cells, 3))
    coarse = np.clip(level + tint, 0, 255).astype(np.uint8)
    return Image.fromarray(coarse).resize((size, size), Image.Resampling.BILINEAR)


def _shape_points(kind: int, cx: float, cy: float, radius: float, angle: float) -> list[float]:
    """Bounding box (circle, square) or corner points (triangle) as a flat list."""
    if kind == 1:
        return [cx - radius, cy - radius, cx + radius, cy + radius]
    if kind == 2:
        half = radius * 0.85
        return [cx - half, cy - half, cx + half, cy + half]
    corners = [angle + step * 2 * math.pi / 3 for step in range(3)]
    return [
        coord for a in corners for coord in (cx + radius * math.cos(a), cy + radius * math.sin(a))
    ]


def _draw_sample(
    rng: np.random.Generator, size: int, first_class: int
) -> tuple[Image.Image, Image.Image]:
    image = _background(rng, size)
    mask = Image.new("L", (size, size), 0)
    paint, label = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    count = int(rng.integers(1, 5))
    kinds = [first_class, *(int(k) for k in rng.integers(1, 4, size=count - 1))]
    for kind in kinds:
        radius = float(rng.uniform(*_RADIUS)) * size * (_TRIANGLE_SCALE if kind == 3 else 1.0)
        cx, cy = (float(v) for v in rng.uniform(radius, size - radius, size=2))
        angle = float(rng.uniform(0, 2 * math.pi))
        jitter = rng.integers(-_COLOUR_JITTER, _COLOUR_JITTER + 1, size=3)
        colour = tuple(int(v) for v in np.clip(np.array(_SHAPE_COLOURS[kind]) + jitter, 0, 255))
        points = _shape_points(kind, cx, cy, radius, angle)
        for draw, fill in ((paint, colour), (label, kind)):
            if kind == 1:
                draw.ellipse(points, fill=fill)
            elif kind == 2:
                draw.rectangle(points, fill=fill)
            else:
                draw.polygon(points, fill=fill)
    noise = rng.normal(0.0, _NOISE_STD, size=(size, size, 3))
    noisy = np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(noisy), mask


def _write_samples(
    images_dir: Path, masks_dir: Path, indices: range, *, size: int, seed: int
) -> None:
    images_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    for index in indices:
        rng = np.random.default_rng([seed, index])
        image, mask = _draw_sample(rng, size, first_class=index % 3 + 1)
        image.save(images_dir / f"demo_{index:04d}.png", format="PNG")
        write_mask(masks_dir / f"demo_{index:04d}.png", np.asarray(mask, dtype=np.uint8))


def make_demo_dataset(
    root: Path, *, count: int = 48, size: int = 64, seed: int = 0, test_count: int = 0
) -> DemoDataset:
    """Write `count` RGB PNG images and uint8 index PNG masks (0 background, 1 circle, 2 square,
    3 triangle) to `root/images` and `root/masks`, plus `root/classes.json`; with `test_count`,
    that many more pairs to `root/images/test` and `root/masks/test`, a held-out test split
    that training never reads and evaluation scores.

    Every class appears: image i always holds a shape of class (i mod 3) + 1.

    Raises:
        ValueError: count < 1, test_count < 0 or size < 16.
    """
    if count < 1 or test_count < 0 or size < _MIN_SIZE:
        raise ValueError(
            f"count must be >= 1, test_count >= 0 and size >= {_MIN_SIZE}, "
            f"got {count}, {test_count} and {size}"
        )
    images_dir, masks_dir = root / "images", root / "masks"
    _write_samples(images_dir, masks_dir, range(count), size=size, seed=seed)
    if test_count:
        _write_samples(
            images_dir / "test",
            masks_dir / "test",
            range(count, count + test_count),
            size=size,
            seed=seed,
        )
    write_classes_file(root, DEMO_CLASS_NAMES, colors=DEMO_CLASS_COLORS)
    logger.info(
        "wrote %d demo images (and %d to test) of %dx%d to %s", count, test_count, size, size, root
    )
    return DemoDataset(root=root, count=count, test_count=test_count, class_names=DEMO_CLASS_NAMES)
