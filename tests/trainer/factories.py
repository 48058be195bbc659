"""Small configs shared by the trainer tests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from trainer.config import TrainConfig, validate_config
from trainer.data.demo import make_demo_dataset


def tiny_config(dataset: Path, **overrides: Any) -> TrainConfig:
    """A model small enough to train in seconds on two CPU cores."""
    settings: Mapping[str, Any] = {
        "dataset": str(dataset),
        "model": "unet",
        "base_channels": 8,
        "depth": 3,
        "epochs": 2,
        "batch_size": 8,
        "learning_rate": 0.01,
        "num_workers": 0,
        "augment": "none",
        "preview_count": 2,
        "preview_worst": 0,
        **overrides,
    }
    return validate_config(settings)


def binary_demo_dataset(root: Path, *, seed: int, count: int = 16, size: int = 48) -> Path:
    """A demo dataset whose masks are 0/255 binaries (every shape is foreground)."""
    demo = make_demo_dataset(root / "demo", count=count, size=size, seed=seed).root
    binary = root / "binary"
    (binary / "images").mkdir(parents=True)
    (binary / "masks").mkdir()
    for image in sorted((demo / "images").iterdir()):
        mask = np.array(Image.open(demo / "masks" / image.name))
        Image.fromarray(((mask > 0) * 255).astype(np.uint8)).save(binary / "masks" / image.name)
        (binary / "images" / image.name).write_bytes(image.read_bytes())
    return binary
