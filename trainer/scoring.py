"""The validation metrics of a model over a whole labelled set.

One function for the validation of every epoch and for `segtrack evaluate`, so a held-out score
is computed exactly the way the training curves were: same normalisation, same autocast, same
flip test-time augmentation, one confusion matrix over every pixel (see `trainer.metrics`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from trainer.distributed import World
from trainer.inference import InputNormalizer, forward_logits
from trainer.metrics import ConfusionMatrix, logits_to_classes
from trainer.runtime import Precision


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
        and per present class `<prefix>/iou/<name>`, `<prefix>/dice/<name>`.
    """
    matrix = ConfusionMatrix(len(class_names), device)
    # One loss sum per batch, added up in batch order at the end: the same additions whichever
    # ranks scored which batches.
    batch_losses = []
    count = 0
    for images, masks in batches:
        target = masks.to(device, non_blocking=True).long()
        with precision.autocast(device):
            logits = forward_logits(model, normalizer(images), flip_tta=flip_tta)
            batch_losses.append(loss_fn(logits, target).float() * images.shape[0])
        matrix.update(logits_to_classes(logits), target)
        count += images.shape[0]
    losses = torch.stack(batch_losses) if batch_losses else torch.zeros(0, device=device)
    if world is not None:
        losses = world.unshard(losses)
        world.all_reduce_sum_(matrix.counts)
        (total,) = world.sum_scalars(count)
        count = int(total)
    metrics = matrix.compute(class_names, prefix=prefix)
    metrics[f"{prefix}/loss"] = float(losses.double().sum()) / max(count, 1)
    return metrics
