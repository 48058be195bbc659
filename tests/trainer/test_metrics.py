"""Confusion-matrix metrics against hand-computed values (definitions: DESIGN.md section 4)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from trainer.config import IGNORE_INDEX
from trainer.metrics import ConfusionMatrix, logits_to_classes

NAMES = ("background", "road", "car")

# A 4x4 image with 3 classes; per class: truth 6 / 6 / 4 pixels, predicted 7 / 6 / 3.
TRUTH = torch.tensor(
    [
        [0, 0, 1, 1],
        [0, 0, 1, 1],
        [2, 2, 1, 1],
        [2, 2, 0, 0],
    ]
)
PREDICTION = torch.tensor(
    [
        [0, 1, 1, 1],
        [0, 0, 1, 0],
        [2, 0, 1, 1],
        [2, 2, 0, 0],
    ]
)
# Rows are the truth, columns the prediction.
MATRIX = [
    [5, 1, 0],
    [1, 5, 0],
    [1, 0, 3],
]


def matrix_of(prediction: Tensor, target: Tensor, classes: int = 3) -> ConfusionMatrix:
    confusion = ConfusionMatrix(classes)
    confusion.update(prediction, target)
    return confusion


def test_matrix_by_hand() -> None:
    confusion = matrix_of(PREDICTION[None], TRUTH[None])
    assert confusion.matrix.tolist() == MATRIX
    assert confusion.matrix.dtype == torch.int64


def test_metrics_by_hand() -> None:
    metrics = matrix_of(PREDICTION[None], TRUTH[None]).compute(NAMES)

    # IoU = TP / (TP + FP + FN); Dice = 2 TP / (2 TP + FP + FN).
    expected = {
        "val/iou/background": 5 / 8,
        "val/iou/road": 5 / 7,
        "val/iou/car": 3 / 4,
        "val/dice/background": 10 / 13,
        "val/dice/road": 10 / 12,
        "val/dice/car": 6 / 7,
        "val/iou": (5 / 7 + 3 / 4) / 2,
        "val/dice": (10 / 12 + 6 / 7) / 2,
        "val/miou": (5 / 8 + 5 / 7 + 3 / 4) / 3,
        "val/pixel_acc": 13 / 16,
        # Precision = TP / predicted (column sums 7, 6, 3); recall = TP / truth (rows 6, 6, 4).
        "val/precision/background": 5 / 7,
        "val/precision/road": 5 / 6,
        "val/precision/car": 3 / 3,
        "val/recall/background": 5 / 6,
        "val/recall/road": 5 / 6,
        "val/recall/car": 3 / 4,
        # F1 = 2 P R / (P + R), which over pixels is the Dice.
        "val/f1/background": 2 * (5 / 7) * (5 / 6) / (5 / 7 + 5 / 6),
        "val/f1/road": 10 / 12,
        "val/f1/car": 2 * 1 * (3 / 4) / (1 + 3 / 4),
    }
    assert metrics.keys() == expected.keys()
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value), key
        assert type(metrics[key]) is float


def test_prefix() -> None:
    metrics = matrix_of(PREDICTION[None], TRUTH[None]).compute(NAMES, prefix="test")
    assert metrics["test/iou/car"] == pytest.approx(3 / 4)
    assert all(key.startswith("test/") for key in metrics)


def test_ignored_pixels_are_not_counted() -> None:
    target = TRUTH.clone()
    target[0, :] = IGNORE_INDEX
    prediction = PREDICTION.clone()
    prediction[0, :] = torch.tensor([2, 2, 0, 1])

    confusion = matrix_of(prediction[None], target[None])

    # Row 0 of the image held truth 0, 0, 1, 1 predicted 0, 1, 1, 1.
    assert confusion.matrix.tolist() == [[4, 0, 0], [1, 3, 0], [1, 0, 3]]
    assert confusion.compute(NAMES)["val/pixel_acc"] == pytest.approx(10 / 12)


def test_absent_classes_are_skipped_not_zero() -> None:
    confusion = matrix_of(PREDICTION[None], TRUTH[None], classes=4)
    metrics = confusion.compute((*NAMES, "bus"))

    assert "val/iou/bus" not in metrics
    assert "val/dice/bus" not in metrics
    assert metrics["val/iou"] == pytest.approx((5 / 7 + 3 / 4) / 2)
    assert metrics["val/miou"] == pytest.approx((5 / 8 + 5 / 7 + 3 / 4) / 3)


def test_a_class_only_predicted_is_present_with_zero_iou() -> None:
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    prediction = torch.tensor([[[0, 2], [0, 0]]])
    metrics = matrix_of(prediction, target).compute(NAMES)

    assert metrics["val/iou/car"] == 0.0
    assert metrics["val/dice/car"] == 0.0
    assert metrics["val/f1/car"] == 0.0
    # Predicted but not in the truth: precision 0, no recall (it needs true pixels).
    assert metrics["val/precision/car"] == 0.0
    assert "val/recall/car" not in metrics
    assert "val/iou/road" not in metrics
    assert not any(key.endswith("/road") for key in metrics)
    assert metrics["val/iou"] == 0.0
    assert metrics["val/miou"] == pytest.approx((3 / 4 + 0) / 2)


def test_no_foreground_anywhere_is_perfect_agreement() -> None:
    zeros = torch.zeros(2, 4, 4, dtype=torch.long)
    metrics = matrix_of(zeros, zeros).compute(NAMES)

    assert metrics["val/iou"] == 1.0
    assert metrics["val/dice"] == 1.0
    assert metrics["val/miou"] == 1.0
    assert metrics["val/pixel_acc"] == 1.0
    assert set(metrics) == {
        "val/iou/background",
        "val/dice/background",
        "val/f1/background",
        "val/precision/background",
        "val/recall/background",
        "val/iou",
        "val/dice",
        "val/miou",
        "val/pixel_acc",
    }


def test_multi_batch_accumulation_equals_one_shot() -> None:
    generator = torch.Generator().manual_seed(0)
    target = torch.randint(0, 5, (6, 17, 23), generator=generator)
    target[target == 4] = IGNORE_INDEX
    prediction = torch.randint(0, 4, (6, 17, 23), generator=generator)
    names = ("a", "b", "c", "d")

    whole = matrix_of(prediction, target, classes=4)
    batched = ConfusionMatrix(4)
    for start in range(0, 6, 2):
        batched.update(prediction[start : start + 2], target[start : start + 2])

    assert torch.equal(batched.matrix, whole.matrix)
    assert batched.compute(names) == whole.compute(names)


def test_matrix_equals_a_pixel_by_pixel_count() -> None:
    generator = torch.Generator().manual_seed(1)
    target = torch.randint(0, 3, (2, 9, 11), generator=generator)
    target[0, 3:5] = IGNORE_INDEX
    prediction = torch.randint(0, 3, (2, 9, 11), generator=generator)
    expected = [[0] * 3 for _ in range(3)]
    for truth, predicted in zip(
        target.flatten().tolist(), prediction.flatten().tolist(), strict=True
    ):
        if truth != IGNORE_INDEX:
            expected[truth][predicted] += 1

    assert matrix_of(prediction, target).matrix.tolist() == expected


def test_a_class_only_in_the_truth_has_recall_zero_and_no_precision() -> None:
    target = torch.tensor([[[0, 1], [0, 0]]])
    metrics = matrix_of(torch.zeros_like(target), target, classes=2).compute(("bg", "cell"))

    assert metrics["val/recall/cell"] == 0.0
    assert metrics["val/f1/cell"] == 0.0
    assert "val/precision/cell" not in metrics
    assert metrics["val/precision/bg"] == pytest.approx(3 / 4)
    assert metrics["val/recall/bg"] == 1.0


def test_per_image_counts_add_up_to_the_matrix() -> None:
    generator = torch.Generator().manual_seed(2)
    target = torch.randint(0, 5, (5, 13, 7), generator=generator)
    target[target == 4] = IGNORE_INDEX
    prediction = torch.randint(0, 4, (5, 13, 7), generator=generator)

    confusion = ConfusionMatrix(4)
    counts = torch.cat(
        [
            confusion.update_per_image(prediction[:3], target[:3]),
            confusion.update_per_image(prediction[3:], target[3:]),
        ]
    )

    assert counts.shape == (5, 3, 4)
    assert torch.equal(confusion.matrix, matrix_of(prediction, target, classes=4).matrix)
    matrix = confusion.matrix
    true_positive, false_positive, false_negative = counts.sum(dim=0)
    assert torch.equal(true_positive, matrix.diagonal())
    assert torch.equal(false_positive, matrix.sum(dim=0) - matrix.diagonal())
    assert torch.equal(false_negative, matrix.sum(dim=1) - matrix.diagonal())
    # Each image's own counts are those of a matrix of that image alone.
    for image in range(5):
        alone = matrix_of(prediction[image : image + 1], target[image : image + 1], 4).matrix
        assert counts[image, 0].tolist() == alone.diagonal().tolist()
        assert counts[image, 2].tolist() == (alone.sum(dim=1) - alone.diagonal()).tolist()


def test_reset() -> None:
    confusion = matrix_of(PREDICTION[None], TRUTH[None])
    confusion.reset()
    assert confusion.matrix.sum() == 0


def test_binary_single_logit_path() -> None:
    # One logit per pixel: > 0 is foreground. Truth has 3 foreground pixels, 2 are found
    # and 1 background pixel is predicted foreground: IoU 2 / 4, Dice 4 / 6.
    logits = torch.tensor([[[[2.0, 0.5, -1.0], [3.0, -0.2, -4.0]]]])
    target = torch.tensor([[[1, 0, 1], [1, 0, 0]]])

    prediction = logits_to_classes(logits)
    assert prediction.tolist() == [[[1, 1, 0], [1, 0, 0]]]
    assert prediction.dtype == torch.int64
    metrics = matrix_of(prediction, target, classes=2).compute(("background", "object"))

    assert metrics["val/iou"] == pytest.approx(2 / 4)
    assert metrics["val/dice"] == pytest.approx(4 / 6)
    assert metrics["val/iou/object"] == pytest.approx(2 / 4)
    assert metrics["val/iou/background"] == pytest.approx(2 / 4)
    assert metrics["val/miou"] == pytest.approx(2 / 4)
    assert metrics["val/pixel_acc"] == pytest.approx(4 / 6)


def test_logits_to_classes_takes_the_argmax_for_several_channels() -> None:
    logits = torch.tensor([[[[0.1]], [[2.0]], [[-1.0]]]])
    assert logits_to_classes(logits).tolist() == [[[1]]]


def test_invalid_use_is_explained() -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        ConfusionMatrix(1)
    confusion = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="differ"):
        confusion.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        confusion.compute(("a", "b"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_update_on_cuda_does_not_wait_for_the_device() -> None:
    confusion = ConfusionMatrix(3, device="cuda")
    prediction, target = PREDICTION[None].cuda(), TRUTH[None].cuda()
    torch.cuda.set_sync_debug_mode("error")
    try:
        confusion.update(prediction, target)
        confusion.update(prediction, target)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert confusion.matrix.cpu().tolist() == [[2 * count for count in row] for row in MATRIX]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_per_image_update_on_cuda_does_not_wait_for_the_device() -> None:
    confusion = ConfusionMatrix(3, device="cuda")
    prediction, target = PREDICTION[None].cuda(), TRUTH[None].cuda()
    torch.cuda.set_sync_debug_mode("error")
    try:
        counts = confusion.update_per_image(prediction.repeat(2, 1, 1), target.repeat(2, 1, 1))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert confusion.matrix.cpu().tolist() == [[2 * count for count in row] for row in MATRIX]
    assert counts.cpu()[:, 0].tolist() == [[5, 5, 3], [5, 5, 3]]
