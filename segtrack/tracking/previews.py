"""Mask previews of a tracked run: the arrays a script logs, checked at once, and the PNG files
the spool keeps of them (written on the spool thread, never on the training loop)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

PREVIEW_MAX_SIDE = 512
"""The server keeps previews at most this large (nearest for masks); shrinking them here the
same way sends less and stores exactly what the server would."""


@dataclass(frozen=True)
class Sample:
    """One checked preview sample: `image` uint8 (H, W) or (H, W, 3), `truth` and `prediction`
    uint8 (H, W) class indices (255 in the truth: ignored)."""

    index: int
    name: str
    image: npt.NDArray[np.uint8]
    truth: npt.NDArray[np.uint8]
    prediction: npt.NDArray[np.uint8]
    reasons: tuple[str, ...] = ("fixed",)


MAX_INDEX = 2**31 - 1
"""A sample's index is its position in the validation set, stored as an int4."""
REASONS = ("fixed", "pinned", "worst")
"""Why a sample is previewed (a trainer PreviewSample's `reasons`); a script's own samples are
the fixed kind unless they say otherwise."""


def _reasons(sample: object) -> tuple[str, ...]:
    raw: Any = (
        sample.get("reasons", ("fixed",))
        if isinstance(sample, Mapping)
        else getattr(sample, "reasons", ("fixed",))
    )
    if not isinstance(raw, str | Sequence):
        raise ValueError(f"a preview sample's reasons are a list of text; got {type(raw).__name__}")
    reasons = (raw,) if isinstance(raw, str) else tuple(raw)
    unknown = [reason for reason in reasons if reason not in REASONS]
    if unknown or not reasons:
        raise ValueError(
            f"a preview sample's reasons are some of {', '.join(REASONS)}; got {list(reasons)}"
        )
    return tuple(reason for reason in REASONS if reason in reasons)


def _field(sample: object, name: str) -> Any:
    if isinstance(sample, Mapping):
        if name not in sample:
            raise ValueError(f"a preview sample needs `{name}` (has: {', '.join(sample)})")
        return sample[name]
    if not hasattr(sample, name):
        raise ValueError(f"a preview sample needs `{name}`; got a {type(sample).__name__}")
    return getattr(sample, name)


def _mask(values: object, what: str) -> npt.NDArray[np.uint8]:
    array = np.asarray(values)
    if array.ndim != 2:
        raise ValueError(f"{what} must be (H, W) class indices; got shape {array.shape}")
    integers = np.issubdtype(array.dtype, np.integer)
    if not integers or (array.size and (array.min() < 0 or array.max() > 255)):
        raise ValueError(f"{what} must hold class indices 0-255; got {array.dtype}")
    return np.array(array, dtype=np.uint8)  # a copy: the caller may reuse its buffer


def check_sample(sample: object) -> Sample:
    """`sample` (a trainer PreviewSample, or a mapping with `index`, `name`, `image`, `truth`,
    `prediction` and optionally `reasons`) as a Sample with copies of its arrays; ValueError
    says what is wrong."""
    image = np.asarray(_field(sample, "image"))
    if image.dtype != np.uint8 or not (
        image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))
    ):
        raise ValueError(
            f"a preview image must be uint8 (H, W) or (H, W, 3); got {image.dtype} {image.shape}"
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    truth = _mask(_field(sample, "truth"), "truth")
    prediction = _mask(_field(sample, "prediction"), "prediction")
    if not image.shape[:2] == truth.shape == prediction.shape:
        raise ValueError(
            f"image {image.shape[:2]}, truth {truth.shape} and prediction {prediction.shape} "
            "must have the same height and width"
        )
    index = int(_field(sample, "index"))
    if not 0 <= index <= MAX_INDEX:
        raise ValueError(f"a preview sample index is 0-{MAX_INDEX}; got {index}")
    name = str(_field(sample, "name")).replace("\x00", "")[:500]
    return Sample(index, name, image.copy(), truth, prediction, _reasons(sample))


def encode_png(pixels: npt.NDArray[np.uint8], *, labels: bool) -> bytes:
    """PNG bytes of `pixels`, the longer side shrunk to PREVIEW_MAX_SIDE (nearest for masks,
    so no new class values appear)."""
    picture = Image.fromarray(pixels)
    longest = max(picture.size)
    if longest > PREVIEW_MAX_SIDE:
        scale = PREVIEW_MAX_SIDE / longest
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        resample = Image.Resampling.NEAREST if labels else Image.Resampling.BILINEAR
        picture = picture.resize(size, resample)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def _store(blobs: Path, data: bytes) -> str:
    """Keep `data` under `blobs` by content (an image sent every epoch is stored once); its
    path relative to the spool."""
    name = f"{hashlib.sha256(data).hexdigest()[:40]}.png"
    path = blobs / name
    if not path.exists():
        temporary = blobs / f".{name}.tmp"
        temporary.write_bytes(data)
        temporary.replace(path)
    return f"{blobs.name}/{name}"


def preview_record(blobs: Path, epoch: int, samples: Sequence[Sample]) -> dict[str, Any]:
    """The spool record of one epoch's previews, its PNGs written under `blobs`."""
    stored = []
    for sample in samples:
        stored.append(
            {
                "index": sample.index,
                "name": sample.name,
                "image": _store(blobs, encode_png(sample.image, labels=False)),
                "truth": _store(blobs, encode_png(sample.truth, labels=True)),
                "prediction": _store(blobs, encode_png(sample.prediction, labels=True)),
                "reasons": list(sample.reasons),
            }
        )
    return {"type": "previews", "epoch": epoch, "samples": stored}
