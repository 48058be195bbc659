"""The validation metrics of a model over a whole labelled set, and every image's counts.

One function for the validation of every epoch and for `segtrack evaluate`, so a held-out score
is computed exactly the way the training curves were: same normalisation, same autocast, same
flip test-time augmentation, one confusion matrix over every pixel (see `trainer.metrics`).
Given the images' names, the same pass also counts TP/FP/FN per image and class
(`trainer.validation_detail`): one confusion matrix per image, summed into the set's, kept on
the device and read back once at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from trainer.distributed import World
from trainer.inference import InputNormalizer, forward_logits
from trainer.metrics import ConfusionMatrix, logits_to_classes
from trainer.runtime import Precision
from trainer.validation_detail import Counts, ImageCounts


@dataclass(frozen=True)
class ScoredSet:
    """What one pass over a labelled set measured.

    Attributes:
        metrics: as `score` returns them.
        confusion: int64 (K, K) pixels by truth (row) and prediction (column).
        images: every image's counts in set order, when the images' names were given.
    """

    metrics: dict[str, float]
    confusion: Counts
    images: ImageCounts | None


@torch.inference_mode()
def score(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    normalizer: InputNormalizer,
    loss_fn: nn.Module,
    class_names: Sequence[str],
    device: torch.device,
    precision: Precision,
    flip_tta: bool,
    prefix: str = "val",
    world: World | None = None,
) -> dict[str, float]:
    """Loss and confusion-matrix metrics of `model` (put in eval mode by the caller).

    Args:
        model: maps normalised (N, C, H, W) images to (N, K, H, W) logits.
        batches: (N, C, H, W) raw images and (N, H, W) class-index masks (255 = ignored).
        normalizer: turns raw images into the model's input on `device`.
        loss_fn: the training loss, reported as `<prefix>/loss` (mean per image).
        class_names: one per class, index order.
        device: where the model and the counts live.
        precision: the autocast of training.
        flip_tta: average the logits over horizontal and vertical flips.
        prefix: first part of every key ("val" during training).
        world: when the ranks of a run each score their shard of the set (batches rank,
            rank + world_size, ... of the single-process batches), sums the counts and the
            per-batch losses over the ranks, so every value is the single-process one exactly.

    Returns:
        `<prefix>/loss`, `<prefix>/iou`, `<prefix>/dice`, `<prefix>/miou`, `<prefix>/pixel_acc`
        and per present class `<prefix>/iou/<name>`, `<prefix>/dice/<name>`, `<prefix>/f1/<name>`,
        `<prefix>/precision/<name>` (when predicted), `<prefix>/recall/<name>` (when in truth).
    """
    return score_set(
        model,
        batches,
        normalizer=normalizer,
        loss_fn=loss_fn,
        class_names=class_names,
        device=device,
        precision=precision,
        flip_tta=flip_tta,
        prefix=prefix,
        world=world,
    ).metrics


@torch.inference_mode()
def score_set(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    normalizer: InputNormalizer,
    loss_fn: nn.Module,
    class_names: Sequence[str],
    device: torch.device,
    precision: Precision,
    flip_tta: bool,
    prefix: str = "val",
    world: World | None = None,
    image_names: Sequence[str] | None = None,
) -> ScoredSet:
    """`score`, with the confusion matrix and, given `image_names`, every image's counts.

    Args:
        image_names: the whole set's names in set order (every rank passes all of them): count
            per image. Under `world` each rank counts the images of its batches and the rows are
            put back in single-process order (`World.unshard_batches`), so rank 0 gets exactly
            what one process would have counted.

    Raises:
        ValueError: `image_names` does not name as many images as the batches held.
    """
    num_classes = len(class_names)
    matrix = ConfusionMatrix(num_classes, device)
    per_image = image_names is not None
    # One loss sum per batch, added up in batch order at the end: the same additions whichever
    # ranks scored which batches.
    batch_losses = []
    image_rows: list[torch.Tensor] = []
    batch_lengths: list[int] = []
    count = 0
    for images, masks in batches:
        target = masks.to(device, non_blocking=True).long()
        with precision.autocast(device):
            logits = forward_logits(model, normalizer(images), flip_tta=flip_tta)
            batch_losses.append(loss_fn(logits, target).float() * images.shape[0])
        predicted = logits_to_classes(logits)
        if per_image:
            image_rows.append(matrix.update_per_image(predicted, target).flatten(1))
            batch_lengths.append(images.shape[0])
        else:
            matrix.update(predicted, target)
        count += images.shape[0]
    losses = torch.stack(batch_losses) if batch_losses else torch.zeros(0, device=device)
    rows = (
        torch.cat(image_rows)
        if image_rows
        else torch.zeros((0, 3 * num_classes), dtype=torch.long, device=device)
    )
    if world is not None:
        losses = world.unshard(losses)
        world.all_reduce_sum_(matrix.counts)
        if per_image:
            rows = world.unshard_batches(rows, batch_lengths)
        (total,) = world.sum_scalars(count)
        count = int(total)
    metrics = matrix.compute(class_names, prefix=prefix)
    metrics[f"{prefix}/loss"] = float(losses.double().sum()) / max(count, 1)
    confusion: Counts = matrix.matrix.cpu().numpy().astype(np.int64)
    return ScoredSet(
        metrics=metrics,
        confusion=confusion,
        images=_image_counts(rows, image_names, num_classes) if image_names is not None else None,
    )


def _image_counts(rows: torch.Tensor, names: Sequence[str], num_classes: int) -> ImageCounts:
    """(N, 3 * K) rows of TP, FP, FN per class, read back once, as ImageCounts."""
    if rows.shape[0] != len(names):
        raise ValueError(f"{len(names)} image names for the {rows.shape[0]} images scored")
    counts = rows.cpu().numpy().astype(np.int64).reshape(len(names), 3, num_classes)
    return ImageCounts(
        names=tuple(names),
        true_positive=np.ascontiguousarray(counts[:, 0]),
        false_positive=np.ascontiguousarray(counts[:, 1]),
        false_negative=np.ascontiguousarray(counts[:, 2]),
    )
