"""`segtrack evaluate`: validation metrics of a checkpoint on a held-out part of a dataset."""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from tests.trainer.factories import binary_demo_dataset, tiny_config
from trainer.data.demo import make_demo_dataset
from trainer.data.errors import DatasetLayoutError
from trainer.evaluate import (
    CONFUSION_CORNER,
    EvaluateError,
    EvaluateOptions,
    MissingSplitError,
    evaluate_checkpoint,
)
from trainer.loop import fit
from trainer.reporting import NullReporter
from trainer.validation_detail import ValidationDetail


class LastMetrics(NullReporter):
    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.detail: ValidationDetail | None = None

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.metrics = dict(metrics)

    def on_validation_detail(self, detail: ValidationDetail) -> None:
        self.detail = detail


def split_dataset(root: Path) -> Path:
    """A demo dataset in images/{train,val,test} + masks/{...}; test holds copies of val."""
    demo = make_demo_dataset(root / "demo", count=16, size=32, seed=6).root
    dataset = root / "split"
    names = sorted(path.name for path in (demo / "images").iterdir())
    parts = {"train": names[:12], "val": names[12:], "test": names[12:]}
    for part, members in parts.items():
        for kind in ("images", "masks"):
            (dataset / kind / part).mkdir(parents=True)
            for name in members:
                shutil.copy(demo / kind / name, dataset / kind / part / name)
    shutil.copy(demo / "classes.json", dataset / "classes.json")
    return dataset


@pytest.fixture(scope="module")
def training(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, LastMetrics]:
    """(dataset with a test split, last.pt, what its last epoch reported)."""
    root = tmp_path_factory.mktemp("evaluate")
    dataset = split_dataset(root)
    reporter = LastMetrics()
    fit(tiny_config(dataset, epochs=2, batch_size=4), reporter, out_dir=root / "run")
    return dataset, root / "run" / "last.pt", reporter


@pytest.fixture(scope="module")
def trained(
    training: tuple[Path, Path, LastMetrics],
) -> tuple[Path, Path, dict[str, float]]:
    """(dataset with a test split, last.pt, the metrics of its last epoch)."""
    dataset, checkpoint, reporter = training
    return dataset, checkpoint, reporter.metrics


def _as_validation(metrics: Mapping[str, float], split: str) -> dict[str, float]:
    return {key.replace(f"{split}/", "val/", 1): value for key, value in metrics.items()}


@pytest.mark.parametrize("split", ["test", "val"])
def test_the_held_out_copy_of_val_scores_exactly_like_validation(
    trained: tuple[Path, Path, dict[str, float]], split: str
) -> None:
    """Keys name the split scored: the test split's are test/*, the validation part's val/*,
    the very keys and values training logged."""
    dataset, checkpoint, last = trained
    evaluation = evaluate_checkpoint(checkpoint, dataset, EvaluateOptions(split=split))

    assert evaluation.num_images == 4
    assert evaluation.epoch == 2
    assert all(key.startswith(f"{split}/") for key in evaluation.metrics)
    validation = {key: value for key, value in last.items() if key.startswith("val/")}
    assert _as_validation(evaluation.metrics, split) == pytest.approx(
        validation, rel=1e-5, abs=1e-6
    )
    assert evaluation.per_class()[1]["iou"] == evaluation.metrics[f"{split}/iou/circle"]


def test_the_validation_part_counts_every_image_as_training_did(
    training: tuple[Path, Path, LastMetrics],
) -> None:
    dataset, checkpoint, reporter = training
    evaluation = evaluate_checkpoint(checkpoint, dataset, EvaluateOptions(split="val"))
    detail = reporter.detail
    assert detail is not None and detail.epoch == evaluation.detail().epoch == 2

    assert evaluation.images.names == detail.images.names
    assert np.array_equal(evaluation.confusion, detail.confusion)
    for kind in ("true_positive", "false_positive", "false_negative"):
        assert np.array_equal(getattr(evaluation.images, kind), getattr(detail.images, kind))


def test_all_and_tta(trained: tuple[Path, Path, dict[str, float]]) -> None:
    dataset, checkpoint, _ = trained
    evaluation = evaluate_checkpoint(
        checkpoint, dataset, EvaluateOptions(split="all", flip_tta=True, batch_size=3)
    )
    assert evaluation.num_images == 20
    assert {"all/iou", "all/dice", "all/miou", "all/pixel_acc", "all/loss"} <= set(
        evaluation.metrics
    )
    assert all(key.startswith("all/") for key in evaluation.metrics)
    assert all(math.isfinite(value) for value in evaluation.metrics.values())


def test_a_missing_split_lists_the_splits_there_are(
    trained: tuple[Path, Path, dict[str, float]], tmp_path: Path
) -> None:
    _, checkpoint, _ = trained
    flat = make_demo_dataset(tmp_path / "flat", count=6, size=32, seed=1).root
    with pytest.raises(MissingSplitError) as caught:
        evaluate_checkpoint(checkpoint, flat)
    assert isinstance(caught.value, DatasetLayoutError)
    assert caught.value.split == "test" and caught.value.available == ("val", "all")
    message = str(caught.value)
    assert "has no test split" in message
    assert "val (1 pair, a random 20% held out with seed 0, as in training), all (6 pairs)" in (
        message
    )


def test_other_classes_are_refused(
    trained: tuple[Path, Path, dict[str, float]], tmp_path: Path
) -> None:
    _, checkpoint, _ = trained
    binary = binary_demo_dataset(tmp_path, seed=2, count=4, size=32)
    with pytest.raises(EvaluateError, match=r"masks of .* do not fit the classes") as caught:
        evaluate_checkpoint(checkpoint, binary, EvaluateOptions(split="all"))
    assert "background, circle, square, triangle" in str(caught.value)
    assert "255" in str(caught.value)

    (binary / "classes.txt").write_text("background\nforeground\n", encoding="utf-8")
    with pytest.raises(EvaluateError, match=r"names the classes background, foreground"):
        evaluate_checkpoint(checkpoint, binary, EvaluateOptions(split="all"))


def test_cli_evaluate_prints_a_table_and_writes_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from segtrack.cli import main

    data, run, out = tmp_path / "data", tmp_path / "run", tmp_path / "eval"
    demo_data = ["demo-data", str(data), "--count", "10", "--size", "32", "--test-count", "0"]
    assert main(demo_data) == 0
    config = tmp_path / "config.yaml"
    config.write_text(
        f"dataset: {data}\nbase_channels: 8\ndepth: 2\nepochs: 1\nnum_workers: 0\naugment: none\n",
        encoding="utf-8",
    )
    assert main(["train", str(config), "--out", str(run)]) == 0
    capsys.readouterr()

    checkpoint = ["--checkpoint", str(run / "last.pt")]
    assert main(["evaluate", *checkpoint, "--split", "val", "--out", str(out), str(data)]) == 0
    printed = capsys.readouterr().out
    assert "on the val split" in printed and "val/miou" in printed and "circle" in printed
    assert "test/" not in printed

    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert saved["split"] == "val" and saved["num_images"] == 2
    assert all(key.startswith("val/") for key in saved["metrics"])
    with (run / "metrics.csv").open(newline="", encoding="utf-8") as handle:
        validation = next(csv.DictReader(handle))
    for key in ("iou", "dice", "miou", "pixel_acc", "loss"):
        assert saved["metrics"][f"val/{key}"] == pytest.approx(float(validation[f"val/{key}"]))
    with (out / "per_class.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["class"] for row in rows] == ["background", "circle", "square", "triangle"]
    assert set(rows[0]) == {"index", "class", "iou", "dice", "precision", "recall"}
    classes = saved["class_names"]

    # The confusion matrix: truth rows, prediction columns, the same as metrics.json's.
    with (out / "confusion_matrix.csv").open(newline="", encoding="utf-8") as handle:
        header, *matrix_rows = list(csv.reader(handle))
    assert header == [CONFUSION_CORNER, *classes] == ["truth \\ prediction", *classes]
    assert [row[0] for row in matrix_rows] == classes
    matrix = [[int(cell) for cell in row[1:]] for row in matrix_rows]
    assert matrix == saved["confusion_matrix"]
    for index, name in enumerate(classes):
        true_positive = matrix[index][index]
        union = sum(matrix[index]) + sum(row[index] for row in matrix) - true_positive
        if union:
            assert saved["metrics"][f"val/iou/{name}"] == pytest.approx(true_positive / union)
        else:
            assert f"val/iou/{name}" not in saved["metrics"]

    # One row per image, whose counts add up to the matrix.
    with (out / "per_image.csv").open(newline="", encoding="utf-8") as handle:
        images = list(csv.DictReader(handle))
    assert list(images[0]) == [
        "name",
        "iou",
        "dice",
        "pixels_wrong",
        *(f"{kind}/{name}" for kind in ("iou", "dice") for name in classes),
    ]
    assert len(images) == saved["num_images"] == 2
    assert len({row["name"] for row in images}) == 2
    off_diagonal = sum(map(sum, matrix)) - sum(matrix[i][i] for i in range(len(classes)))
    assert sum(int(row["pixels_wrong"]) for row in images) == off_diagonal
    for row in images:
        present = [float(row[f"iou/{name}"]) for name in classes[1:] if row[f"iou/{name}"]]
        expected = sum(present) / len(present) if present else 1.0
        assert float(row["iou"]) == pytest.approx(expected)
        assert all((row[f"iou/{name}"] == "") == (row[f"dice/{name}"] == "") for name in classes)

    # Demo data without a test split: the error names the parts it has and how to score them.
    assert main(["evaluate", *checkpoint, str(data)]) == 2
    error = capsys.readouterr().err
    assert "no test split" in error
    assert "it has: val (2 pairs" in error and "all (10 pairs)" in error
    command = f"segtrack evaluate --checkpoint {run / 'last.pt'} {data}"
    assert f"{command} --split val   # the validation part training held out" in error
    assert f"{command} --split all   # every pair" in error
