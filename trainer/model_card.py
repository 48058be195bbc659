"""The model card: what a run's model costs, measured on the training device.

`measure_model_card` runs once, on rank 0, right before epoch 1 trains; its dictionary goes
into `RunInfo.model_card`. `PeakMemory` follows the training's memory and its reading goes
into every epoch's metrics as `train/peak_memory_mib`.

What is measured, with shapes and units:

- parameters: elements of every parameter tensor (`trainable_parameters`: those with
  `requires_grad`, so an encoder frozen at build time counts in the first only).
- flops: floating-point operations of one forward pass of one image, a (1, C, H, W) input at
  the training size, counted by torch's `FlopCounterMode` in eval mode under no_grad. A
  multiply-add counts as 2 FLOPs (torch's convention: a convolution is 2 x output elements x
  C_in / groups x kH x kW); operations torch has no formula for (bias, activations,
  normalisation, pooling) add nothing, so this is the convolutions' and matrix products' work.
- latency_ms_batch_1, latency_ms_batch: milliseconds per forward pass of a (1, C, H, W) and a
  (batch_size, C, H, W) input on the training device, in eval mode, no_grad and the training
  precision, of the plain (uncompiled) module. Each is the median of a few timed passes after
  warm-up passes; on CUDA each timed pass ends with a synchronisation. Timing stops after
  `TIMING_BUDGET_S` seconds per batch size (at least one timed pass), so big models stay bounded.
- images_per_s: batch_size / latency at batch_size.
- peak training memory (MiB, 2**20 bytes): on CUDA the most memory torch's allocator held for
  tensors since the training started (`torch.cuda.max_memory_allocated`); on the CPU how far
  the process's peak resident set size grew above its size when the training started (data
  loader worker processes not included).
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

if sys.platform != "win32":
    import resource

logger = logging.getLogger(__name__)

WARMUP_PASSES = 2
"""Untimed passes before timing (allocator, cuDNN algorithm choice, lazy initialisation)."""

MAX_TIMED_PASSES = 20
"""Timed passes per batch size, at most; the latency is their median."""

TIMING_BUDGET_S = 0.5
"""Seconds of warm-up and timing per batch size after which no new pass starts."""

MIB = 2**20

PEAK_MEMORY_KEY = "train/peak_memory_mib"


class ImageDataset(Protocol):
    """A dataset of `(image (C, H, W), mask (H, W))` items."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class ModelCard:
    """What a model costs; see the module docstring for units. None where a measurement failed."""

    parameters: int
    trainable_parameters: int
    flops: int | None
    image_size: tuple[int, int]
    """(H, W) of the input the FLOPs and latencies were measured at."""
    in_channels: int
    batch_size: int
    latency_ms_batch_1: float | None
    latency_ms_batch: float | None
    images_per_s: float | None
    device: str
    precision: str

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON-ready values (`image_size` a [H, W] list)."""
        card = asdict(self)
        card["image_size"] = list(self.image_size)
        return card


def measure_model_card(
    model: nn.Module,
    *,
    in_channels: int,
    image_size: tuple[int, int],
    batch_size: int,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager[Any]],
    precision: str,
    channels_last: bool = False,
) -> ModelCard:
    """Count `model`'s parameters and FLOPs and time its forward passes on `device`.

    `model` is left in the train/eval mode it came in. The inputs come from a generator of
    their own, so the run's random streams are untouched. A measurement that fails (an
    operator the FLOP counter cannot trace, memory running out) is logged and left None:
    a card never fails a run.

    Args:
        model: the plain module, already on `device`.
        in_channels, image_size: C and (H, W) of one input image.
        batch_size: the training batch size, the second latency's N.
        autocast: the training precision's autocast context (float32: a no-op).
        precision: its name, shown with the latencies.
    """
    parameters = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    height, width = image_size
    was_training = model.training
    model.eval()
    try:
        flops = _count_flops(model, _inputs(1, in_channels, image_size, device, channels_last))
        single = _time_or_none(
            model, _inputs(1, in_channels, image_size, device, channels_last), device, autocast
        )
        if batch_size == 1:
            batch = single
        else:
            batch = _time_or_none(
                model,
                _inputs(batch_size, in_channels, image_size, device, channels_last),
                device,
                autocast,
            )
    finally:
        model.train(was_training)
    return ModelCard(
        parameters=parameters,
        trainable_parameters=trainable,
        flops=flops,
        image_size=(height, width),
        in_channels=in_channels,
        batch_size=batch_size,
        latency_ms_batch_1=single,
        latency_ms_batch=batch,
        images_per_s=batch_size / (batch / 1000.0) if batch else None,
        device=describe_device(device),
        precision=precision,
    )


def training_size(
    image_size: tuple[int, int] | None, dataset: ImageDataset
) -> tuple[int, int] | None:
    """(H, W) the model trains at: the configured `image_size`, else the first image of
    `dataset` (items are `(image (C, H, W), mask)`); None when there is neither."""
    if image_size is not None:
        return image_size
    if len(dataset) == 0:
        return None
    image, _ = dataset[0]
    return int(image.shape[-2]), int(image.shape[-1])


def describe_device(device: torch.device) -> str:
    """`cpu`, or `cuda:0 (NVIDIA H200)`."""
    if device.type != "cuda":
        return str(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def time_forward(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager[Any]],
    budget_s: float = TIMING_BUDGET_S,
    warmup: int = WARMUP_PASSES,
    max_passes: int = MAX_TIMED_PASSES,
) -> float:
    """Median milliseconds of one forward pass of `model` on `inputs` (N, C, H, W).

    Warm-up and timing together stop starting passes once `budget_s` has gone by; at least one
    pass is timed. Runs as the model is (call `eval()` first for inference timing).
    """
    started = time.perf_counter()
    timings: list[float] = []
    with torch.no_grad(), autocast():
        for _ in range(warmup):
            model(inputs)
            _synchronize(device)
            if time.perf_counter() - started > budget_s / 2:
                break
        while len(timings) < max_passes:
            begun = time.perf_counter()
            model(inputs)
            _synchronize(device)
            timings.append((time.perf_counter() - begun) * 1000.0)
            if time.perf_counter() - started > budget_s:
                break
    return statistics.median(timings)


def count_flops(model: nn.Module, inputs: torch.Tensor) -> int:
    """FLOPs of one forward pass of `model` on `inputs` under no_grad (multiply-add = 2)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(inputs)
    return int(counter.get_total_flops())


class PeakMemory:
    """The training's peak memory on `device` in MiB, from `start()` on (see module docstring).

    CUDA: `torch.cuda.max_memory_allocated` after resetting the peak at `start()`. CPU: the
    process's peak resident set size minus its resident size at `start()`; on Linux the peak
    is reset at `start()` (`/proc/self/clear_refs`), elsewhere, or where the reset is refused,
    it is the process's lifetime peak (`getrusage`), which can include what came before.
    """

    def __init__(self, device: torch.device) -> None:
        self._device = device
        self._baseline_bytes = 0

    def start(self) -> None:
        if self._device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self._device)
            return
        _reset_peak_rss()
        self._baseline_bytes = _current_rss_bytes() or 0

    def peak_mib(self) -> float | None:
        """The peak so far; None where the platform cannot say."""
        if self._device.type == "cuda":
            return torch.cuda.max_memory_allocated(self._device) / MIB
        peak = _peak_rss_bytes()
        if peak is None:
            return None
        return max(0, peak - self._baseline_bytes) / MIB

    def metrics(self) -> dict[str, float]:
        """`{train/peak_memory_mib: value}`, or nothing where it is unknown."""
        peak = self.peak_mib()
        return {PEAK_MEMORY_KEY: peak} if peak is not None else {}


def _inputs(
    count: int,
    in_channels: int,
    image_size: tuple[int, int],
    device: torch.device,
    channels_last: bool,
) -> torch.Tensor:
    """Uniform [0, 1) pixels (count, C, H, W) from a generator of their own."""
    generator = torch.Generator().manual_seed(0)
    pixels = torch.rand((count, in_channels, *image_size), generator=generator).to(device)
    if channels_last:
        pixels = pixels.contiguous(memory_format=torch.channels_last)
    return pixels


def _count_flops(model: nn.Module, inputs: torch.Tensor) -> int | None:
    try:
        return count_flops(model, inputs)
    except RuntimeError:
        logger.warning(
            "could not count the model's FLOPs; the model card leaves them out", exc_info=True
        )
        return None


def _time_or_none(
    model: nn.Module,
    inputs: torch.Tensor,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager[Any]],
) -> float | None:
    try:
        return time_forward(model, inputs, device=device, autocast=autocast)
    except RuntimeError:  # torch.cuda.OutOfMemoryError is one
        logger.warning(
            "could not time the model at batch %d; the model card leaves it out",
            inputs.shape[0],
            exc_info=True,
        )
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return None


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


_PROC_STATUS = Path("/proc/self/status")


def _reset_peak_rss() -> None:
    """Linux: set the process's peak resident size (VmHWM) to its current size."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        logger.debug("cannot reset the peak resident size; the lifetime peak is used")


def _status_kib(field_name: str) -> int | None:
    """A `kB` field of /proc/self/status (Linux), in KiB."""
    try:
        text = _PROC_STATUS.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    return None


def _current_rss_bytes() -> int | None:
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    return int(psutil.Process().memory_info().rss)


def _peak_rss_bytes() -> int | None:
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    if sys.platform == "win32":
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in KiB on Linux and BSD, in bytes on macOS.
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024
