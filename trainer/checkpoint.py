"""Self-describing checkpoints: weights plus everything needed to resume, predict or export.

A checkpoint holds the uncompiled module's weights, the optimizer, schedule and scaler states, the
epoch, the best monitored value, the full TrainConfig, class names, the mask value mapping (so
predictions are written in the dataset's own encoding) and RNG states. Everything is stored as
tensors and plain Python values so `torch.load(weights_only=True)` can read it safely.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
import torch

from trainer.config import TrainConfig, validate_config

FORMAT = "segtrack-checkpoint"
FORMAT_VERSION = 1

T = TypeVar("T")


class CheckpointError(RuntimeError):
    """A file that is missing, unreadable or not a segtrack checkpoint."""


@dataclass(frozen=True)
class TrainingState:
    """Where training stands at the end of `epoch`."""

    epoch: int
    best_metric: float | None
    best_epoch: int | None
    bad_epochs: int
    global_step: int


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint."""

    config: TrainConfig
    class_names: tuple[str, ...]
    mask_encoding: dict[str, Any]
    in_channels: int
    out_channels: int
    state: TrainingState
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None
    schedule_state: dict[str, Any] | None
    scaler_state: dict[str, Any] | None
    rng_state: dict[str, Any] | None


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as checkpoint-safe values."""
    kind, keys, position, has_gauss, cached = cast(
        "tuple[str, npt.NDArray[np.uint32], int, int, float]", np.random.get_state(legacy=True)
    )
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state`."""
    random.setstate(state["python"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_payload(
    *,
    model: torch.nn.Module,
    config: TrainConfig,
    class_names: tuple[str, ...],
    mask_encoding: dict[str, Any],
    in_channels: int,
    out_channels: int,
    state: TrainingState,
    optimizer: torch.optim.Optimizer | None = None,
    schedule_state: dict[str, Any] | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, Any]:
    """Everything a checkpoint holds, as of now, for `write_checkpoint`.

    Every tensor is a CPU copy, so training may go on changing the model and the optimizer
    while the payload is written elsewhere; the RNG states are those of this moment.
    """
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config.model_dump(mode="json"),
        "class_names": list(class_names),
        "mask_encoding": cpu_copy(mask_encoding),
        "in_channels": in_channels,
        "out_channels": out_channels,
        "epoch": state.epoch,
        "best_metric": state.best_metric,
        "best_epoch": state.best_epoch,
        "bad_epochs": state.bad_epochs,
        "global_step": state.global_step,
        "model": cpu_copy(model.state_dict()),
        "optimizer": cpu_copy(optimizer.state_dict()) if optimizer is not None else None,
        "schedule": cpu_copy(schedule_state),
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "rng": capture_rng_state(),
    }


def cpu_copy(value: T) -> T:
    """`value` with every tensor in it copied to the CPU and every container rebuilt.

    State dicts hand out the live tensors (and some live lists); a copy is what keeps a
    snapshot from changing under the next optimizer step. Tensors keep their memory format.
    """
    if isinstance(value, torch.Tensor):
        return cast("T", value.detach().to("cpu", copy=True))
    if isinstance(value, dict):
        return cast("T", {key: cpu_copy(item) for key, item in value.items()})
    if isinstance(value, list):
        return cast("T", [cpu_copy(item) for item in value])
    if isinstance(value, tuple):
        return cast("T", tuple(cpu_copy(item) for item in value))
    return value


def write_checkpoint(path: Path, payload: Mapping[str, Any]) -> None:
    """Write `payload` (from `checkpoint_payload`) to `path`, never leaving half a file there.

    The bytes go to `<name>.tmp` beside it, reach the disk (fsync), then take the final name in
    one rename, whose directory entry is synced too: a crash or a full disk leaves either the
    previous checkpoint or the new one, and whoever sees `path` change sees the whole file.

    Raises:
        OSError: the folder or the file cannot be written (e.g. the disk is full); the
            temporary file is removed and `path` keeps its previous content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    try:
        torch.save(dict(payload), temporary)
        _fsync(temporary)
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
    _fsync(path.parent)


def _fsync(path: Path) -> None:
    """Flush a file's or a folder's pending writes to the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def load_checkpoint(path: Path, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint written by `write_checkpoint`; raises CheckpointError with the reason."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        # torch's own message runs to a page about pickling; the error class says enough.
        raise CheckpointError(
            f"cannot read checkpoint {path}: not a PyTorch file that loads safely "
            f"({type(error).__name__}); expected best.pt or last.pt written by `segtrack train` "
            "or a segtrack worker"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a segtrack checkpoint (expected a file written by `segtrack train`)"
        )
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version}; this segtrack reads up to {FORMAT_VERSION}"
        )
    return Checkpoint(
        config=validate_config(payload["config"]),
        class_names=tuple(payload["class_names"]),
        mask_encoding=dict(payload["mask_encoding"]),
        in_channels=int(payload["in_channels"]),
        out_channels=int(payload["out_channels"]),
        state=TrainingState(
            epoch=int(payload["epoch"]),
            best_metric=payload["best_metric"],
            best_epoch=payload["best_epoch"],
            bad_epochs=int(payload["bad_epochs"]),
            global_step=int(payload["global_step"]),
        ),
        model_state=payload["model"],
        optimizer_state=payload["optimizer"],
        schedule_state=payload["schedule"],
        scaler_state=payload["scaler"],
        rng_state=payload["rng"],
    )
