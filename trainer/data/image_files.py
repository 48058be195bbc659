"""Reading images and masks from disk into numpy arrays, and writing masks back.

Torch-free (the web server inspects datasets with it). Every reader raises `UnreadableFileError`
naming the file and the reason, so a broken file never surfaces as a bare Pillow traceback.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tifffile
from PIL import Image, UnidentifiedImageError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".npy")
"""File suffixes (lower case) read as images or masks."""

TIFF_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")
LOSSY_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg")
"""Formats whose compression changes pixel values: fine for images, wrong for masks."""

PALETTE_SIZE = 768
"""Entries of a full palette: 256 colours times (r, g, b)."""

_MAX_CHANNELS_FIRST = 64
"""A 3-D TIFF whose first axis is at most this long and shorter than its last is (C, H, W)."""

# Pillow modes that read_image keeps as they are; every other mode is converted to RGB.
_KEPT_MODES = {
    "L": 1,
    "LA": 2,
    "RGB": 3,
    "RGBA": 4,
    "I;16": 1,
    "I;16L": 1,
    "I;16B": 1,
    "I": 1,
    "F": 1,
}
_GREY_MASK_MODES = ("L", "P", "I;16", "I;16L", "I;16B", "I")

Array = npt.NDArray[Any]


class UnreadableFileError(Exception):
    """An image or mask file that cannot be read; the message names the file and why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot read {path}: {reason}")
        self.path = path
        self.reason = reason


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise UnreadableFileError(
            path,
            f"unsupported file type {suffix or '(none)'}; supported: {', '.join(IMAGE_SUFFIXES)}",
        )
    return suffix


def _channels_first(shape: tuple[int, ...]) -> bool:
    """Whether a 3-D TIFF shape is (C, H, W): a short first axis, shorter than the last one."""
    return len(shape) == 3 and shape[0] <= _MAX_CHANNELS_FIRST and shape[0] < shape[2]


def _open_pillow(path: Path) -> Image.Image:
    """Open and fully decode `path`, turning every Pillow failure into UnreadableFileError."""
    try:
        image = Image.open(path)
    except FileNotFoundError as error:
        raise UnreadableFileError(path, "file not found") from error
    except UnidentifiedImageError as error:
        raise UnreadableFileError(
            path, "not a recognised image (corrupt or wrong suffix)"
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise UnreadableFileError(path, f"corrupt file ({error})") from error
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        image.close()
        raise UnreadableFileError(path, f"corrupt or truncated file ({error})") from error
    return image


def _load_numpy(path: Path) -> Array:
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError as error:
        raise UnreadableFileError(path, "file not found") from error
    except (OSError, ValueError, EOFError) as error:
        raise UnreadableFileError(path, f"not a readable .npy array ({error})") from error
    if not isinstance(array, np.ndarray):
        raise UnreadableFileError(path, "expected one array, found an archive")
    return array


def _load_tiff(path: Path) -> Array:
    try:
        array: Array = tifffile.imread(path)
    except FileNotFoundError as error:
        raise UnreadableFileError(path, "file not found") from error
    except Exception as error:  # tifffile raises many unrelated types for corrupt files
        raise UnreadableFileError(path, f"corrupt or unsupported TIFF ({error})") from error
    if _channels_first(array.shape):
        array = np.moveaxis(array, 0, -1)
    return array


def _image_dtype(path: Path, array: Array) -> Array:
    """Keep uint8 and uint16, turn floats into float32, refuse the rest."""
    if array.dtype in (np.uint8, np.uint16):
        return array
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32, copy=False)
    if array.dtype == np.int32 and array.size and array.min() >= 0 and array.max() <= 65535:
        return array.astype(np.uint16)  # Pillow's mode "I" for 16-bit PNGs
    raise UnreadableFileError(
        path, f"unsupported pixel type {array.dtype}; supported: uint8, uint16, float"
    )


def _as_hwc(path: Path, array: Array) -> Array:
    if array.ndim == 2:
        return array[:, :, None]
    if array.ndim == 3 and array.shape[2] >= 1:
        return array
    raise UnreadableFileError(path, f"expected a 2-D or 3-D image, found shape {array.shape}")


def _pillow_image_array(image: Image.Image) -> Array:
    mode = image.mode
    if mode == "1":
        image = image.convert("L")
    elif mode in ("P", "PA"):
        # RGBA first: converting a palette with transparency straight to RGB makes Pillow warn.
        return np.asarray(image.convert("RGBA"))[:, :, :3]
    elif mode not in _KEPT_MODES:
        image = image.convert("RGB")
    return np.asarray(image)


def read_image(path: Path) -> Array:
    """Read an image as (H, W, C), C >= 1.

    Returns:
        uint8 for 8-bit files, uint16 for 16-bit PNG/TIFF, float32 for float TIFF/.npy. RGBA keeps
        its 4 channels; palette images become RGB; (C, H, W) TIFFs are transposed.

    Raises:
        UnreadableFileError: missing, corrupt, truncated or unsupported files.
    """
    suffix = _suffix(path)
    if suffix == ".npy":
        array = _load_numpy(path)
    elif suffix in TIFF_SUFFIXES:
        array = _load_tiff(path)
    else:
        with _open_pillow(path) as image:
            array = _pillow_image_array(image)
    return _as_hwc(path, _image_dtype(path, array))


def _mask_dtype(path: Path, array: Array) -> Array:
    """Masks hold integer class values: uint8 or uint16 (whole floats, wider ints narrowed)."""
    if array.dtype in (np.uint8, np.uint16):
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if array.size == 0:
        raise UnreadableFileError(path, "the mask is empty")
    if np.issubdtype(array.dtype, np.floating) and not np.array_equal(array, np.round(array)):
        raise UnreadableFileError(path, "mask values must be whole numbers (class values)")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 65535:
        raise UnreadableFileError(
            path, f"mask values must lie in 0..65535, found {low:g}..{high:g}"
        )
    return array.astype(np.uint8 if high <= 255 else np.uint16)


def _mask_channels(path: Path, array: Array) -> Array:
    """(H, W) for grey masks and RGB masks whose channels agree, else (H, W, 3)."""
    if array.ndim == 3:
        if array.shape[2] == 1:
            array = array[:, :, 0]
        elif array.shape[2] in (3, 4):
            array = array[:, :, :3]
            if np.array_equal(array[:, :, 0], array[:, :, 1]) and np.array_equal(
                array[:, :, 0], array[:, :, 2]
            ):
                array = array[:, :, 0]
        elif array.shape[2] == 2:
            array = array[:, :, 0]  # grey + alpha
        else:
            raise UnreadableFileError(
                path, f"a mask needs 1 (grey) or 3 (RGB) channels, found {array.shape[2]}"
            )
    if array.ndim != 2 and not (array.ndim == 3 and array.shape[2] == 3):
        raise UnreadableFileError(path, f"expected a 2-D mask, found shape {array.shape}")
    if array.ndim == 3 and array.dtype != np.uint8:
        raise UnreadableFileError(path, "RGB masks must be 8-bit")
    return np.ascontiguousarray(array)


def read_mask(path: Path) -> Array:
    """Read a mask's raw values.

    Returns:
        (H, W) uint8/uint16 for grey, 16-bit and palette masks (palette masks give the palette
        INDICES, not colours), or (H, W, 3) uint8 for RGB masks. Alpha is dropped; an RGB mask
        whose three channels are equal comes back as (H, W) grey.

    Raises:
        UnreadableFileError: missing, corrupt or unsupported files.
    """
    suffix = _suffix(path)
    if suffix == ".npy":
        array = _load_numpy(path)
    elif suffix in TIFF_SUFFIXES:
        array = _load_tiff(path)
    else:
        with _open_pillow(path) as image:
            if image.mode == "1":
                array = np.asarray(image, dtype=np.uint8)
            elif image.mode in _GREY_MASK_MODES or image.mode in ("RGB", "RGBA", "LA", "PA"):
                array = np.asarray(image)
            else:
                array = np.asarray(image.convert("RGB"))
    return _mask_channels(path, _mask_dtype(path, array))


def read_palette(path: Path) -> list[int] | None:
    """The palette of a palette ("P") image as 768 ints (r, g, b per index), else None."""
    if path.suffix.lower() in (".npy", *TIFF_SUFFIXES):
        return None
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "PA"):
                return None
            palette = image.getpalette() or []
    except (OSError, SyntaxError, ValueError) as error:
        raise UnreadableFileError(path, f"corrupt file ({error})") from error
    return (list(palette) + [0] * PALETTE_SIZE)[:PALETTE_SIZE]


def write_mask(path: Path, raw: Array, palette: Sequence[int] | None = None) -> None:
    """Write a mask as PNG.

    Args:
        path: Destination file; parent folders are created.
        raw: (H, W) uint8 or uint16, or (H, W, 3) uint8 RGB. uint16 is written as a 16-bit PNG.
        palette: Up to 768 ints; writes a palette ("P") PNG whose indices are `raw` (uint8 only).
    """
    if raw.ndim == 3 and (raw.shape[2] != 3 or raw.dtype != np.uint8):
        raise ValueError(f"RGB masks must be (H, W, 3) uint8, got {raw.shape} {raw.dtype}")
    if raw.ndim not in (2, 3) or raw.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"masks must be (H, W) uint8/uint16 or (H, W, 3) uint8, got {raw.shape}")
    if palette is not None and (raw.ndim != 2 or raw.dtype != np.uint8):
        raise ValueError("a palette mask holds (H, W) uint8 indices")
    if palette is not None and (
        len(palette) > PALETTE_SIZE or not all(0 <= v <= 255 for v in palette)
    ):
        raise ValueError(f"a palette holds at most {PALETTE_SIZE} ints in 0..255")
    image = Image.fromarray(np.ascontiguousarray(raw))
    if palette is not None:
        image.putpalette(list(palette))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")


def _pillow_channels(image: Image.Image) -> int:
    if image.mode == "1":
        return 1
    return _KEPT_MODES.get(image.mode, 3)


def image_shape(path: Path) -> tuple[int, int, int]:
    """(height, width, channels) as `read_image` would return them, from the header if possible."""
    suffix = _suffix(path)
    try:
        if suffix == ".npy":
            shape = tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)
        elif suffix in TIFF_SUFFIXES:
            with tifffile.TiffFile(path) as tif:
                shape = tuple(tif.series[0].shape)
            if _channels_first(shape):
                shape = (*shape[1:], shape[0])
        else:
            with warnings.catch_warnings():
                # A header peek needs no pixel checks; read_image does them.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as image:
                    width, height = image.size
                    return height, width, _pillow_channels(image)
    except FileNotFoundError as error:
        raise UnreadableFileError(path, "file not found") from error
    except UnidentifiedImageError as error:
        raise UnreadableFileError(
            path, "not a recognised image (corrupt or wrong suffix)"
        ) from error
    except Exception as error:  # numpy, tifffile and Pillow each fail in their own way
        raise UnreadableFileError(path, f"corrupt or unsupported file ({error})") from error
    if len(shape) == 2:
        return int(shape[0]), int(shape[1]), 1
    if len(shape) == 3:
        return int(shape[0]), int(shape[1]), int(shape[2])
    raise UnreadableFileError(path, f"expected a 2-D or 3-D image, found shape {shape}")


def image_size(path: Path) -> tuple[int, int]:
    """(height, width), reading only the file header where the format allows."""
    height, width, _ = image_shape(path)
    return height, width
