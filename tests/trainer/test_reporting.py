from __future__ import annotations

import csv
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from trainer.data.mask_encoding import MaskEncoding
from trainer.reporting import ConsoleReporter, CsvReporter, RunInfo


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


def test_console_start_line_shows_the_mask_value_mapping(caplog: pytest.LogCaptureFixture) -> None:
    encoding = MaskEncoding(mode="grey", values=(0, 255), ignore_values=(128,))
    info = replace(_info(1), mask_encoding=encoding.to_dict())
    with caplog.at_level(logging.INFO, logger="trainer.reporting"):
        ConsoleReporter(progress_bars=False).on_start(info)
        ConsoleReporter(progress_bars=False).on_start(_info(1))  # no mapping: no line
    lines = [
        record.getMessage() for record in caplog.records if "mask values" in record.getMessage()
    ]
    assert lines == [
        "mask values -> classes: (grey masks) 0 -> 0 background, 255 -> 1 car; ignored: 128"
    ]


def test_class_folder_and_long_mappings_stay_short() -> None:
    folders = MaskEncoding(mode="class-folders", values=(0, 1, 2))
    assert folders.describe_classes(["background", "cell", "nucleus"]) == (
        "no folder -> 0 background, cell/ -> 1 cell, nucleus/ -> 2 nucleus"
    )
    many = MaskEncoding(mode="index", values=tuple(range(30)))
    text = many.describe_classes([f"c{i}" for i in range(30)], limit=4)
    assert text == "0 -> 0 c0, 1 -> 1 c1, 2 -> 2 c2, 3 -> 3 c3 ... and 26 more"
