"""The slots a worker owns (its GPUs, or CPU slots on a host without any) and which run holds each.

GPUs are found without torch, so the worker process never starts CUDA: the `--gpus` given, else
`CUDA_VISIBLE_DEVICES`, else every GPU NVML sees (`pynvml` from nvidia-ml-py). Without NVML (no
driver, no GPU) the host is a CPU host with one slot, or `--slots N`. GPU ids are what
`CUDA_VISIBLE_DEVICES` takes (indices in PCI bus order, as NVML counts them, or UUIDs); a run's
child process gets its slots' GPUs that way.

`SlotPool` hands slots out to runs and takes them back; task threads that wait for slots (see
`server.run.lifecycle.claim_next`, head-of-line reservation) sleep on it until some are freed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import takewhile

from server.worker_status.repository import SlotHolder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Slot:
    """One slot: position `index` in the worker, on GPU `gpu` (None: a CPU slot)."""

    index: int
    gpu: str | None

    @property
    def label(self) -> str:
        """How a claim names the slot: the GPU id, or `cpu<index>`."""
        return self.gpu if self.gpu is not None else f"cpu{self.index}"


@dataclass(frozen=True)
class HostSlots:
    """What a worker serves with: its slots and a description of them for the workers page."""

    slots: tuple[Slot, ...]
    device: str


def _nvml_gpus() -> tuple[list[str], list[str]]:
    """(indices, names) of the GPUs NVML sees; empty without NVML or a driver."""
    try:
        import pynvml  # noqa: PLC0415 - GPU hosts only

        pynvml.nvmlInit()
    except Exception as error:  # ImportError, or NVMLError without a driver
        logger.info("no GPUs: NVML is not available (%s)", error)
        return [], []
    try:
        count = pynvml.nvmlDeviceGetCount()
        names = [
            str(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(index)))
            for index in range(count)
        ]
        return [str(index) for index in range(count)], names
    finally:
        pynvml.nvmlShutdown()


def _describe(gpus: Sequence[str], names: Sequence[str]) -> str:
    if not gpus:
        return "cpu"
    kinds = sorted(set(names)) or ["GPU"]
    return f"{len(gpus)} x {' / '.join(kinds)}"[:64]


def discover_slots(*, gpus: Sequence[str] | None, cpu_slots: int | None) -> HostSlots:
    """The slots of this host: `cpu_slots` CPU slots, the GPUs `gpus`, or what is visible.

    Raises:
        ValueError: both given, fewer than one slot, or an empty GPU id.
    """
    if gpus is not None and cpu_slots is not None:
        raise ValueError("give GPUs (--gpus) or CPU slots (--slots), not both")
    if cpu_slots is not None:
        if cpu_slots < 1:
            raise ValueError(f"--slots takes 1 or more CPU slots (got {cpu_slots})")
        return HostSlots(tuple(Slot(index, None) for index in range(cpu_slots)), "cpu")
    indices, names = _nvml_gpus()
    if gpus is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            ids = [gpu.strip() for gpu in visible.split(",") if gpu.strip()]
            # CUDA reads an invalid id as the end of the list: "-1" hides every GPU.
            gpus = list(takewhile(lambda gpu: not gpu.startswith("-"), ids))
        else:
            gpus = indices
    if any(not gpu for gpu in gpus):
        raise ValueError(f"--gpus takes GPU ids such as 0,1 (got {','.join(gpus)!r})")
    if not gpus:
        return HostSlots((Slot(0, None),), "cpu")
    described = [names[int(gpu)] for gpu in gpus if gpu.isdigit() and int(gpu) < len(names)]
    return HostSlots(
        tuple(Slot(index, gpu) for index, gpu in enumerate(gpus)), _describe(gpus, described)
    )


class SlotPool:
    """Which run holds each slot; thread-safe. Task threads claim one at a time (`claiming`),
    so two of them never hand out the same free slot."""

    def __init__(self, slots: Sequence[Slot]) -> None:
        if not slots:
            raise ValueError("a worker needs at least one slot")
        self.slots = tuple(slots)
        self._holders: dict[int, int | None] = {slot.index: None for slot in slots}
        self.claiming = threading.Lock()
        """Held across a claim: from reading the free slots to holding the claimed ones."""
        self.changed = threading.Condition()
        self._releases = 0

    @property
    def capacity(self) -> int:
        return len(self.slots)

    def free(self) -> list[Slot]:
        """The free slots, in the order they are handed out."""
        with self.changed:
            return [slot for slot in self.slots if self._holders[slot.index] is None]

    def hold(self, run_id: int, labels: Sequence[str]) -> tuple[Slot, ...]:
        """Give the free slots named `labels` to `run_id`."""
        with self.changed:
            taken = tuple(slot for slot in self.slots if slot.label in labels)
            if len(taken) != len(labels) or any(self._holders[s.index] for s in taken):
                raise RuntimeError(f"run {run_id}: slots {list(labels)} are not all free")
            for slot in taken:
                self._holders[slot.index] = run_id
            return taken

    def release(self, run_id: int) -> None:
        """Free the slots of `run_id` and wake the task threads waiting for slots."""
        with self.changed:
            for index, holder in self._holders.items():
                if holder == run_id:
                    self._holders[index] = None
            self._releases += 1
            self.changed.notify_all()

    @property
    def releases(self) -> int:
        """How many times slots were released so far (see `wait_for_release`)."""
        with self.changed:
            return self._releases

    def wait_for_release(self, after: int, timeout: float) -> None:
        """Return once slots were released since `releases` read `after`, or after `timeout`."""
        with self.changed:
            self.changed.wait_for(lambda: self._releases != after, timeout)

    def holders(self) -> list[SlotHolder]:
        """Every slot with the run or job holding it, for the worker's row (a job holds its
        slot as minus its id, see `worker.job_execution`)."""
        with self.changed:
            holders = [(slot, self._holders[slot.index]) for slot in self.slots]
        return [
            SlotHolder(slot.index, slot.gpu, None, -holder)
            if holder is not None and holder < 0
            else SlotHolder(slot.index, slot.gpu, holder)
            for slot, holder in holders
        ]
