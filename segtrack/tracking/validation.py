"""An epoch's validation detail in a tracked run: the confusion matrix and every validation
image's TP/FP/FN counts, checked when logged, kept in the spool as a compressed `.npz` blob (a
record line would be megabytes), and sent as `PUT /api/v1/runs/{id}/validation/{epoch}`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Counts = npt.NDArray[np.int64]
COUNT_FIELDS = ("true_positive", "false_positive", "false_negative")


@dataclass(frozen=True)
class Detail:
    """A checked detail of N images and K classes; arrays are copies, int64."""

    epoch: int
    class_names: tuple[str, ...]
    confusion: Counts
    names: tuple[str, ...]
    true_positive: Counts
    false_positive: Counts
    false_negative: Counts


def _part(source: object, name: str) -> Any:
    if isinstance(source, Mapping):
        if name not in source:
            raise ValueError(f"a validation detail needs `{name}`")
        return source[name]
    if not hasattr(source, name):
        raise ValueError(f"a validation detail needs `{name}`; got a {type(source).__name__}")
    return getattr(source, name)


def _counts(values: object, what: str, shape: tuple[int, int]) -> Counts:
    array = np.asarray(values)
    if array.size == 0 and shape[0] * shape[1] == 0:
        return np.zeros(shape, dtype=np.int64)  # `[]` reads as float64
    if not np.issubdtype(array.dtype, np.integer) or array.shape != shape:
        raise ValueError(
            f"{what} must be integers of shape {shape}; got {array.dtype} {array.shape}"
        )
    if array.size and array.min() < 0:
        raise ValueError(f"{what} must not be negative")
    return np.array(array, dtype=np.int64)  # a copy: the caller may reuse its buffers


def check_detail(detail: object) -> Detail:
    """`detail` (a trainer ValidationDetail, or a mapping with `epoch`, `class_names`,
    `confusion` and `images` holding `names` and the three count arrays) as a Detail;
    ValueError says what does not fit."""
    class_names = tuple(str(name) for name in _part(detail, "class_names"))
    images = _part(detail, "images")
    names = tuple(str(name) for name in _part(images, "names"))
    if len(set(names)) != len(names):
        raise ValueError("validation image names must be unique")
    classes = len(class_names)
    shape = (len(names), classes)
    counts = {field: _counts(_part(images, field), field, shape) for field in COUNT_FIELDS}
    return Detail(
        epoch=int(_part(detail, "epoch")),
        class_names=class_names,
        confusion=_counts(_part(detail, "confusion"), "confusion", (classes, classes)),
        names=names,
        true_positive=counts["true_positive"],
        false_positive=counts["false_positive"],
        false_negative=counts["false_negative"],
    )


def write_blob(blobs: Path, detail: Detail) -> str:
    """Keep `detail` as a compressed .npz under `blobs`; its path relative to the spool."""
    name = f"validation-{detail.epoch}-{uuid.uuid4().hex[:12]}.npz"
    temporary = blobs / f".{name}.tmp"
    with temporary.open("wb") as handle:
        np.savez_compressed(
            handle,
            class_names=np.array(detail.class_names, dtype=str),
            names=np.array(detail.names, dtype=str),
            confusion=detail.confusion,
            **{field: getattr(detail, field) for field in COUNT_FIELDS},
        )
    temporary.replace(blobs / name)
    return f"{blobs.name}/{name}"


def validation_record(blobs: Path, detail: Detail) -> dict[str, Any]:
    """The spool record of an epoch's detail, its blob written under `blobs`."""
    return {
        "type": "validation",
        "epoch": detail.epoch,
        "blob": write_blob(blobs, detail),
        "images": len(detail.names),
        "classes": len(detail.class_names),
    }


def read_body(path: Path) -> dict[str, Any]:
    """The request body of a blob `write_blob` kept (arrays left as numpy: orjson encodes
    them natively)."""
    with np.load(path, allow_pickle=False) as stored:
        return {
            "class_names": stored["class_names"].tolist(),
            "confusion": stored["confusion"],
            "images": {
                "names": stored["names"].tolist(),
                **{field: np.ascontiguousarray(stored[field]) for field in COUNT_FIELDS},
            },
        }
