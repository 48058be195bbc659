"""From a config and an inspection report to train/val DataLoaders: split, augment, seed."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

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
    "SegmentationDataset",
    "build_data",
    "pad_collate",
    "preview_indices",
    "seed_worker",
]

Loader = DataLoader[tuple[torch.Tensor, torch.Tensor]]

SEED_SPAN = 2**31 - 1


class EpochSampler(Sampler[tuple[int, int]]):
    """Shuffled training order with one augmentation seed per draw, both fixed by (seed, epoch).

    Yields `(index, augmentation seed)`. Because nothing depends on what happened in earlier
    epochs or in which loader worker a sample lands, a run resumed at epoch k sees exactly the
    batches and augmentations of an uninterrupted run, with any number of workers.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        seeds = torch.randint(0, SEED_SPAN, (self.size,), generator=generator).tolist()
        return zip(order, seeds, strict=True)


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


def _loader(
    dataset: SegmentationDataset,
    cfg: TrainConfig,
    *,
    sampler: EpochSampler | None,
    pin_memory: bool,
) -> Loader:
    workers = cfg.num_workers
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=pad_collate,
        pin_memory=pin_memory,
        drop_last=False,
        persistent_workers=workers > 0,
        worker_init_fn=seed_worker if workers > 0 else None,
    )


def build_data(cfg: TrainConfig, report: InspectionReport, *, pin_memory: bool) -> DataBundle:
    """Split the inspected dataset and build the train and validation loaders.

    The split is the layout's own (train/val folders, VOC split files) when it has one, else a
    seeded random split holding out `cfg.val_fraction` (at least 1 sample each side). Training
    batches are shuffled per epoch by an EpochSampler seeded with `cfg.seed` (call its
    `set_epoch` before each epoch); validation is never shuffled and
    never drops its last batch, so it always has at least one batch.

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
    sampler = EpochSampler(len(train_dataset), cfg.seed)
    return DataBundle(
        train_loader=_loader(train_dataset, cfg, sampler=sampler, pin_memory=pin_memory),
        val_loader=_loader(val_dataset, cfg, sampler=None, pin_memory=pin_memory),
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
