"""Small configs shared by the trainer tests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainer.config import TrainConfig, validate_config


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
        **overrides,
    }
    return validate_config(settings)
