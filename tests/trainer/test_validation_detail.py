"""Every validation image scored: per-image counts against the dataset's confusion matrix, the
worst-first order on a designed set, and `fit` reporting the detail once per epoch."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.trainer.factories import tiny_config
from trainer.config import IGNORE_INDEX
from trainer.data.demo import make_demo_dataset
from trainer.inference import InputNormalizer
from trainer.loop import fit
from trainer.reporting import NullReporter
from trainer.runtime import Precision
from trainer.scoring import ScoredSet, score_set
from trainer.validation_detail import ImageCounts, ValidationDetail

SIZE = 16
NAMES = ("background", "cell", "nucleus")


class Threshold(nn.Module):
    """A fixed "model": class 1 where the pixel is above 0.3, class 2 above 0.7, else 0.

    Flip-equivariant, so flip TTA must give the very same counts.
    """

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pixel = images[:, :1]
        return torch.cat([torch.zeros_like(pixel), pixel - 0.3, 4 * (pixel - 0.7)], dim=1)


def designed_set() -> tuple[list[torch.Tensor], list[torch.Tensor], list[str], list[int]]:
    """Seven 16x16 images whose truth is a cell (class 1) with a nucleus (class 2); image k's
    pixels show the truth except for `wrong[k]` pixels of the cell, which look like background.

    Returns images, masks, names and the number of wrongly shown pixels of each image.
    """
    wrong = [0, 40, 5, 70, 20, 0, 10]
    images, masks = [], []
    for number, count in enumerate(wrong):
        mask = torch.zeros(SIZE, SIZE, dtype=torch.long)
        mask[2:14, 2:14] = 1
        mask[6:10, 6:10] = 2
        mask[0, :] = IGNORE_INDEX  # ignored whatever is predicted there
        image = torch.zeros(1, SIZE, SIZE)
        image[0][mask == 1] = 0.5
        image[0][mask == 2] = 0.9
        image[0, 0, :] = 0.5 if number % 2 else 0.9
        cell = (mask == 1).flatten().nonzero().flatten()[:count]
        image.view(-1)[cell] = 0.0
        images.append(image)
        masks.append(mask)
    return images, masks, [f"image{number}" for number in range(len(wrong))], wrong


def score_designed(batch_size: int, flip_tta: bool = False) -> ScoredSet:
    images, masks, names, _ = designed_set()
    batches = [
        (
            torch.stack(images[start : start + batch_size]),
            torch.stack(masks[start : start + batch_size]),
        )
        for start in range(0, len(images), batch_size)
    ]
    return score_set(
        Threshold(),
        batches,
        normalizer=InputNormalizer("unit", 1, torch.device("cpu")),
        loss_fn=nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX),
        class_names=NAMES,
        device=torch.device("cpu"),
        precision=Precision(None, use_scaler=False),
        flip_tta=flip_tta,
        image_names=names,
    )


def assert_counts_add_up(confusion: np.ndarray, detail_images: object) -> None:
    assert isinstance(detail_images, ImageCounts)
    diagonal = np.diagonal(confusion)
    assert np.array_equal(detail_images.true_positive.sum(axis=0), diagonal)
    assert np.array_equal(
        detail_images.false_positive.sum(axis=0), confusion.sum(axis=0) - diagonal
    )
    assert np.array_equal(
        detail_images.false_negative.sum(axis=0), confusion.sum(axis=1) - diagonal
    )
    assert int(detail_images.pixels().sum()) == int(confusion.sum())


@pytest.mark.parametrize("batch_size", [1, 3, 7])
def test_per_image_counts_add_up_to_the_confusion_matrix(batch_size: int) -> None:
    scored = score_designed(batch_size)

    assert scored.images is not None
    assert scored.images.names == tuple(f"image{number}" for number in range(7))
    assert scored.confusion.dtype == np.int64 and scored.confusion.shape == (3, 3)
    assert_counts_add_up(scored.confusion, scored.images)
    # The matrix is the one the metrics came from.
    diagonal = np.diagonal(scored.confusion)
    union = scored.confusion.sum(axis=0) + scored.confusion.sum(axis=1) - diagonal
    assert scored.metrics["val/iou/cell"] == pytest.approx(diagonal[1] / union[1])
    assert scored.metrics == score_designed(1).metrics | {"val/loss": scored.metrics["val/loss"]}


def test_the_worst_images_come_first_by_image_iou() -> None:
    _, _, _, wrong = designed_set()
    scored = score_designed(3)
    assert scored.images is not None

    # Each wrongly shown cell pixel is predicted background: a cell false negative, nothing else.
    assert scored.images.pixels_wrong().tolist() == wrong
    assert scored.images.false_negative[:, 1].tolist() == wrong
    assert scored.images.false_positive[:, 0].tolist() == wrong
    assert scored.images.false_positive[:, 1:].sum() == 0
    cell_pixels = 12 * 12 - 4 * 4  # the cell without its nucleus
    expected_cell_iou = [(cell_pixels - count) / cell_pixels for count in wrong]
    assert scored.images.iou()[:, 1] == pytest.approx(expected_cell_iou)
    assert scored.images.iou()[:, 2] == pytest.approx([1.0] * 7)
    worst_first = scored.images.worst_first()
    assert [scored.images.names[index] for index in worst_first] == [
        "image3",
        "image1",
        "image4",
        "image6",
        "image2",
        "image0",
        "image5",
    ]
    assert scored.images.image_iou()[0] == 1.0 and scored.images.image_dice()[5] == 1.0


def test_ties_in_image_iou_go_to_the_image_with_more_pixels_wrong() -> None:
    # Images 0 and 2 both score 0.5; image 2 has more pixels wrong. Image 3 has no foreground.
    counts = ImageCounts(
        names=("a", "b", "c", "d"),
        true_positive=np.array([[10, 1], [10, 9], [10, 4], [5, 0]]),
        false_positive=np.array([[0, 1], [1, 0], [0, 4], [0, 0]]),
        false_negative=np.array([[1, 0], [0, 1], [4, 0], [0, 0]]),
    )
    assert counts.image_iou().tolist() == [0.5, 0.9, 0.5, 1.0]
    assert counts.worst_first().tolist() == [2, 0, 1, 3]


def test_flip_tta_counts_as_the_metrics_do() -> None:
    plain, flipped = score_designed(3), score_designed(3, flip_tta=True)
    assert plain.images is not None and flipped.images is not None
    assert np.array_equal(plain.confusion, flipped.confusion)
    assert np.array_equal(plain.images.false_negative, flipped.images.false_negative)
    assert_counts_add_up(flipped.confusion, flipped.images)


def test_a_class_absent_from_an_image_has_no_score_there() -> None:
    images, masks, names, _ = designed_set()
    masks[0][masks[0] == 2] = 1
    images[0][0][masks[0] == 1] = 0.5  # no nucleus in truth nor prediction
    scored = score_set(
        Threshold(),
        [(torch.stack(images), torch.stack(masks))],
        normalizer=InputNormalizer("unit", 1, torch.device("cpu")),
        loss_fn=nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX),
        class_names=NAMES,
        device=torch.device("cpu"),
        precision=Precision(None, use_scaler=False),
        flip_tta=False,
        image_names=names,
    )
    assert scored.images is not None
    assert np.isnan(scored.images.iou()[0, 2]) and np.isnan(scored.images.dice()[0, 2])
    assert not scored.images.present()[0, 2] and scored.images.present()[1, 2]
    assert scored.images.image_iou()[0] == 1.0  # the cell alone, all right


def test_names_must_match_the_images_scored() -> None:
    images, masks, names, _ = designed_set()
    with pytest.raises(ValueError, match="6 image names for the 7 images"):
        score_set(
            Threshold(),
            [(torch.stack(images), torch.stack(masks))],
            normalizer=InputNormalizer("unit", 1, torch.device("cpu")),
            loss_fn=nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX),
            class_names=NAMES,
            device=torch.device("cpu"),
            precision=Precision(None, use_scaler=False),
            flip_tta=False,
            image_names=names[:6],
        )


class DetailRecorder(NullReporter):
    """The order of the epoch hooks and every detail reported."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.metrics: dict[int, dict[str, float]] = {}
        self.details: list[ValidationDetail] = []

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.calls.append(("epoch_end", epoch))
        self.metrics[epoch] = dict(metrics)

    def on_validation_detail(self, detail: ValidationDetail) -> None:
        self.calls.append(("detail", detail.epoch))
        self.details.append(detail)


def test_fit_reports_every_validation_image_once_per_epoch(tmp_path: Path) -> None:
    dataset = make_demo_dataset(tmp_path / "data", count=10, size=32, seed=4).root
    recorder = DetailRecorder()
    cfg = tiny_config(dataset, epochs=2, batch_size=2, depth=2, val_fraction=0.3)
    fit(cfg, recorder, out_dir=tmp_path / "run")

    assert recorder.calls == [("epoch_end", 1), ("detail", 1), ("epoch_end", 2), ("detail", 2)]
    for detail in recorder.details:
        assert detail.class_names == ("background", "circle", "square", "triangle")
        assert len(detail.images.names) == 3 and len(set(detail.images.names)) == 3
        assert_counts_add_up(detail.confusion, detail.images)
        metrics = recorder.metrics[detail.epoch]
        matrix = detail.confusion
        assert metrics["val/pixel_acc"] == pytest.approx(np.trace(matrix) / matrix.sum())
