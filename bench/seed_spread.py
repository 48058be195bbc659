"""How much the tiny demo training depends on its seed: val/iou per epoch for several seeds.

Trains the test suite's tiny UNet (base width 8, depth 3) on the synthetic demo data (48 images of
64x64, four classes) for 12 epochs once per seed and prints each curve, then the spread of the
final and best scores. The trainer test asserts val/iou >= 0.8 for one seed; this shows the
assertion is not a lucky draw.

    python bench/seed_spread.py                   # seeds 0-11
    python bench/seed_spread.py --seeds 0 4 8 --epochs 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from trainer.config import validate_config
from trainer.data.demo import make_demo_dataset
from trainer.loop import fit
from trainer.reporting import NullReporter


class IouCurve(NullReporter):
    """Keeps val/iou of every epoch."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.values.append(metrics["val/iou"])


def train_once(dataset: Path, out_dir: Path, *, seed: int, epochs: int) -> list[float]:
    cfg = validate_config(
        {
            "dataset": str(dataset),
            "model": "unet",
            "base_channels": 8,
            "depth": 3,
            "epochs": epochs,
            "batch_size": 8,
            "learning_rate": 0.01,
            "num_workers": 0,
            "augment": "light",
            "preview_count": 0,
            "seed": seed,
        }
    )
    curve = IouCurve()
    fit(cfg, curve, out_dir=out_dir)
    return curve.values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(12)))
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        dataset = make_demo_dataset(Path(scratch) / "demo", count=48, size=64, seed=0).root
        finals, bests = [], []
        print(f"{'seed':>4}  {'s':>4}  val/iou per epoch")
        for seed in args.seeds:
            started = time.perf_counter()
            curve = train_once(dataset, Path(scratch) / f"run{seed}", seed=seed, epochs=args.epochs)
            elapsed = time.perf_counter() - started
            print(f"{seed:>4}  {elapsed:>4.0f}  " + " ".join(f"{value:.2f}" for value in curve))
            finals.append(curve[-1])
            bests.append(max(curve))
    for name, values in (("final", finals), ("best", bests)):
        print(
            f"{name:>5} val/iou over {len(values)} seeds: min {min(values):.3f}  "
            f"median {statistics.median(values):.3f}  max {max(values):.3f}"
        )


if __name__ == "__main__":
    main()
