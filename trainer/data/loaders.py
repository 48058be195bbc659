"""From a config and an inspection report to train/val DataLoaders: split, augment, seed."""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from trainer.config import TrainConfig
from trainer.data.augment import augmentation_notes, build_augmentation
from trainer.data.dataset import SegmentationDataset, pad_collate
from trainer.data.mask_encoding import MaskEncoding
from trainer.data.report import InspectionReport, require_ok
from trainer.data.split import split_samples

__all__ = [
    "DataBundle",
    "EpochSampler",
    "LoaderWaitMeter",
    "SegmentationDataset",
    "ValidationBatches",
    "build_data",
    "pad_collate",
    "preview_indices",
    "seed_worker",
]

Loader = DataLoader[tuple[torch.Tensor, torch.Tensor]]

SEED_SPAN = 2**31 - 1

T = TypeVar("T")


class EpochSampler(Sampler[tuple[int, int]]):
    """Shuffled training order with one augmentation seed per draw, both fixed by (seed, epoch).

    Yields `(index, augmentation seed)`. Because nothing depends on what happened in earlier
    epochs or in which loader worker a sample lands, a run resumed at epoch k sees exactly the
    batches and augmentations of an uninterrupted run, with any number of workers.

    With `world_size` processes, rank `rank` draws positions rank, rank + world_size, ... of
    that same order and seeds. The last `size % world_size` positions of each epoch are left out
    so that every rank takes the same number of batches (DistributedDataParallel steps together);
    they are different samples every epoch.
    """

    def __init__(self, size: int, seed: int, *, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not one of the {world_size} processes")
        self.size = size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size // self.world_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        seeds = torch.randint(0, SEED_SPAN, (self.size,), generator=generator).tolist()
        drawn = len(self) * self.world_size
        shard = slice(self.rank, drawn, self.world_size)
        return zip(order[shard], seeds[shard], strict=True)


class ValidationBatches(Sampler[list[int]]):
    """Validation batches in order: indices [0, B), [B, 2B), ... of a set of `size` samples.

    With `world_size` processes, rank `rank` takes batches rank, rank + world_size, ...: the
    batches of one process, each scored whole by exactly one rank (no padding, no duplicates),
    so per-batch losses and pixel counts summed over the ranks equal one process's.
    """

    def __init__(self, size: int, batch_size: int, *, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not one of the {world_size} processes")
        self.size = size
        self.batch_size = batch_size
        self._batches = range(rank, math.ceil(size / batch_size), world_size)

    def __len__(self) -> int:
        return len(self._batches)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._batches:
            start = batch * self.batch_size
            yield list(range(start, min(start + self.batch_size, self.size)))


class LoaderWaitMeter:
    """How much of the wall time the training loop spends waiting for its next batch.

    `next_batch` times the wait of each batch; `take_share` returns the waits' share of the
    time since the previous call (or since the meter was made) and starts a new interval. It
    measures the host: with CUDA kernels running ahead, a step's own time shows up at the next
    synchronisation, which each report makes.
    """

    def __init__(self) -> None:
        self._waited = 0.0
        self._since = time.perf_counter()

    def next_batch(self, batches: Iterator[T]) -> T:
        started = time.perf_counter()
        batch = next(batches)
        self._waited += time.perf_counter() - started
        return batch

    def take_share(self) -> float | None:
        """Share (0..1) of the interval spent waiting; None for an empty interval."""
        now = time.perf_counter()
        elapsed = now - self._since
        share = min(self._waited / elapsed, 1.0) if elapsed > 0 else None
        self._waited, self._since = 0.0, now
        return share


@dataclass
class DataBundle:
    """Everything the training loop needs from the data side.

    `notes` are warnings that come from building the loaders (augmentation left out, split
    fallback); the inspection's own warnings stay in `report.warnings`.
    """

    train_loader: Loader
    val_loader: Loader
    report: InspectionReport
    encoding: MaskEncoding
    class_names: tuple[str, ...]
    num_classes: int
    in_channels: int
    train_names: tuple[str, ...]
    val_names: tuple[str, ...]
    preview_indices: tuple[int, ...]
    val_dataset: SegmentationDataset
    train_sampler: EpochSampler
    notes: list[str] = field(default_factory=list)


def seed_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: seed numpy and random from torch's per-worker seed.

    Augmentations do not depend on it: each training draw carries its own seed (EpochSampler).
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def preview_indices(count: int, num_val: int, seed: int) -> tuple[int, ...]:
    """`count` validation indices spread over the set: one seeded pick per equal slice."""
    count = min(count, num_val)
    if count <= 0:
        return ()
    bounds = np.linspace(0, num_val, count + 1).astype(int)
    rng = np.random.default_rng(seed)
    return tuple(int(rng.integers(low, high)) for low, high in itertools.pairwise(bounds))


def _loader_options(cfg: TrainConfig, pin_memory: bool) -> dict[str, Any]:
    """DataLoader arguments the training and validation loaders share."""
    workers = cfg.num_workers
    return {
        "num_workers": workers,
        "collate_fn": pad_collate,
        "pin_memory": pin_memory,
        "persistent_workers": workers > 0,
        "worker_init_fn": seed_worker if workers > 0 else None,
    }


def build_data(
    cfg: TrainConfig,
    report: InspectionReport,
    *,
    pin_memory: bool,
    rank: int = 0,
    world_size: int = 1,
) -> DataBundle:
    """Split the inspected dataset and build the train and validation loaders.

    The split is the layout's own (train/val folders, VOC split files) when it has one, else a
    seeded random split holding out `cfg.val_fraction` (at least 1 sample each side). Training
    batches are shuffled per epoch by an EpochSampler seeded with `cfg.seed` (call its
    `set_epoch` before each epoch); validation is never shuffled and
    never drops its last batch, so it always has at least one batch.

    For rank `rank` of a run on `world_size` processes both loaders read that rank's shard
    (see EpochSampler and ValidationBatches); the split, names and previews are the whole set's.

    Raises:
        DatasetError: the report has errors.
        AugmentError: the augmentation spec cannot be built.
    """
    require_ok(report)
    layout = report.dataset
    if layout is None:
        raise ValueError("the report carries no dataset layout; build it with inspect_dataset")
    in_channels = cfg.in_channels if cfg.in_channels is not None else report.in_channels
    image_dtype = "uint8" if report.image_dtype == "uint8" else "float32"
    transform = build_augmentation(
        cfg.augment, channels=in_channels, image_dtype=image_dtype, seed=cfg.seed
    )
    notes = augmentation_notes(cfg.augment, in_channels, image_dtype)
    by_name = {sample.name: sample for sample in layout.samples}
    split = split_samples(list(by_name), layout.split, val_fraction=cfg.val_fraction, seed=cfg.seed)
    if split.note:
        notes.append(split.note)
    encoding = report.encoding
    train_dataset = SegmentationDataset(
        [by_name[name] for name in split.train],
        encoding,
        image_size=cfg.image_size,
        scale=cfg.scale,
        transform=transform,
    )
    val_dataset = SegmentationDataset(
        [by_name[name] for name in split.val], encoding, image_size=cfg.image_size, scale=cfg.scale
    )
    class_names = tuple(cfg.class_names if cfg.class_names is not None else report.class_names)
    sampler = EpochSampler(len(train_dataset), cfg.seed, rank=rank, world_size=world_size)
    val_batches = ValidationBatches(
        len(val_dataset), cfg.batch_size, rank=rank, world_size=world_size
    )
    return DataBundle(
        train_loader=DataLoader(
            train_dataset,
            batch_size=cfg.batch_size,
            sampler=sampler,
            drop_last=False,
            **_loader_options(cfg, pin_memory),
        ),
        val_loader=DataLoader(
            val_dataset, batch_sampler=val_batches, **_loader_options(cfg, pin_memory)
        ),
        report=report,
        encoding=encoding,
        class_names=class_names,
        num_classes=cfg.num_classes if cfg.num_classes is not None else report.num_classes,
        in_channels=in_channels,
        train_names=split.train,
        val_names=split.val,
        preview_indices=preview_indices(cfg.preview_count, len(split.val), cfg.seed),
        val_dataset=val_dataset,
        train_sampler=sampler,
        notes=notes,
    )
