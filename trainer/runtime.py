"""The execution environment of a run: device, mixed precision and seeding."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import numpy as np
import torch

from trainer.config import AmpMode


class DeviceError(RuntimeError):
    """A device the machine does not have."""


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {name!r} asked for, but this machine has no CUDA device; "
                "use device 'auto' or 'cpu'"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {name!r} asked for, but only {torch.cuda.device_count()} "
                "CUDA device(s) are visible"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("device 'mps' asked for, but MPS is not available; use 'auto' or 'cpu'")
    return device


@dataclass(frozen=True)
class Precision:
    """How the forward pass runs: autocast dtype (None = float32) and whether a scaler is needed."""

    dtype: torch.dtype | None
    use_scaler: bool
    warnings: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return {None: "float32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self, device: torch.device) -> torch.autocast:
        """The autocast context of this precision on `device` (a no-op for float32)."""
        return torch.autocast(
            device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None
        )


def resolve_precision(amp: AmpMode, device: torch.device) -> Precision:
    """Honour `amp` where the device can, otherwise fall back with a warning that says why."""
    if amp == "off":
        return Precision(None, use_scaler=False)
    if device.type != "cuda":
        return Precision(
            None,
            use_scaler=False,
            warnings=(f"amp '{amp}' needs a CUDA device; training on {device.type} in float32",),
        )
    if amp == "bf16":
        if torch.cuda.is_bf16_supported():
            return Precision(torch.bfloat16, use_scaler=False)
        return Precision(
            torch.float16,
            use_scaler=True,
            warnings=("this GPU has no bf16 support; using fp16 with a gradient scaler instead",),
        )
    return Precision(torch.float16, use_scaler=True)


def seed_everything(seed: int, *, deterministic: bool) -> None:
    """Seed Python, NumPy and torch; with `deterministic`, also force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs this workspace setting to be deterministic.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    else:
        torch.backends.cudnn.benchmark = torch.cuda.is_available()
