"""The dataset inspection report: classes, pixel shares, errors and warnings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from trainer.config import IGNORE_INDEX, TrainConfig
from trainer.data.classes_file import write_classes_file
from trainer.data.inspection import inspect_dataset, inspect_for_config
from trainer.data.report import DatasetError, require_ok

SIZE = 16


def _png(path: Path, array: np.ndarray | Image.Image, **options: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = array if isinstance(array, Image.Image) else Image.fromarray(array)
    image.save(path, **options)


def _image(seed: int, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (SIZE, SIZE, channels) if channels > 1 else (SIZE, SIZE)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _square_mask(value: int, top: int = 0, size: int = 4) -> np.ndarray:
    """A SIZE x SIZE mask: 0 with a `size` x `size` square of `value` at row `top`."""
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[top : top + size, :size] = value
    return mask


def _binary_dataset(root: Path, count: int = 4, value: int = 255) -> Path:
    for index in range(count):
        _png(root / "images" / f"img{index}.png", _image(index))
        _png(root / "masks" / f"img{index}.png", _square_mask(value))
    return root


def test_0_255_masks_are_two_classes_with_a_warning(tmp_path: Path) -> None:
    report = inspect_dataset(_binary_dataset(tmp_path))

    assert report.ok, report.errors
    assert report.layout == "images-masks"
    assert report.num_pairs == 4
    assert (report.num_train, report.num_val) == (3, 1)
    assert report.num_classes == 2
    assert report.class_names == ["background", "foreground"]
    assert report.encoding.values == (0, 255)
    assert [c["value"] for c in report.classes] == [0, 255]
    share = 16 / (SIZE * SIZE)
    assert report.classes[1]["pixel_share"] == pytest.approx(share)
    assert report.classes[0]["pixel_share"] == pytest.approx(1 - share)
    assert report.classes[1]["images_with_class"] == 4
    assert report.in_channels == 3
    assert report.image_dtype == "uint8"
    assert report.image_sizes == {
        "min_height": SIZE,
        "max_height": SIZE,
        "min_width": SIZE,
        "max_width": SIZE,
        "all_equal": True,
    }
    assert any("0 and 255" in w and "mask_ignore_value" in w for w in report.warnings)


def test_ignore_value_makes_255_ignored(tmp_path: Path) -> None:
    root = _binary_dataset(tmp_path)
    for index in range(4):
        _png(root / "masks" / f"img{index}.png", _square_mask(1) + _square_mask(255, top=8))

    report = inspect_dataset(root, mask_ignore_value=255)

    assert report.ok, report.errors
    assert report.encoding.values == (0, 1)
    assert report.encoding.ignore_values == (255,)
    assert report.ignored_share == pytest.approx(16 / (SIZE * SIZE))


def test_unmatched_files_are_warnings_naming_them(tmp_path: Path) -> None:
    root = _binary_dataset(tmp_path)
    _png(root / "images" / "lonely.png", _image(9))
    _png(root / "masks" / "stray.png", _square_mask(255))

    report = inspect_dataset(root)

    assert report.ok
    assert report.unmatched_images == ["images/lonely.png"]
    assert report.unmatched_masks == ["masks/stray.png"]
    text = " ".join(report.warnings)
    assert "images/lonely.png" in text
    assert "masks/stray.png" in text


def test_many_unmatched_files_are_cut_after_20(tmp_path: Path) -> None:
    root = _binary_dataset(tmp_path)
    for index in range(25):
        _png(root / "images" / f"extra{index:02d}.png", _image(index))
    report = inspect_dataset(root)
    warning = next(w for w in report.warnings if "have no mask" in w)
    assert "and 5 more" in warning


def test_size_mismatch_is_an_error_naming_the_sample(tmp_path: Path) -> None:
    root = _binary_dataset(tmp_path)
    _png(root / "masks" / "img2.png", np.zeros((8, 8), np.uint8))

    report = inspect_dataset(root)

    assert not report.ok
    assert report.size_mismatches == [{"name": "img2", "image": [SIZE, SIZE], "mask": [8, 8]}]
    assert any("img2" in error and "1 mask differs in size" in error for error in report.errors)


def test_unreadable_file_is_an_error_naming_it(tmp_path: Path) -> None:
    root = _binary_dataset(tmp_path)
    (root / "masks" / "img1.png").write_bytes(b"garbage")

    report = inspect_dataset(root)

    assert not report.ok
    assert len(report.unreadable) == 1
    assert report.unreadable[0]["path"].endswith("img1.png")
    assert any("img1.png" in error for error in report.errors)
    with pytest.raises(DatasetError) as caught:
        require_ok(report)
    assert caught.value.report is report
    assert "img1.png" in str(caught.value)


def test_multi_class_grey_values_and_rare_class_warning(tmp_path: Path) -> None:
    for index in range(6):
        _png(tmp_path / "images" / f"{index}.png", _image(index))
        mask = _square_mask(128, size=8)
        mask[-1, -1] = 255 if index == 0 else 0
        _png(tmp_path / "masks" / f"{index}.png", mask)
    tile = (SIZE * SIZE) * 6

    report = inspect_dataset(tmp_path)

    assert report.ok, report.errors
    assert report.encoding.values == (0, 128, 255)
    assert report.class_names == ["background", "class_1", "class_2"]
    assert report.classes[2]["pixel_share"] == pytest.approx(1 / tile)
    assert report.classes[2]["images_with_class"] == 1
    assert any("2 'class_2'" in w and "class_weights" in w for w in report.warnings)


def test_only_one_class_is_an_error(tmp_path: Path) -> None:
    root = _binary_dataset(tmp_path, value=0)
    report = inspect_dataset(root)
    assert not report.ok
    assert any("nothing to learn" in error for error in report.errors)


def test_config_mismatches_are_errors(tmp_path: Path) -> None:
    root = _binary_dataset(tmp_path)
    for index in range(4):
        mask = _square_mask(255)
        mask[10:, 10:] = 128
        _png(root / "masks" / f"img{index}.png", mask)

    wrong_count = inspect_dataset(root, num_classes=2)
    wrong_names = inspect_dataset(root, class_names=["a", "b", "c", "d"])
    wrong_channels = inspect_dataset(root, in_channels=1)

    assert any("num_classes 2" in error for error in wrong_count.errors)
    assert any("class_names" in error for error in wrong_names.errors)
    assert any("in_channels is 1" in error for error in wrong_channels.errors)
    good = inspect_dataset(root, class_names=["bg", "grey", "white"], in_channels=3)
    assert good.ok, good.errors
    assert good.class_names == ["bg", "grey", "white"]


def test_mixed_channels_and_fewer_than_two_pairs(tmp_path: Path) -> None:
    root = _binary_dataset(tmp_path)
    _png(root / "images" / "img3.png", _image(3, channels=1))
    report = inspect_dataset(root)
    assert any("different channel counts" in error and "img3" in error for error in report.errors)

    single = _binary_dataset(tmp_path / "single", count=1)
    assert any("at least 2" in error for error in inspect_dataset(single).errors)


def test_jpeg_masks_warn_about_smeared_values(tmp_path: Path) -> None:
    for index in range(3):
        _png(tmp_path / "images" / f"{index}.png", _image(index))
        mask = np.zeros((SIZE, SIZE), np.uint8)
        mask[3:11, 3:11] = 255
        _png(tmp_path / "masks" / f"{index}.jpg", mask, quality=50)

    report = inspect_dataset(tmp_path)

    warning = next(w for w in report.warnings if "JPEG" in w)
    assert "3 masks" in warning
    assert "PNG" in warning


def test_rgb_masks_with_classes_file_colours(tmp_path: Path) -> None:
    road, car = (128, 64, 128), (0, 0, 142)
    for index in range(3):
        _png(tmp_path / "images" / f"{index}.png", _image(index))
        mask = np.zeros((SIZE, SIZE, 3), np.uint8)
        mask[:4] = road
        mask[8:10] = car
        _png(tmp_path / "masks" / f"{index}.png", mask)
    write_classes_file(
        tmp_path, ["void", "car", "road"], values=[(0, 0, 0), car, road], colors=None
    )

    report = inspect_dataset(tmp_path)

    assert report.ok, report.errors
    assert report.encoding.mode == "rgb"
    assert report.class_names == ["void", "car", "road"]
    assert [c["value"] for c in report.classes] == [[0, 0, 0], list(car), list(road)]
    assert report.classes[2]["pixel_share"] == pytest.approx(4 / SIZE)


def test_palette_masks_keep_their_palette(tmp_path: Path) -> None:
    palette = [0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759
    for index in range(3):
        _png(tmp_path / "images" / f"{index}.png", _image(index))
        mask = Image.fromarray(_square_mask(1) + _square_mask(2, top=8))
        mask.putpalette(palette)
        _png(tmp_path / "masks" / f"{index}.png", mask)

    report = inspect_dataset(tmp_path)

    assert report.encoding.mode == "index"
    assert report.encoding.values == (0, 1, 2)
    assert report.encoding.palette == tuple(palette)


def test_16_bit_masks_and_images(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    for index in range(3):
        tifffile.imwrite(
            tmp_path / "images" / f"{index}.tif", np.full((SIZE, SIZE), 4e4, np.uint16)
        )
        _png(tmp_path / "masks" / f"{index}.png", _square_mask(1).astype(np.uint16) * 1000)

    report = inspect_dataset(tmp_path)

    assert report.ok, report.errors
    assert report.encoding.dtype == "uint16"
    assert report.encoding.values == (0, 1000)
    assert report.image_dtype == "uint16"
    assert report.in_channels == 1


def test_identity_masks_with_classes_file(tmp_path: Path) -> None:
    for index in range(3):
        _png(tmp_path / "images" / f"{index}.png", _image(index))
        _png(tmp_path / "masks" / f"{index}.png", _square_mask(2))
    write_classes_file(tmp_path, ["background", "cat", "dog"])

    report = inspect_dataset(tmp_path)

    assert report.ok, report.errors
    assert report.encoding.values == (0, 1, 2)
    assert report.class_names == ["background", "cat", "dog"]
    assert any("never present" in w and "1 'cat'" in w for w in report.warnings)


def test_voc_dataset_ignores_255(tmp_path: Path) -> None:
    palette = [0] * 768
    for name in ("a", "b", "c"):
        _png(tmp_path / "JPEGImages" / f"{name}.jpg", _image(ord(name)))
        mask = _square_mask(15) + _square_mask(IGNORE_INDEX, top=8)
        image = Image.fromarray(mask)
        image.putpalette(palette)
        _png(tmp_path / "SegmentationClass" / f"{name}.png", image)

    report = inspect_dataset(tmp_path)

    assert report.ok, report.errors
    assert report.layout == "voc"
    assert report.num_classes == 21
    assert report.class_names[15] == "person"
    assert report.ignored_share == pytest.approx(16 / (SIZE * SIZE))
    assert report.classes[15]["pixel_share"] == pytest.approx(16 / (SIZE * SIZE))


def test_custom_voc_style_dataset_keeps_its_own_classes(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        _png(tmp_path / "JPEGImages" / f"{name}.jpg", _image(ord(name)))
        image = Image.fromarray(_square_mask(1) + _square_mask(2, top=8))
        image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
        _png(tmp_path / "SegmentationClass" / f"{name}.png", image)

    custom = inspect_dataset(tmp_path, num_classes=3)
    guessed = inspect_dataset(tmp_path)

    assert custom.ok, custom.errors
    assert custom.class_names == ["background", "class_1", "class_2"]
    assert guessed.ok, guessed.errors
    assert guessed.num_classes == 21
    absent = [w for w in guessed.warnings if "never present" in w]
    assert len(absent) == 1
    assert "3 'bird'" in absent[0]


def test_class_folders_overlap_warning(tmp_path: Path) -> None:
    for index in range(3):
        _png(tmp_path / "images" / f"{index}.png", _image(index))
        _png(tmp_path / "masks" / "a" / f"{index}.png", _square_mask(255, size=6))
        _png(tmp_path / "masks" / "b" / f"{index}.png", _square_mask(1, size=3))

    report = inspect_dataset(tmp_path)

    assert report.ok, report.errors
    assert report.encoding.mode == "class-folders"
    assert report.class_names == ["background", "a", "b"]
    assert report.classes[1]["pixel_share"] == pytest.approx((36 - 9) / (SIZE * SIZE))
    assert any("later class wins" in w for w in report.warnings)


def test_different_sizes_warn_without_image_size(tmp_path: Path) -> None:
    root = _binary_dataset(tmp_path)
    _png(root / "images" / "big.png", np.zeros((64, 64, 3), np.uint8))
    _png(root / "masks" / "big.png", np.pad(_square_mask(255), ((0, 48), (0, 48))))

    assert any("image_size" in w for w in inspect_dataset(root).warnings)
    assert not any("image_size" in w for w in inspect_dataset(root, image_size=(32, 32)).warnings)
    assert inspect_dataset(root).image_sizes["all_equal"] is False


def test_report_serialises_and_reads_well(tmp_path: Path) -> None:
    root = _binary_dataset(tmp_path)
    (root / "masks" / "img1.png").write_bytes(b"garbage")
    report = inspect_dataset(root)

    data = json.loads(json.dumps(report.to_dict()))
    text = report.format_text()

    assert data["encoding"]["values"] == [0, 255]
    assert data["ok"] is False
    assert data["num_classes"] == 2
    assert "foreground" in text
    assert "Errors:" in text
    assert "Warnings:" in text
    assert "img1.png" in text
    assert "NOT OK" in text
    assert "OK: ready to train" in inspect_dataset(_binary_dataset(tmp_path / "b")).format_text()


def test_inspect_for_config_passes_the_settings(tmp_path: Path) -> None:
    root = _binary_dataset(tmp_path, count=10)
    cfg = TrainConfig(dataset=str(root), val_fraction=0.5, class_names=["bg", "thing"])

    report = inspect_for_config(cfg)

    assert (report.num_train, report.num_val) == (5, 5)
    assert report.class_names == ["bg", "thing"]


def test_real_horse_silhouette(tmp_path: Path) -> None:
    skimage_data = pytest.importorskip("skimage.data")
    horse = skimage_data.horse()  # True off the horse
    mask = np.where(horse, 0, 255).astype(np.uint8)
    image = np.where(horse, 230, 40).astype(np.uint8)
    for index in range(2):
        _png(tmp_path / "images" / f"horse{index}.png", np.dstack([image] * 3))
        _png(tmp_path / "masks" / f"horse{index}.png", mask)

    report = inspect_dataset(tmp_path)

    assert report.ok, report.errors
    assert report.num_classes == 2
    assert report.image_sizes["min_height"] == horse.shape[0]
    assert 0.2 < report.classes[1]["pixel_share"] < 0.5
