"""The values metric code passes around: points going in, series coming out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

SYSTEM_PREFIX = "sys/"
"""Keys of system series (GPU, CPU, memory: `worker.system_metrics`). Their step is seconds since
the run started, not an epoch or an optimizer step, so values "at an epoch" leave them out and
exports put them in a table of their own."""


def is_system_key(key: str) -> bool:
    """Whether `key` names a system series (keyed by time)."""
    return key.startswith(SYSTEM_PREFIX)


class MetricPoint(NamedTuple):
    """One value of `key` at `step` (epoch-level metrics use the epoch as the step)."""

    key: str
    step: int
    value: float
    epoch: int | None = None


@dataclass(frozen=True)
class UpsertStats:
    """What an upsert did: points written (after de-duplication) and how many were new."""

    written: int
    new: int
    keys: tuple[str, ...]
    min_step: int
    max_step: int


@dataclass(frozen=True)
class StepRange:
    """Steps `first` to `last`, both included; None leaves that end open (a zoomed chart asks
    for the steps it shows)."""

    first: int | None = None
    last: int | None = None

    @property
    def whole(self) -> bool:
        """Whether the range leaves out no step."""
        return self.first is None and self.last is None


WHOLE = StepRange()


@dataclass(frozen=True)
class Series:
    """One key's points in step order: int64 steps and float64 values, shape (N,)."""

    steps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
