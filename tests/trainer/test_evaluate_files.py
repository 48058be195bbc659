"""An evaluation's CSV files: text a dataset's author wrote (class names, image names) never
starts a spreadsheet formula, and the confusion matrix is headed as the run's confusion.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from trainer.evaluate import CONFUSION_CORNER, Evaluation
from trainer.validation_detail import ImageCounts


def _evaluation() -> Evaluation:
    counts = np.array([[5, 1], [0, 3]], dtype=np.int64)
    images = ImageCounts(
        names=("=HYPERLINK(evil)", "plain"),
        true_positive=np.array([[2, 1], [3, 2]], dtype=np.int64),
        false_positive=np.zeros((2, 2), dtype=np.int64),
        false_negative=np.array([[1, 0], [0, 0]], dtype=np.int64),
    )
    return Evaluation(
        checkpoint=Path("best.pt"),
        epoch=3,
        dataset=Path("data"),
        split="test",
        num_images=2,
        flip_tta=False,
        class_names=("background", "@cmd"),
        metrics={"test/iou": 0.5},
        confusion=counts,
        images=images,
    )


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_written_text_is_spreadsheet_safe(tmp_path: Path) -> None:
    _, per_class, confusion, per_image = _evaluation().write(tmp_path)

    assert [row[1] for row in _rows(per_class)[1:]] == ["background", "'@cmd"]
    header, *matrix = _rows(confusion)
    assert header == [CONFUSION_CORNER, "background", "'@cmd"]
    assert [row[0] for row in matrix] == ["background", "'@cmd"]
    assert [[int(cell) for cell in row[1:]] for row in matrix] == [[5, 1], [0, 3]]
    assert [row[0] for row in _rows(per_image)[1:]] == ["'=HYPERLINK(evil)", "plain"]
