"""A small binary dataset as users keep one: images/ and masks/ of dark images with a bright
square, masks in 0/255, an optional test split in images/test and masks/test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 32
PREDICT_DATASET = "predict"
"""The name the shared jobs service registers its second binary dataset under (20 pairs, no
test split)."""


def binary_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A dark image with a bright square, and its 0/255 mask."""
    image = rng.integers(0, 60, (SIZE, SIZE, 3), dtype=np.uint8)
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    top, left = rng.integers(2, SIZE // 2, 2)
    image[top : top + 12, left : left + 12] = 220
    mask[top : top + 12, left : left + 12] = 255
    return image, mask


def write_binary_dataset(root: Path, *, train: int = 12, test: int = 2) -> Path:
    """images/ + masks/ (0/255 PNGs) with a test split in images/test + masks/test."""
    rng = np.random.default_rng(3)
    for part, count in (("", train), ("test", test)):
        for index in range(count):
            image, mask = binary_pair(rng)
            for folder, pixels in (("images", image), ("masks", mask)):
                target = root / folder / part / f"{part or 'train'}_{index}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(target)
    return root
