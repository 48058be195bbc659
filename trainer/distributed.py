"""One training run on several processes: the process group, the shards and the agreements.

`fit` joins the world its process was started in (`join_world`). Torch's elastic launcher
(`torchrun`, `segtrack train --nproc-per-node N`, or a worker running `launch_command`) names it
in the environment: WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. With WORLD_SIZE
absent or 1 the world is this process alone: no process group is created and every collective
below returns its input untouched, so a single-process run pays nothing for any of it.

How N processes stay one run:

- Every rank builds the same model from the same seed and DistributedDataParallel averages the
  gradients, so the weights stay identical; rank 0's copy is what is checkpointed.
- Rank r trains on positions r, r + N, ... of each epoch's order and validates batches
  r, r + N, ... of the validation set (trainer.data.loaders deals them); sums over the shards
  (`all_reduce_sum_`, `sum_scalars`, `unshard`) give the single-process metrics.
- Decisions are rank 0's and broadcast (`broadcast_flag`): a stop request, early stopping. Every
  rank reaches the same check points, so each makes the same collective calls.
- A failure ends every rank with its reason. The rank whose code raised announces
  "rank r: <reason>" in the rendezvous store and re-raises; its process ends. That makes the
  collective its peers wait in fail: with gloo as soon as the process is gone (its connections
  close; DistributedDataParallel keeps the group alive until then), with NCCL at the collective
  timeout or when the elastic launcher, which ends every process once one has failed, ends them.
  A peer whose collective failed finds the notice and ends with that reason
  (`explain_failure`), so rank 0, whose outcome is the run's, raises "rank 1: <reason>".
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch._C._distributed_c10d import Store
from torch.distributed.launcher.api import LaunchConfig
from torch.nn.parallel import DistributedDataParallel

from trainer.runtime import DeviceError, resolve_device

logger = logging.getLogger(__name__)

T = TypeVar("T")

COLLECTIVE_TIMEOUT_ENV = "SEGTRACK_COLLECTIVE_TIMEOUT_S"
DEFAULT_COLLECTIVE_TIMEOUT_S = 600.0
"""How long a rank waits in one collective for the others: long enough for rank 0 to write a
checkpoint or wait out a database hiccup between two check points, short enough that a rank that
hangs ends the run instead of holding its GPUs forever."""

NOTICE_WAIT_S = 2.0
"""After a failed collective, how long a rank looks for the notice of the peer that caused it
(a peer that crashed without one, e.g. killed by the kernel, leaves none)."""

_KEY_PREFIX = "segtrack/failure"

_NO_FORWARD_SYNC = (
    "forward_sync_buffers"
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else "broadcast_buffers"
)
"""DistributedDataParallel's option that turns off the buffer broadcast before every forward
(`broadcast_buffers` until torch 2.13 deprecated it for `forward_sync_buffers`)."""


class DistributedSetupError(RuntimeError):
    """An environment that does not describe a run this trainer can join."""


def collective_timeout_s() -> float:
    """The collective timeout: SEGTRACK_COLLECTIVE_TIMEOUT_S seconds, else the default."""
    raw = os.environ.get(COLLECTIVE_TIMEOUT_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_COLLECTIVE_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise DistributedSetupError(
            f"{COLLECTIVE_TIMEOUT_ENV}={raw!r} is not a number of seconds above 0 "
            f"(default {DEFAULT_COLLECTIVE_TIMEOUT_S:g})"
        )
    return seconds


def _env_int(name: str, default: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        if default is None:
            raise DistributedSetupError(
                f"WORLD_SIZE is set but {name} is not; start the processes with torchrun or "
                "`segtrack train --nproc-per-node N`, which set both"
            )
        return default
    try:
        value = int(raw)
    except ValueError:
        raise DistributedSetupError(f"{name}={raw!r} is not a whole number") from None
    if value < 0:
        raise DistributedSetupError(f"{name}={raw!r} must be 0 or more")
    return value


def launched_rank() -> int:
    """This process's rank as the launcher set it (RANK), 0 outside a launched run."""
    return _env_int("RANK", 0)


def launched_world_size() -> int:
    """The number of processes of the launched run (WORLD_SIZE), 1 outside one."""
    return max(_env_int("WORLD_SIZE", 1), 1)


def launch_command(nproc: int, module_args: Sequence[str]) -> list[str]:
    """The argv that runs `python -m <module_args...>` on `nproc` processes of this host.

    The processes are started by torch's elastic launcher (`torch.distributed.run`) with a
    standalone c10d rendezvous on a free port, so several runs on one host never collide; each
    process finds its rank, the world size and the rendezvous in its environment, which is what
    `fit` joins. The launcher exits 0 when every process did and otherwise ends all of them as
    soon as one fails, exiting non-zero; no restarts, since a run resumes from its checkpoint.

    Args:
        nproc: processes to start, one per GPU (each takes cuda:LOCAL_RANK; pin the host's GPUs
            with CUDA_VISIBLE_DEVICES), or CPU processes on a machine without CUDA.
        module_args: the module to run, then its arguments, e.g. `["segtrack", "train", "c.yaml"]`.

    Returns:
        `[sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
        "--nproc-per-node", str(nproc), "--max-restarts", "0", "-m", *module_args]`
    """
    if nproc < 1:
        raise ValueError(f"nproc must be 1 or more, got {nproc}")
    if not module_args:
        raise ValueError("module_args must name the module to run")
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(nproc),
        "--max-restarts",
        "0",
        "-m",
        *module_args,
    ]


def standalone_launch(nproc: int, name: str) -> LaunchConfig:
    """The elastic launcher's settings for `nproc` processes of one run on this host, in process:
    what `torchrun --standalone` does (a private c10d rendezvous on a free local port), with no
    restarts, since a run resumes from its checkpoint. `name` prefixes the rendezvous id."""
    return LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"{name}-{uuid.uuid4()}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
    )


@dataclass
class World:
    """The processes of one run, seen from one of them; see the module docstring."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    _store: Store | None = field(default=None, repr=False)
    _owns_group: bool = field(default=False, repr=False)
    _keys: str = field(default=_KEY_PREFIX, repr=False)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that reports, previews and checkpoints."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def unshard(self, values: torch.Tensor) -> torch.Tensor:
        """Every rank's values of a strided shard, back in the order of the whole.

        Rank r holds the values of items r, r + world_size, ... (as EpochSampler and
        ValidationBatches deal them). Each position of the result holds one rank's value plus
        zeros from the others, so it is exact.

        Args:
            values: (n_r,) this rank's values, in the order of its shard.

        Returns:
            (sum of n_r,) the values of all ranks, rank r's at positions r, r + world_size, ...
        """
        if not self.is_distributed:
            return values
        lengths = torch.zeros(self.world_size, dtype=torch.long, device=self.device)
        lengths[self.rank] = values.numel()
        dist.all_reduce(lengths)
        total = int(lengths.sum())
        expected = [len(range(rank, total, self.world_size)) for rank in range(self.world_size)]
        if lengths.tolist() != expected:
            raise ValueError(
                f"shard lengths {lengths.tolist()} are not a strided split of {total} items"
            )
        merged = torch.zeros(total, dtype=values.dtype, device=self.device)
        merged[self.rank :: self.world_size] = values.to(self.device)
        dist.all_reduce(merged)
        return merged

    def unshard_batches(self, rows: torch.Tensor, lengths: Sequence[int]) -> torch.Tensor:
        """Every rank's rows of strided batches, back in the order of the whole.

        Rank r scored batches r, r + world_size, ... (as ValidationBatches deals them), the
        last one possibly shorter; each row belongs to one item (an image). Every row lands in
        exactly one position of the result, the others' zeros added to it, so integer rows are
        exact and no item is counted twice.

        Args:
            rows: (n_r, M) this rank's rows, its batches one after the other.
            lengths: the number of rows of each of this rank's batches, in order.

        Returns:
            (sum of n_r, M) the rows of all ranks in single-process order.
        """
        if not self.is_distributed:
            return rows
        if sum(lengths) != rows.shape[0]:
            raise ValueError(f"batches of {sum(lengths)} rows in all, but {rows.shape[0]} rows")
        counts = torch.zeros(self.world_size, dtype=torch.long, device=self.device)
        counts[self.rank] = len(lengths)
        dist.all_reduce(counts)
        num_batches = int(counts.sum())
        expected = [
            len(range(rank, num_batches, self.world_size)) for rank in range(self.world_size)
        ]
        if counts.tolist() != expected:
            raise ValueError(
                f"batch counts {counts.tolist()} are not a strided split of {num_batches} batches"
            )
        all_lengths = torch.zeros(num_batches, dtype=torch.long, device=self.device)
        all_lengths[self.rank :: self.world_size] = torch.tensor(
            list(lengths), dtype=torch.long, device=self.device
        )
        dist.all_reduce(all_lengths)
        sizes = all_lengths.tolist()
        starts = [0]
        for size in sizes:
            starts.append(starts[-1] + size)
        positions = [
            row
            for batch in range(self.rank, num_batches, self.world_size)
            for row in range(starts[batch], starts[batch + 1])
        ]
        merged = torch.zeros((starts[-1], *rows.shape[1:]), dtype=rows.dtype, device=self.device)
        index = torch.tensor(positions, dtype=torch.long, device=self.device)
        merged.index_copy_(0, index, rows.to(self.device))
        dist.all_reduce(merged)
        return merged

    def all_reduce_sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum `tensor` over the ranks, in place; returns it."""
        if self.is_distributed:
            dist.all_reduce(tensor)
        return tensor

    def sum_scalars(self, *values: torch.Tensor | float) -> list[float]:
        """Each value (a 0-d tensor or a number) summed over the ranks, in float64."""
        if not self.is_distributed:
            return [float(value) for value in values]
        stacked = torch.stack(
            [torch.as_tensor(value, dtype=torch.float64, device=self.device) for value in values]
        )
        dist.all_reduce(stacked)
        return [float(value) for value in stacked.tolist()]

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's `flag`, on every rank."""
        if not self.is_distributed:
            return flag
        tensor = torch.tensor([int(flag)], dtype=torch.int32, device=self.device)
        dist.broadcast(tensor, src=0)
        return bool(tensor.item())

    def broadcast_object(self, value: T | None) -> T:
        """Rank 0's `value` (picklable; other ranks pass None), on every rank."""
        if not self.is_distributed:
            if value is None:
                raise ValueError("rank 0 has no value to broadcast")
            return value
        holder: list[object] = [value]
        dist.broadcast_object_list(holder, src=0, device=self.device)
        return holder[0]  # type: ignore[return-value]

    def data_parallel(
        self, model: nn.Module, *, some_weights_frozen: bool = False
    ) -> DistributedDataParallel | None:
        """`model` wrapped to average gradients over the ranks; None in a world of one.

        Buffers are not broadcast at every forward: `average_buffers_` merges them once an
        epoch, which leaves BatchNorm statistics that saw every rank's batches.
        `some_weights_frozen`: weights will stop getting gradients for a while (a frozen
        encoder), so each backward pass tells the ranks which ones got none, instead of waiting
        for their gradients forever (it costs a walk of the autograd graph per step).
        """
        if not self.is_distributed:
            return None
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        options: dict[str, Any] = {_NO_FORWARD_SYNC: False}
        return DistributedDataParallel(
            model,
            device_ids=device_ids,
            find_unused_parameters=some_weights_frozen,
            **options,
        )

    def average_buffers_(self, module: nn.Module) -> None:
        """Replace each floating-point buffer (running statistics) by its mean over the ranks.

        Running means and variances are exponential averages of per-batch statistics, linear in
        them, so the mean of the ranks' averages is the average of their batches' statistics.
        """
        buffers = [buffer for buffer in module.buffers() if buffer.is_floating_point()]
        if not self.is_distributed or not buffers:
            return
        flat = torch.cat([buffer.detach().double().reshape(-1) for buffer in buffers])
        dist.all_reduce(flat)
        flat /= self.world_size
        _scatter(flat, buffers)

    def merge_batchnorm_statistics_(self, norms: Iterable[nn.modules.batchnorm._BatchNorm]) -> None:
        """Merge statistics the ranks each estimated as cumulative averages over their batches.

        Each rank's running mean and variance are averages over its `num_batches_tracked`
        batches; weighting them by those counts gives the average over every batch of every
        rank, what one process would have computed over all of them.
        """
        tracked = [norm for norm in norms if norm.running_mean is not None]
        if not self.is_distributed or not tracked:
            return
        counts = [_tracked_batches(norm).to(self.device, torch.float64) for norm in tracked]
        weighted = [
            statistic.double().reshape(-1) * count
            for norm, count in zip(tracked, counts, strict=True)
            for statistic in _running_statistics(norm)
        ]
        flat = torch.cat([torch.stack(counts), *weighted])
        dist.all_reduce(flat)
        offset = len(tracked)
        with torch.no_grad():
            for norm, total in zip(tracked, flat[: len(tracked)].clamp_min(1), strict=True):
                for statistic in _running_statistics(norm):
                    size = statistic.numel()
                    statistic.copy_((flat[offset : offset + size] / total).view_as(statistic))
                    offset += size
                _tracked_batches(norm).fill_(int(total))

    # --- failures ---------------------------------------------------------------------------

    def explain_failure(self, error: BaseException) -> str | None:
        """How this rank ends after `error` escaped its part of the run.

        Returns:
            The run's reason, "rank r: ...", when `error` is a collective cut short by rank r's
            failure (the caller raises it in place of `error`); None when `error` is this rank's
            own, which is then announced for the others (the caller re-raises `error`).
        """
        if not self.is_distributed or self._store is None:
            return None
        if isinstance(error, dist.DistError) or type(error) is RuntimeError:
            notice = self._peer_notice()
            if notice is not None:
                return notice
        self._announce(f"rank {self.rank}: {_summary(error)}")
        return None

    def _key(self, rank: int) -> str:
        return f"{self._keys}/{rank}"

    def _announce(self, reason: str) -> None:
        assert self._store is not None
        try:
            self._store.set(self._key(self.rank), json.dumps({"at": time.time(), "reason": reason}))
        except Exception:  # a store that is gone cannot carry the reason; the error still ends
            logger.warning("rank %d could not announce its failure", self.rank, exc_info=True)

    def _peer_notice(self) -> str | None:
        """The earliest failure another rank announced, waiting up to NOTICE_WAIT_S for one."""
        assert self._store is not None
        peers = [rank for rank in range(self.world_size) if rank != self.rank]
        deadline = time.monotonic() + NOTICE_WAIT_S
        while True:
            try:
                found = [
                    json.loads(self._store.get(self._key(rank)))
                    for rank in peers
                    if self._store.check([self._key(rank)])
                ]
            except Exception:
                logger.debug("rank %d cannot read the failure notices", self.rank, exc_info=True)
                return None
            if found:
                return str(min(found, key=lambda notice: notice["at"])["reason"])
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def close(self) -> None:
        """Leave the process group when this world created it."""
        if self.is_distributed and self._owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _tracked_batches(norm: nn.modules.batchnorm._BatchNorm) -> torch.Tensor:
    tracked = norm.num_batches_tracked
    assert tracked is not None
    return tracked


def _running_statistics(norm: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, ...]:
    assert norm.running_mean is not None and norm.running_var is not None
    return norm.running_mean, norm.running_var


def _scatter(flat: torch.Tensor, targets: Sequence[torch.Tensor]) -> None:
    """Copy consecutive pieces of `flat` into `targets`, in their shapes and dtypes."""
    offset = 0
    with torch.no_grad():
        for target in targets:
            size = target.numel()
            target.copy_(flat[offset : offset + size].view_as(target))
            offset += size


def _summary(error: BaseException) -> str:
    """The first line of an error's message (its `reason` for TrainingError), or its type."""
    text = str(getattr(error, "reason", None) or error).strip()
    first = text.splitlines()[0] if text else ""
    return first or type(error).__name__


def _process_device(name: str, local_rank: int, world_size: int) -> torch.device:
    """cuda:LOCAL_RANK when the run trains on CUDA, else the CPU."""
    device = resolve_device(name)
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise DeviceError(
            f"device {name!r} resolves to {device.type}; a run on {world_size} processes trains "
            "on CUDA (one GPU each) or on the CPU; use device 'cuda', 'cpu' or 'auto'"
        )
    if device.index is not None:
        raise DeviceError(
            f"device {name!r} pins one GPU, but each of the {world_size} processes takes its own "
            "(cuda:LOCAL_RANK); use device 'auto' or 'cuda' and choose GPUs with "
            "CUDA_VISIBLE_DEVICES"
        )
    if local_rank >= torch.cuda.device_count():
        raise DeviceError(
            f"LOCAL_RANK {local_rank} has no GPU: {torch.cuda.device_count()} CUDA device(s) "
            "are visible; start at most that many processes per host"
        )
    return torch.device("cuda", local_rank)


def join_world(device_name: str) -> World:
    """The world of this process: itself alone, or its rank of a launched run.

    For a launched run (WORLD_SIZE > 1) the process group is initialised here, NCCL on CUDA
    (device cuda:LOCAL_RANK) or gloo on the CPU, with the collective timeout of
    `collective_timeout_s`; `World.close` destroys it. A process group the caller initialised
    already is used as it is and left to the caller.

    Raises:
        DistributedSetupError: the launcher's environment is incomplete or malformed.
        DeviceError: `device_name` cannot be given one GPU per process.
    """
    world_size = launched_world_size()
    if world_size == 1:
        return World(rank=0, world_size=1, local_rank=0, device=resolve_device(device_name))
    rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK", 0)
    if rank >= world_size:
        raise DistributedSetupError(f"RANK {rank} is not below WORLD_SIZE {world_size}")
    device = _process_device(device_name, local_rank, world_size)
    timeout = timedelta(seconds=collective_timeout_s())
    owns_group = not dist.is_initialized()
    if owns_group:
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", timeout=timeout, device_id=device)
        else:
            dist.init_process_group("gloo", timeout=timeout)
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    logger.info("rank %d of %d on %s", rank, world_size, device)
    return World(
        rank=rank,
        world_size=world_size,
        local_rank=local_rank,
        device=device,
        _store=dist.distributed_c10d._get_default_store(),
        _owns_group=owns_group,
        _keys=f"{_KEY_PREFIX}/{restart}",
    )
