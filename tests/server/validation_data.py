"""A designed validation set for the validation-detail tests: two classes, four images whose
scores are known, and the request body of an epoch."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.validation.detail import ValidationCounts

CLASSES = ["background", "cat"]
NAMES = ["good", "bad", "empty", "mid"]
# Per image: background predicted background, cat predicted cat, background predicted cat,
# cat predicted background.
DESIGN: dict[str, tuple[int, int, int, int]] = {
    "good": (90, 10, 0, 0),  # cat IoU 1
    "bad": (80, 5, 5, 5),  # cat IoU 5/15
    "empty": (100, 0, 0, 0),  # no cat anywhere: IoU 1
    "mid": (80, 10, 0, 10),  # cat IoU 10/20
}


def counts(
    epoch: int, design: dict[str, tuple[int, int, int, int]] | None = None
) -> ValidationCounts:
    """The set of `design` (default DESIGN) at `epoch`, its confusion matrix summed from it."""
    chosen = design or DESIGN
    rows = [chosen[name] for name in NAMES]
    tp = np.array([[bb, cc] for bb, cc, _, _ in rows], dtype=np.int64)
    fp = np.array([[cb, bc] for _, _, bc, cb in rows], dtype=np.int64)
    fn = np.array([[bc, cb] for _, _, bc, cb in rows], dtype=np.int64)
    confusion = np.array(
        [
            [sum(row[0] for row in rows), sum(row[2] for row in rows)],
            [sum(row[3] for row in rows), sum(row[1] for row in rows)],
        ],
        dtype=np.int64,
    )
    return ValidationCounts(epoch, tuple(CLASSES), confusion, tuple(NAMES), tp, fp, fn)


def body(epoch: int = 1, design: dict[str, tuple[int, int, int, int]] | None = None) -> Any:
    detail = counts(epoch, design)
    return {
        "class_names": list(detail.class_names),
        "confusion": detail.confusion.tolist(),
        "images": {
            "names": list(detail.names),
            "true_positive": detail.true_positive.tolist(),
            "false_positive": detail.false_positive.tolist(),
            "false_negative": detail.false_negative.tolist(),
        },
    }
