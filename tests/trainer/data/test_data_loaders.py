"""The torch dataset, pad_collate and build_data: splits, seeds, dtypes and channel counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from trainer.config import IGNORE_INDEX, TrainConfig
from trainer.data.demo import make_demo_dataset
from trainer.data.inspection import inspect_for_config
from trainer.data.layout import Sample
from trainer.data.loaders import DataBundle, SegmentationDataset, build_data, pad_collate
from trainer.data.mask_encoding import MaskEncoding
from trainer.data.report import DatasetError


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _bundle(root: Path, **settings: Any) -> DataBundle:
    options: dict[str, Any] = {"num_workers": 0, "batch_size": 4, "augment": "none"}
    options.update(settings)
    cfg = TrainConfig(dataset=str(root), **options)
    return build_data(cfg, inspect_for_config(cfg), pin_memory=False)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demo_dataset(tmp_path_factory.mktemp("demo"), count=20, size=32).root


def test_demo_bundle_shapes_and_dtypes(demo_root: Path) -> None:
    bundle = _bundle(demo_root, augment="light")

    images, masks = next(iter(bundle.train_loader))

    assert images.shape == (4, 3, 32, 32)
    assert images.dtype == torch.uint8
    assert masks.shape == (4, 32, 32)
    assert masks.dtype == torch.uint8
    assert set(masks.unique().tolist()) <= {0, 1, 2, 3}
    assert (len(bundle.train_names), len(bundle.val_names)) == (16, 4)
    assert bundle.num_classes == 4
    assert bundle.in_channels == 3
    assert bundle.class_names == ("background", "circle", "square", "triangle")
    assert bundle.encoding.values == (0, 1, 2, 3)
    assert len(bundle.val_loader) == 1
    assert bundle.preview_indices == tuple(sorted(set(bundle.preview_indices)))
    assert len(bundle.preview_indices) == 4
    assert bundle.notes == []


def test_seeded_split_and_order_repeat(demo_root: Path) -> None:
    first, second = _bundle(demo_root, seed=3), _bundle(demo_root, seed=3)
    other = _bundle(demo_root, seed=4)

    assert first.val_names == second.val_names
    assert first.val_names != other.val_names
    assert first.preview_indices == second.preview_indices
    for (a, _), (b, _) in zip(first.train_loader, second.train_loader, strict=True):
        assert torch.equal(a, b)
    epoch_one = [m for _, m in first.train_loader]
    first.train_sampler.set_epoch(2)
    epoch_two = [m for _, m in first.train_loader]
    assert not all(torch.equal(a, b) for a, b in zip(epoch_one, epoch_two, strict=True))
    # An epoch is a pure function of (seed, epoch): what a resumed run relies on.
    first.train_sampler.set_epoch(1)
    again = [m for _, m in first.train_loader]
    assert all(torch.equal(a, b) for a, b in zip(epoch_one, again, strict=True))


def test_three_images_split_two_one_and_validate(tmp_path: Path) -> None:
    for index in range(3):
        _png(tmp_path / "images" / f"{index}.png", np.zeros((16, 16, 3), np.uint8))
        mask = np.zeros((16, 16), np.uint8)
        mask[:4, :4] = 255
        _png(tmp_path / "masks" / f"{index}.png", mask)

    bundle = _bundle(tmp_path, batch_size=8, preview_count=4)

    assert (len(bundle.train_names), len(bundle.val_names)) == (2, 1)
    assert len(bundle.val_loader) == 1
    assert bundle.preview_indices == (0,)
    _, masks = next(iter(bundle.val_loader))
    assert masks.max().item() == 1
    assert bundle.class_names == ("background", "foreground")


def test_layout_split_folders_are_used(tmp_path: Path) -> None:
    for part, count in (("train", 3), ("val", 2)):
        for index in range(count):
            _png(tmp_path / "images" / part / f"{index}.png", np.zeros((8, 8, 3), np.uint8))
            _png(tmp_path / "masks" / part / f"{index}.png", np.eye(8, dtype=np.uint8))

    bundle = _bundle(tmp_path, val_fraction=0.5)

    assert bundle.train_names == ("train/0", "train/1", "train/2")
    assert bundle.val_names == ("val/0", "val/1")


def test_config_overrides_class_names(demo_root: Path) -> None:
    names = ["bg", "c", "s", "t"]
    bundle = _bundle(demo_root, class_names=names)
    assert bundle.class_names == tuple(names)


def test_errors_in_the_report_stop_build_data(tmp_path: Path) -> None:
    for index in range(2):
        _png(tmp_path / "images" / f"{index}.png", np.zeros((8, 8, 3), np.uint8))
        _png(tmp_path / "masks" / f"{index}.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DatasetError, match="nothing to learn"):
        _bundle(tmp_path)


def test_resize_and_scale(demo_root: Path) -> None:
    sized = _bundle(demo_root, image_size=[24, 40])
    scaled = _bundle(demo_root, scale=0.5)

    images, masks = next(iter(sized.train_loader))
    assert images.shape[-2:] == (24, 40)
    assert masks.shape[-2:] == (24, 40)
    assert set(masks.unique().tolist()) <= {0, 1, 2, 3}
    assert next(iter(scaled.val_loader))[0].shape[-2:] == (16, 16)


def test_pad_collate_pads_odd_sizes() -> None:
    small = (torch.ones(3, 5, 7, dtype=torch.uint8), torch.ones(5, 7, dtype=torch.uint8))
    large = (torch.full((3, 9, 6), 2, dtype=torch.uint8), torch.full((9, 6), 2, dtype=torch.uint8))

    images, masks = pad_collate([small, large])

    assert images.shape == (2, 3, 9, 7)
    assert masks.shape == (2, 9, 7)
    assert images[0, :, 5:, :].eq(0).all()
    assert masks[0, 5:, :].eq(IGNORE_INDEX).all()
    assert masks[1, :, 6:].eq(IGNORE_INDEX).all()
    assert images[1, :, :9, :6].eq(2).all()
    assert masks[0, :5, :7].eq(1).all()


def test_pad_collate_stacks_equal_sizes_and_mixes_dtypes() -> None:
    a = (torch.full((1, 4, 4), 255, dtype=torch.uint8), torch.zeros(4, 4, dtype=torch.uint8))
    b = (torch.full((1, 4, 4), 0.5), torch.zeros(4, 4, dtype=torch.uint8))
    images, _ = pad_collate([a, b])
    assert images.dtype == torch.float32
    assert images[0].eq(1.0).all()
    assert images[1].eq(0.5).all()


def test_native_sizes_batch_with_padding(tmp_path: Path) -> None:
    for index, (height, width) in enumerate([(10, 13), (17, 9), (12, 12), (15, 11)]):
        _png(tmp_path / "images" / f"{index}.png", np.full((height, width, 3), 9, np.uint8))
        mask = np.zeros((height, width), np.uint8)
        mask[:3, :3] = 1
        _png(tmp_path / "masks" / f"{index}.png", mask)

    bundle = _bundle(tmp_path, val_fraction=0.25, batch_size=3)
    images, masks = next(iter(bundle.train_loader))

    assert images.shape[0] == 3
    assert masks.eq(IGNORE_INDEX).any()


def test_n_channel_images_and_augmentation_notes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for index in range(4):
        (tmp_path / "images").mkdir(exist_ok=True)
        np.save(tmp_path / "images" / f"{index}.npy", rng.integers(0, 256, (16, 16, 5), np.uint8))
        _png(tmp_path / "masks" / f"{index}.png", np.tril(np.ones((16, 16), np.uint8)))

    bundle = _bundle(tmp_path, augment="medium")
    images, _ = next(iter(bundle.train_loader))

    assert bundle.in_channels == 5
    assert images.shape[1] == 5
    assert images.dtype == torch.uint8
    assert len(bundle.notes) == 1
    assert "5 channel" in bundle.notes[0]


def test_16_bit_images_become_float_in_unit_range(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    for index in range(3):
        values = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
        tifffile.imwrite(tmp_path / "images" / f"{index}.tif", values)
        _png(tmp_path / "masks" / f"{index}.png", np.eye(8, dtype=np.uint8))

    bundle = _bundle(tmp_path, augment="strong")
    images, _ = next(iter(bundle.val_loader))

    assert images.dtype == torch.float32
    assert images.min().item() == 0.0
    assert images.max().item() == pytest.approx(1.0)
    assert bundle.val_dataset[0][0].shape == (1, 8, 8)


def test_class_folder_masks_are_combined(tmp_path: Path) -> None:
    for index in range(3):
        _png(tmp_path / "images" / f"{index}.png", np.zeros((8, 8, 3), np.uint8))
        first = np.zeros((8, 8), np.uint8)
        first[:4] = 255
        _png(tmp_path / "masks" / "a" / f"{index}.png", first)
        if index != 1:
            second = np.zeros((8, 8), np.uint8)
            second[:, 6:] = 1
            _png(tmp_path / "masks" / "b" / f"{index}.png", second)

    bundle = _bundle(tmp_path)
    assert bundle.report.dataset is not None
    dataset = SegmentationDataset(bundle.report.dataset.samples, bundle.encoding)

    masks = {sample.name: dataset[i][1] for i, sample in enumerate(dataset.samples)}
    assert bundle.num_classes == 3
    assert masks["0"][0].tolist() == [1, 1, 1, 1, 1, 1, 2, 2]
    assert masks["0"][7].tolist() == [0, 0, 0, 0, 0, 0, 2, 2]
    assert masks["1"][0].tolist() == [1] * 8


def test_rgb_masks_decode_through_the_dataset(tmp_path: Path) -> None:
    for index in range(2):
        _png(tmp_path / "images" / f"{index}.png", np.zeros((4, 4, 3), np.uint8))
        mask = np.zeros((4, 4, 3), np.uint8)
        mask[0] = (255, 0, 0)
        mask[1] = (0, 0, 255)
        _png(tmp_path / "masks" / f"{index}.png", mask)

    bundle = _bundle(tmp_path)
    _, decoded = bundle.val_dataset[0]

    assert bundle.encoding.values == ((0, 0, 0), (0, 0, 255), (255, 0, 0))
    assert decoded[:, 0].tolist() == [2, 1, 0, 0]


def test_dataset_reports_mask_size_mismatch(tmp_path: Path) -> None:
    _png(tmp_path / "image.png", np.zeros((4, 4, 3), np.uint8))
    _png(tmp_path / "mask.png", np.zeros((5, 5), np.uint8))
    dataset = SegmentationDataset(
        [Sample("x", tmp_path / "image.png", (tmp_path / "mask.png",))],
        MaskEncoding(mode="grey", values=(0, 1)),
    )
    with pytest.raises(ValueError, match="sample x: mask is 5x5 but the image is 4x4"):
        dataset[0]


def test_worker_processes_load_batches(demo_root: Path) -> None:
    bundle = _bundle(demo_root, num_workers=1, augment="medium")
    batches = list(bundle.val_loader)
    images, masks = next(iter(bundle.train_loader))
    assert sum(len(m) for _, m in batches) == len(bundle.val_names)
    assert images.shape == (4, 3, 32, 32)
    assert masks.dtype == torch.uint8
