"""How one epoch's validation detail is laid out in its row's blobs (see
`server.models.ValidationEpoch`), and read back.

The confusion matrix and the counts are zlib-compressed little-endian integers: most per-image
counts are zeros (an image shows a few of the classes), so they shrink several times over.
Counts are stored as int32 when every one fits, int64 otherwise. Scores are fixed 24-byte records
per image, uncompressed, so the database can slice out one image's record.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np
import numpy.typing as npt
import orjson

from server.bounds import INT32_MAX

Counts = npt.NDArray[np.int64]
SCORE_RECORD = np.dtype([("iou", "<f8"), ("dice", "<f8"), ("pixels_wrong", "<i8")])
"""One image's scores: 24 bytes."""
COMPRESSION_LEVEL = 6


def pack_confusion(confusion: Counts) -> bytes:
    return zlib.compress(confusion.astype("<i8").tobytes(), COMPRESSION_LEVEL)


def unpack_confusion(blob: bytes, classes: int) -> Counts:
    matrix: Counts = np.frombuffer(zlib.decompress(blob), dtype="<i8").reshape(classes, classes)
    return matrix.astype(np.int64)


def pack_counts(counts: Counts) -> tuple[bytes, int]:
    """`counts` int64 (3, N, K) as (blob, bytes per count)."""
    width = 4 if counts.size == 0 or int(counts.max()) <= INT32_MAX else 8
    data = counts.astype("<i4" if width == 4 else "<i8").tobytes()
    return zlib.compress(data, COMPRESSION_LEVEL), width


def unpack_counts(blob: bytes, width: int, images: int, classes: int) -> Counts:
    """int64 (3, N, K): TP, FP, FN."""
    raw = np.frombuffer(zlib.decompress(blob), dtype="<i4" if width == 4 else "<i8")
    counts: Counts = raw.astype(np.int64).reshape(3, images, classes)
    return counts


def pack_scores(
    iou: npt.NDArray[np.float64], dice: npt.NDArray[np.float64], wrong: Counts
) -> bytes:
    records = np.empty(len(iou), dtype=SCORE_RECORD)
    records["iou"] = iou
    records["dice"] = dice
    records["pixels_wrong"] = wrong
    return records.tobytes()


def unpack_scores(blob: bytes) -> npt.NDArray[np.void]:
    """A structured array of SCORE_RECORD, one per image."""
    records: npt.NDArray[np.void] = np.frombuffer(blob, dtype=SCORE_RECORD)
    return records


def pack_names(names: tuple[str, ...]) -> tuple[bytes, str]:
    """The names as (zlib of their JSON list, SHA-256 of that JSON)."""
    data = orjson.dumps(list(names))
    return zlib.compress(data, COMPRESSION_LEVEL), hashlib.sha256(data).hexdigest()


def unpack_names(blob: bytes) -> list[str]:
    names: list[str] = orjson.loads(zlib.decompress(blob))
    return names
