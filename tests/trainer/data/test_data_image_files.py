"""Reading images and masks in every supported format, and writing masks back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from trainer.data.image_files import (
    UnreadableFileError,
    image_shape,
    image_size,
    read_image,
    read_mask,
    read_palette,
    write_mask,
)

RNG = np.random.default_rng(0)


def _rgb(height: int = 24, width: int = 32) -> np.ndarray:
    return RNG.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _palette_image(indices: np.ndarray, palette: list[int]) -> Image.Image:
    image = Image.fromarray(indices)
    image.putpalette(palette)
    return image


def test_png_rgb_and_rgba_keep_their_channels(tmp_path: Path) -> None:
    rgb = _rgb()
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")

    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), rgb)
    loaded = read_image(tmp_path / "rgba.png")
    assert loaded.shape == (24, 32, 4)
    np.testing.assert_array_equal(loaded, rgba)
    assert image_shape(tmp_path / "rgba.png") == (24, 32, 4)


def test_grayscale_images_get_a_channel_axis(tmp_path: Path) -> None:
    grey = RNG.integers(0, 256, size=(20, 30), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(grey).save(tmp_path / "grey.bmp")

    for name in ("grey.png", "grey.bmp"):
        loaded = read_image(tmp_path / name)
        assert loaded.shape == (20, 30, 1)
        assert loaded.dtype == np.uint8
        np.testing.assert_array_equal(loaded[:, :, 0], grey)
    assert image_size(tmp_path / "grey.png") == (20, 30)


def test_palette_images_become_rgb_colours(tmp_path: Path) -> None:
    indices = np.zeros((8, 8), np.uint8)
    indices[4:, :] = 1
    palette = [0, 0, 0, 200, 10, 20] + [0] * 762
    _palette_image(indices, palette).save(tmp_path / "palette.png")

    loaded = read_image(tmp_path / "palette.png")

    assert loaded.shape == (8, 8, 3)
    assert tuple(loaded[6, 0]) == (200, 10, 20)
    assert tuple(loaded[0, 0]) == (0, 0, 0)
    assert image_shape(tmp_path / "palette.png") == (8, 8, 3)


def test_jpeg_images_are_uint8_rgb(tmp_path: Path) -> None:
    Image.fromarray(_rgb()).save(tmp_path / "photo.jpg", quality=90)
    loaded = read_image(tmp_path / "photo.jpg")
    assert loaded.shape == (24, 32, 3)
    assert loaded.dtype == np.uint8


def test_16_bit_png_and_tiff_stay_uint16(tmp_path: Path) -> None:
    deep = RNG.integers(0, 65536, size=(16, 12), dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    tifffile.imwrite(tmp_path / "deep.tif", deep)

    for name in ("deep.png", "deep.tif"):
        loaded = read_image(tmp_path / name)
        assert loaded.dtype == np.uint16
        assert loaded.shape == (16, 12, 1)
        np.testing.assert_array_equal(loaded[:, :, 0], deep)


def test_tiff_8_bit_float_and_channels_first(tmp_path: Path) -> None:
    rgb = _rgb()
    tifffile.imwrite(tmp_path / "rgb.tiff", rgb)
    four = RNG.integers(0, 256, size=(4, 24, 32), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "four.tif", four, photometric="minisblack")
    floats = RNG.random((10, 11)).astype(np.float64)
    tifffile.imwrite(tmp_path / "float.tif", floats)

    np.testing.assert_array_equal(read_image(tmp_path / "rgb.tiff"), rgb)
    loaded = read_image(tmp_path / "four.tif")
    assert loaded.shape == (24, 32, 4)
    np.testing.assert_array_equal(loaded[:, :, 2], four[2])
    assert image_shape(tmp_path / "four.tif") == (24, 32, 4)
    as_float = read_image(tmp_path / "float.tif")
    assert as_float.dtype == np.float32
    assert as_float.shape == (10, 11, 1)


def test_npy_arrays_2d_and_hwc(tmp_path: Path) -> None:
    np.save(tmp_path / "flat.npy", RNG.random((6, 7)))
    np.save(tmp_path / "bands.npy", RNG.integers(0, 256, size=(6, 7, 5), dtype=np.uint8))

    flat = read_image(tmp_path / "flat.npy")
    assert flat.shape == (6, 7, 1)
    assert flat.dtype == np.float32
    assert read_image(tmp_path / "bands.npy").shape == (6, 7, 5)
    assert image_shape(tmp_path / "bands.npy") == (6, 7, 5)


@pytest.mark.parametrize("name", ["broken.png", "broken.jpg", "broken.tif", "broken.npy"])
def test_corrupt_files_raise_unreadable_naming_the_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"definitely not an image")
    with pytest.raises(UnreadableFileError, match=name):
        read_image(path)
    with pytest.raises(UnreadableFileError, match=name):
        read_mask(path)


def test_truncated_png_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    Image.fromarray(_rgb(64, 64)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(UnreadableFileError, match=r"cut\.png.*(truncated|corrupt)"):
        read_image(path)


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="not found"):
        read_image(tmp_path / "nothing.png")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UnreadableFileError, match=r"unsupported file type \.txt.*\.png"):
        read_image(tmp_path / "notes.txt")


def test_masks_keep_raw_values(tmp_path: Path) -> None:
    grey = np.array([[0, 255], [128, 0]], np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    deep = np.array([[0, 1000], [65535, 7]], np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")

    np.testing.assert_array_equal(read_mask(tmp_path / "grey.png"), grey)
    loaded = read_mask(tmp_path / "deep.png")
    assert loaded.dtype == np.uint16
    np.testing.assert_array_equal(loaded, deep)


def test_palette_masks_give_indices_not_colours(tmp_path: Path) -> None:
    indices = np.array([[0, 1], [2, 255]], np.uint8)
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 756 + [224, 224, 192]
    _palette_image(indices, palette).save(tmp_path / "voc.png")

    np.testing.assert_array_equal(read_mask(tmp_path / "voc.png"), indices)
    read = read_palette(tmp_path / "voc.png")
    assert read is not None
    assert len(read) == 768
    assert read[3:6] == [128, 0, 0]
    assert read[765:] == [224, 224, 192]


def test_rgb_masks_and_grey_looking_rgb_masks(tmp_path: Path) -> None:
    colours = np.zeros((4, 4, 3), np.uint8)
    colours[:2] = (255, 0, 0)
    Image.fromarray(colours).save(tmp_path / "colour.png")
    rgba = np.dstack([colours, np.full((4, 4), 255, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "colour_alpha.png")
    grey_rgb = np.repeat(np.array([[0, 255], [255, 0]], np.uint8)[:, :, None], 3, axis=2)
    Image.fromarray(grey_rgb).save(tmp_path / "grey_rgb.png")

    np.testing.assert_array_equal(read_mask(tmp_path / "colour.png"), colours)
    np.testing.assert_array_equal(read_mask(tmp_path / "colour_alpha.png"), colours)
    grey = read_mask(tmp_path / "grey_rgb.png")
    assert grey.shape == (2, 2)
    np.testing.assert_array_equal(grey, grey_rgb[:, :, 0])


def test_gif_masks_like_carvana(tmp_path: Path) -> None:
    binary = np.zeros((10, 12), np.uint8)
    binary[2:8, 3:9] = 1
    _palette_image(binary, [0, 0, 0, 255, 255, 255] + [0] * 762).save(tmp_path / "car_mask.gif")

    mask = read_mask(tmp_path / "car_mask.gif")

    assert mask.shape == (10, 12)
    assert set(np.unique(mask).tolist()) == {0, 1}
    assert image_size(tmp_path / "car_mask.gif") == (10, 12)


def test_npy_masks_with_whole_floats_are_narrowed(tmp_path: Path) -> None:
    np.save(tmp_path / "float_mask.npy", np.array([[0.0, 1.0], [2.0, 0.0]]))
    np.save(tmp_path / "half.npy", np.array([[0.5, 1.0]]))
    mask = read_mask(tmp_path / "float_mask.npy")
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, [[0, 1], [2, 0]])
    with pytest.raises(UnreadableFileError, match="whole numbers"):
        read_mask(tmp_path / "half.npy")


def test_write_mask_round_trips(tmp_path: Path) -> None:
    grey = np.array([[0, 3], [2, 1]], np.uint8)
    deep = np.array([[0, 40000], [1, 2]], np.uint16)
    colours = np.zeros((2, 2, 3), np.uint8)
    colours[0, 0] = (10, 20, 30)
    palette = [value % 256 for value in range(768)]

    write_mask(tmp_path / "grey.png", grey)
    write_mask(tmp_path / "deep.png", deep)
    write_mask(tmp_path / "colour.png", colours)
    write_mask(tmp_path / "sub" / "palette.png", grey, palette=palette)

    np.testing.assert_array_equal(read_mask(tmp_path / "grey.png"), grey)
    assert read_mask(tmp_path / "deep.png").dtype == np.uint16
    np.testing.assert_array_equal(read_mask(tmp_path / "deep.png"), deep)
    np.testing.assert_array_equal(read_mask(tmp_path / "colour.png"), colours)
    with Image.open(tmp_path / "sub" / "palette.png") as image:
        assert image.mode == "P"
    np.testing.assert_array_equal(read_mask(tmp_path / "sub" / "palette.png"), grey)
    assert read_palette(tmp_path / "sub" / "palette.png") == palette
    assert read_palette(tmp_path / "grey.png") is None


def test_write_mask_rejects_bad_arrays(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_mask(tmp_path / "x.png", np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="palette"):
        write_mask(tmp_path / "x.png", np.zeros((2, 2), np.uint16), palette=[0] * 768)
