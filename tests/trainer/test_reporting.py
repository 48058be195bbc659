from __future__ import annotations

import csv
from pathlib import Path

from trainer.reporting import CsvReporter, RunInfo


def _info(start_epoch: int) -> RunInfo:
    return RunInfo(
        class_names=("background", "car"),
        num_train=8,
        num_val=2,
        in_channels=3,
        epochs=5,
        start_epoch=start_epoch,
        device="cpu",
        steps_per_epoch=2,
        parameters=10,
        mask_encoding={},
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_csv_has_a_row_per_epoch_and_a_column_per_key(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    reporter = CsvReporter(path)
    reporter.on_start(_info(1))
    reporter.on_epoch_end(1, {"train/loss": 0.9, "lr": 0.01})
    reporter.on_epoch_end(2, {"train/loss": 0.5, "lr": 0.01, "val/iou/car": 0.4})
    rows = _rows(path)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert rows[0]["val/iou/car"] == ""
    assert float(rows[1]["val/iou/car"]) == 0.4
    assert next(iter(rows[0])) == "epoch"


def test_resume_drops_rows_of_epochs_being_redone(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    first = CsvReporter(path)
    first.on_start(_info(1))
    for epoch in (1, 2, 3):
        first.on_epoch_end(epoch, {"train/loss": 1.0 / epoch})
    resumed = CsvReporter(path)
    resumed.on_start(_info(3))
    resumed.on_epoch_end(3, {"train/loss": 0.25})
    assert [(row["epoch"], float(row["train/loss"])) for row in _rows(path)] == [
        ("1", 1.0),
        ("2", 0.5),
        ("3", 0.25),
    ]
