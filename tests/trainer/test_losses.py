"""Segmentation losses: definitions, ignored pixels, registry, training signal, autocast."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from trainer.config import IGNORE_INDEX, LOSS_NAMES, TrainConfig
from trainer.losses import (
    DICE_EPS,
    LOSS_BUILDERS,
    BinaryCrossEntropyLoss,
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    LovaszLoss,
    SegmentationLoss,
    UnknownLossError,
    build_loss,
    output_channels,
)
from trainer.models.unet import UNet

BINARY = ("bce", "bce+dice")


def config(loss: str, **options: object) -> TrainConfig:
    return TrainConfig.model_validate({"dataset": "d", "loss": loss, **options})


def classes_for(loss: str) -> int:
    return 2 if loss in BINARY else 3


def random_batch(channels: int, classes: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Logits (2, channels, 8, 8) and targets with a few ignored pixels."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, channels, 8, 8, generator=generator) * 2
    target = torch.randint(0, classes, (2, 8, 8), generator=generator)
    target[0, :2] = IGNORE_INDEX
    target[1, :, 5] = IGNORE_INDEX
    return logits, target


def logits_from_probabilities(probabilities: list[list[float]]) -> Tensor:
    """(C, P) class probabilities of P pixels -> logits (1, C, 1, P) with that softmax."""
    return torch.tensor(probabilities).log().view(len(probabilities), 1, -1).unsqueeze(0)


# --- registry ------------------------------------------------------------------------------


def test_registry_names_equal_the_config_names() -> None:
    assert tuple(LOSS_BUILDERS) == LOSS_NAMES


def test_unknown_loss_lists_the_registered_names() -> None:
    cfg = config("ce").model_copy(update={"loss": "hinge"})
    with pytest.raises(UnknownLossError, match=r"'hinge'.*ce, bce, dice, ce\+dice"):
        build_loss(cfg, num_classes=3)


def test_output_channels() -> None:
    assert output_channels("bce", 2) == 1
    assert output_channels("bce+dice", 2) == 1
    assert output_channels("ce", 2) == 2
    assert output_channels("lovasz", 7) == 7


def test_binary_losses_refuse_more_classes_naming_the_alternatives() -> None:
    with pytest.raises(ValueError, match="needs 2 classes, got 3; use one of ce, dice"):
        output_channels("bce+dice", 3)
    with pytest.raises(ValueError, match="needs 2 classes"):
        build_loss(config("bce"), num_classes=4)


def test_class_weights_must_match_the_classes() -> None:
    with pytest.raises(ValueError, match="class_weights has 2 entries but there are 3 classes"):
        build_loss(config("ce", class_weights=[1.0, 2.0]), num_classes=3)


@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_every_loss_is_a_finite_scalar(loss: str) -> None:
    classes = classes_for(loss)
    logits, target = random_batch(output_channels(loss, classes), classes)
    value = build_loss(config(loss), classes)(logits, target)
    assert isinstance(value, Tensor)
    assert value.shape == ()
    assert torch.isfinite(value)
    assert value > 0


# --- ignored pixels ------------------------------------------------------------------------


@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_ignored_pixels_have_no_influence(loss: str) -> None:
    classes = classes_for(loss)
    criterion = build_loss(config(loss, class_weights=[1.0, 2.0, 0.5][:classes]), classes)
    logits, target = random_batch(output_channels(loss, classes), classes)
    changed = logits.clone()
    ignored = (target == IGNORE_INDEX).unsqueeze(1).expand_as(logits)
    changed[ignored] = torch.randn(int(ignored.sum())) * 50
    changed.requires_grad_(True)

    value = criterion(changed, target)
    value.backward()

    torch.testing.assert_close(value, criterion(logits, target))
    assert changed.grad is not None
    assert changed.grad[ignored].abs().max() == 0


@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_a_fully_ignored_batch_gives_zero_not_nan(loss: str) -> None:
    classes = classes_for(loss)
    logits, _ = random_batch(output_channels(loss, classes), classes)
    target = torch.full((2, 8, 8), IGNORE_INDEX)
    assert build_loss(config(loss), classes)(logits, target) == 0


# --- definitions ---------------------------------------------------------------------------


def test_cross_entropy_with_class_weights_equals_torch() -> None:
    logits, target = random_batch(3, 3)
    weights = [0.2, 1.0, 3.0]
    expected = F.cross_entropy(
        logits, target, weight=torch.tensor(weights), ignore_index=IGNORE_INDEX
    )
    actual = build_loss(config("ce", class_weights=weights), 3)(logits, target)
    torch.testing.assert_close(actual, expected)


def test_cross_entropy_without_weights_equals_torch() -> None:
    logits, target = random_batch(4, 4)
    expected = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(CrossEntropyLoss()(logits, target), expected)


def test_bce_masks_ignored_pixels_and_uses_the_weight_ratio_as_pos_weight() -> None:
    logits, target = random_batch(1, 2)
    valid = target != IGNORE_INDEX
    expected = F.binary_cross_entropy_with_logits(
        logits[:, 0][valid], target[valid].float(), pos_weight=torch.tensor([4.0])
    )
    actual = build_loss(config("bce", class_weights=[0.5, 2.0]), 2)(logits, target)
    torch.testing.assert_close(actual, expected)


def test_bce_rejects_a_zero_background_weight() -> None:
    with pytest.raises(ValueError, match="positive background weight"):
        BinaryCrossEntropyLoss([0.0, 1.0])


def test_dice_by_hand_two_classes() -> None:
    # Foreground probabilities 0.9, 0.2, 0.6, 0.1 against truth 1, 0, 1, 0:
    # intersection 0.9 + 0.6 = 1.5, sum(p) = 1.8, sum(g) = 2 -> dice 3 / 3.8.
    logits = logits_from_probabilities([[0.1, 0.8, 0.4, 0.9], [0.9, 0.2, 0.6, 0.1]])
    target = torch.tensor([[[1, 0, 1, 0]]])
    torch.testing.assert_close(DiceLoss()(logits, target), torch.tensor(1 - 3 / 3.8))


def test_dice_by_hand_skips_background_and_absent_classes() -> None:
    # Classes 0..3 over 4 pixels. Truth: 0, 1, 1, 2. Argmax: 0, 1, 2, 2. Class 3 occurs in
    # neither, so only classes 1 and 2 count.
    probabilities = [
        [0.7, 0.1, 0.1, 0.2],
        [0.1, 0.6, 0.3, 0.1],
        [0.1, 0.2, 0.5, 0.6],
        [0.1, 0.1, 0.1, 0.1],
    ]
    target = torch.tensor([[[0, 1, 1, 2]]])
    dice_1 = 2 * (0.6 + 0.3) / ((0.1 + 0.6 + 0.3 + 0.1) + 2)
    dice_2 = 2 * 0.6 / ((0.1 + 0.2 + 0.5 + 0.6) + 1)
    expected = ((1 - dice_1) + (1 - dice_2)) / 2
    actual = DiceLoss()(logits_from_probabilities(probabilities), target)
    torch.testing.assert_close(actual, torch.tensor(expected))


def test_dice_counts_a_class_that_is_only_predicted() -> None:
    # Truth has no foreground; one pixel is predicted foreground (p = 0.8): sum(p) = 0.9.
    logits = logits_from_probabilities([[0.9, 0.2], [0.1, 0.8]])
    target = torch.tensor([[[0, 0]]])
    expected = 1 - DICE_EPS / (0.9 + DICE_EPS)
    torch.testing.assert_close(DiceLoss()(logits, target), torch.tensor(expected))


def test_dice_is_zero_when_no_foreground_is_present_or_predicted() -> None:
    logits = logits_from_probabilities([[0.9, 0.6], [0.1, 0.4]])
    assert DiceLoss()(logits, torch.tensor([[[0, 0]]])) == 0


def test_single_channel_dice_equals_two_channel_softmax_dice() -> None:
    foreground = torch.tensor([0.9, 0.2, 0.6, 0.1])
    single = (foreground / (1 - foreground)).log().view(1, 1, 1, 4)
    pair = logits_from_probabilities([(1 - foreground).tolist(), foreground.tolist()])
    target = torch.tensor([[[1, 0, 1, 0]]])
    torch.testing.assert_close(DiceLoss()(single, target), DiceLoss()(pair, target))


def test_sums_weight_the_dice_term() -> None:
    logits, target = random_batch(3, 3)
    cross_entropy = CrossEntropyLoss()(logits, target)
    dice = DiceLoss()(logits, target)
    combined = build_loss(config("ce+dice", dice_weight=0.25), 3)(logits, target)
    torch.testing.assert_close(combined, cross_entropy + 0.25 * dice)


@pytest.mark.parametrize("weights", [None, [0.5, 1.0, 2.0]])
def test_focal_with_gamma_zero_equals_cross_entropy(weights: list[float] | None) -> None:
    logits, target = random_batch(3, 3)
    focal = FocalLoss(gamma=0.0, class_weights=weights)(logits, target)
    torch.testing.assert_close(focal, CrossEntropyLoss(weights)(logits, target))


def test_focal_down_weights_easy_pixels() -> None:
    logits, target = random_batch(3, 3)
    cfg = config("focal", focal_gamma=2.0)
    assert build_loss(cfg, 3)(logits, target) < CrossEntropyLoss()(logits, target)


def test_focal_by_hand() -> None:
    logits = logits_from_probabilities([[0.25], [0.75]])
    expected = -((1 - 0.75) ** 2) * math.log(0.75)
    torch.testing.assert_close(
        FocalLoss(gamma=2.0)(logits, torch.tensor([[[1]]])), torch.tensor(expected)
    )


def perfect_logits(target: Tensor, classes: int, margin: float = 30.0) -> Tensor:
    """Logits (N, classes, H, W) that predict `target` with a large margin."""
    return F.one_hot(target.clamp_max(classes - 1), classes).permute(0, 3, 1, 2).float() * margin


def test_lovasz_softmax_is_zero_for_a_perfect_prediction() -> None:
    _, target = random_batch(3, 3)
    loss = LovaszLoss()(perfect_logits(target, 3), target)
    assert loss.abs() < 1e-6


def test_lovasz_softmax_is_positive_otherwise() -> None:
    logits, target = random_batch(3, 3)
    assert LovaszLoss()(logits, target) > 0.1


def test_lovasz_softmax_of_hard_predictions_is_the_jaccard_loss() -> None:
    # With 0/1 errors the Lovász extension equals the set function: 1 - IoU per class.
    target = torch.tensor([[[0, 0, 1, 1], [2, 2, 1, 0]]])
    prediction = torch.tensor([[[0, 1, 1, 1], [2, 0, 1, 0]]])
    ious = []
    for c in range(3):
        intersection = ((target == c) & (prediction == c)).sum().item()
        union = ((target == c) | (prediction == c)).sum().item()
        ious.append(intersection / union)
    expected = sum(1 - iou for iou in ious) / 3
    loss = LovaszLoss()(perfect_logits(prediction, 3, margin=200.0), target)
    torch.testing.assert_close(loss, torch.tensor(expected))


def test_lovasz_hinge_for_a_single_channel() -> None:
    target = torch.tensor([[[0, 1, 1, 0, IGNORE_INDEX]]])
    perfect = torch.tensor([[[[-3.0, 2.0, 5.0, -1.5, 0.0]]]])
    assert LovaszLoss()(perfect, target) == 0
    # One false negative (margin error 1 + 0.5): the positives have Jaccard 1/2 after it.
    wrong = torch.tensor([[[[-3.0, -0.5, 5.0, -1.5, 0.0]]]])
    torch.testing.assert_close(LovaszLoss()(wrong, target), torch.tensor(1.5 * 0.5))


def test_deep_supervision_averages_over_outputs() -> None:
    first, target = random_batch(3, 3, seed=1)
    second, _ = random_batch(3, 3, seed=2)
    criterion = build_loss(config("ce+dice"), 3)
    expected = (criterion(first, target) + criterion(second, target)) / 2
    torch.testing.assert_close(criterion([first, second], target), expected)


def test_class_weights_are_buffers_that_move_with_the_module() -> None:
    criterion = build_loss(config("focal", class_weights=[1.0, 2.0, 3.0]), 3)
    assert isinstance(criterion, SegmentationLoss)
    assert [name for name, _ in criterion.named_buffers()] == ["alpha"]


# --- training signal -----------------------------------------------------------------------


def toy_batch() -> tuple[Tensor, Tensor]:
    """Two 32x32 images whose classes are readable from the pixels (bright/dark/stripes)."""
    generator = torch.Generator().manual_seed(0)
    target = torch.zeros(2, 32, 32, dtype=torch.long)
    target[:, 8:24, 8:24] = 1
    target[:, :, 28:] = 2
    image = torch.randn(2, 3, 32, 32, generator=generator) * 0.1
    image[:, 0] += (target == 1).float()
    image[:, 1] += (target == 2).float()
    target[:, 0, :] = IGNORE_INDEX
    return image, target


@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_loss_falls_while_training_a_tiny_unet(loss: str) -> None:
    classes = classes_for(loss)
    image, target = toy_batch()
    if classes == 2:
        target = torch.where(target == 2, 0, target)
    torch.manual_seed(0)
    model = UNet(3, output_channels(loss, classes), base_channels=8, depth=2)
    criterion = build_loss(config(loss), classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    values = []
    for _ in range(8):
        optimizer.zero_grad()
        value = criterion(model(image), target)
        value.backward()
        optimizer.step()
        values.append(value.item())

    assert all(math.isfinite(value) for value in values)
    assert values[-1] < 0.85 * values[0]


# --- mixed precision -----------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_losses_under_cuda_autocast_without_host_sync(loss: str, dtype: torch.dtype) -> None:
    classes = classes_for(loss)
    logits, target = random_batch(output_channels(loss, classes), classes)
    half = (logits * 20).to("cuda", dtype).requires_grad_(True)
    target = target.cuda()
    criterion = build_loss(config(loss, class_weights=[1.0, 2.0, 0.5][:classes]), classes).cuda()
    reference = criterion(half.detach().float(), target)

    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.autocast("cuda", dtype=dtype):
            value = criterion(half, target)
        value.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")

    assert value.dtype == torch.float32
    assert torch.isfinite(value)
    assert half.grad is not None
    assert torch.isfinite(half.grad).all()
    torch.testing.assert_close(value, reference)
