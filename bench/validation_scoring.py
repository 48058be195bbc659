"""What counting every validation image costs: one epoch's validation with and without per-image
counts (`trainer.scoring.score_set` with and without `image_names`).

The set is held in memory (random uint8 images and masks, a few ignored pixels) so file reading
does not drown the difference; the model is the tiny UNet of the tests (base width 8) or wider.
The two variants alternate, each timed `--rounds` times after a warm-up; the median of each and
the median of the bare counting step (`ConfusionMatrix.update` vs `update_per_image` on the
same predictions) are printed. Runs on the CPU unless `--device` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from trainer.config import IGNORE_INDEX, validate_config
from trainer.inference import InputNormalizer
from trainer.metrics import ConfusionMatrix
from trainer.models.registry import build_model
from trainer.runtime import Precision
from trainer.scoring import score_set


def _median_ms(run: Callable[[], object], rounds: int, device: torch.device) -> float:
    times = []
    for _ in range(rounds):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--classes", type=int, nargs="+", default=[4, 21])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--base-channels", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(
        f"{args.images} images of {args.size}x{args.size}, batches of {args.batch_size}, "
        f"UNet base {args.base_channels}, {device}, {torch.get_num_threads()} threads, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'classes':>7}  {'epoch plain':>12}  {'per image':>10}  {'overhead':>8}  "
        f"{'count plain':>11}  {'per image':>10}"
    )
    for classes in args.classes:
        _measure(classes, args, device)


def _measure(classes: int, args: argparse.Namespace, device: torch.device) -> None:
    """One row of the table: `classes` classes."""
    cfg = validate_config(
        {"dataset": ".", "model": "unet", "base_channels": args.base_channels, "depth": 3}
    )
    model = build_model(cfg, in_channels=3, out_channels=classes).to(device).eval()
    images = torch.randint(0, 256, (args.images, 3, args.size, args.size), dtype=torch.uint8)
    masks = torch.randint(0, classes, (args.images, args.size, args.size), dtype=torch.uint8)
    masks[:, :2] = IGNORE_INDEX
    batches = [
        (images[start : start + args.batch_size], masks[start : start + args.batch_size])
        for start in range(0, args.images, args.batch_size)
    ]
    names = [f"image{index}" for index in range(args.images)]
    common = {
        "normalizer": InputNormalizer("unit", 3, device),
        "loss_fn": nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX).to(device),
        "class_names": [f"c{index}" for index in range(classes)],
        "device": device,
        "precision": Precision(None, use_scaler=False),
        "flip_tta": False,
    }

    def plain() -> object:
        return score_set(model, batches, **common)  # type: ignore[arg-type]

    def detailed() -> object:
        return score_set(model, batches, image_names=names, **common)  # type: ignore[arg-type]

    plain(), detailed()  # warm-up
    plain_ms, detailed_ms = [], []
    for _ in range(args.rounds):
        plain_ms.append(_median_ms(plain, 1, device))
        detailed_ms.append(_median_ms(detailed, 1, device))
    epoch_plain, epoch_detailed = statistics.median(plain_ms), statistics.median(detailed_ms)

    predictions = torch.randint(0, classes, masks.shape, device=device)
    target = masks.to(device).long()
    matrix = ConfusionMatrix(classes, device)
    step = args.batch_size

    def count_plain() -> None:
        for start in range(0, args.images, step):
            matrix.update(predictions[start : start + step], target[start : start + step])

    def count_detailed() -> None:
        for start in range(0, args.images, step):
            matrix.update_per_image(predictions[start : start + step], target[start : start + step])

    counting = [_median_ms(run, args.rounds * 3, device) for run in (count_plain, count_detailed)]
    print(
        f"{classes:>7}  {epoch_plain:>9.1f} ms  {epoch_detailed:>7.1f} ms  "
        f"{(epoch_detailed / epoch_plain - 1) * 100:>+7.1f}%  "
        f"{counting[0]:>8.2f} ms  {counting[1]:>7.2f} ms"
    )


if __name__ == "__main__":
    main()
