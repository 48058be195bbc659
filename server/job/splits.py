"""Which parts of a dataset an evaluation can score, found as the trainer finds them (the
layout and split modules are torch-free), so a job asking for a split that is not there is
refused before it is queued."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainer.config import TrainConfig
from trainer.data.errors import DatasetLayoutError
from trainer.data.layout import discover_layout
from trainer.data.split import evaluation_samples

JOB_SPLITS: tuple[str, ...] = ("test", "val")


def _setting(config: Mapping[str, Any], name: str) -> Any:
    value = config.get(name)
    return TrainConfig.model_fields[name].default if value is None else value


def available_splits(folder: Path, config: Mapping[str, Any]) -> tuple[str, ...]:
    """The parts of the dataset at `folder` (of `JOB_SPLITS`) that have images, with the
    layout, mask suffix, validation fraction and seed of the run's training `config`."""
    try:
        layout = discover_layout(
            folder,
            layout=_setting(config, "layout"),
            mask_suffix=config.get("mask_suffix"),
            include_test=True,
        )
    except DatasetLayoutError:
        return ()
    found = []
    for split in JOB_SPLITS:
        try:
            evaluation_samples(
                layout,
                split,
                val_fraction=_setting(config, "val_fraction"),
                seed=_setting(config, "seed"),
            )
        except DatasetLayoutError:
            continue
        found.append(split)
    return tuple(found)
