"""Training throughput of the standard UNet on Carvana-shaped data, printed as a table.

Generates 1918x1280 JPEG images with GIF masks (`<id>_mask.gif`, values 0/1, as in Kaggle's
Carvana set), trains at scale 0.5 (959x640) with the standard UNet (base width 64, transposed
convolutions) and prints, per precision / channels-last / torch.compile setting:

- end to end: training images/s of `trainer.fit` (decode, resize, augment in loader workers,
  pinned host memory, normalisation on the device), from its second epoch;
- model only: forward + backward + optimizer steps on batches already on the device;
- data share: end to end / model only (>= 90 % means the data pipeline keeps up);
- peak GPU memory.

It always measures the loader alone (images/s the workers deliver) since that is the CPU side of
the pipeline. Without CUDA the GPU rows are reported as missing. Reference: the Pytorch-UNet
pipeline reaches about 48 images/s on an H100 (batch 8, AMP).

With `--nproc N` it compares, instead of the settings table, `fit` end to end on 1 process and on
N processes of one run started by torch's elastic launcher (one GPU each, or N CPU processes
sharing the cores), with the first `--modes` entry: images/s of the whole run (every process's
images), per process, and the scaling efficiency rate_N / (N x rate_1). `batch_size` is per
process, so N processes train N times the images per step; the loader workers are split
between the processes.

    python bench/train_throughput.py                 # everything this machine can run
    python bench/train_throughput.py --images 256 --modes bf16 --no-compile
    python bench/train_throughput.py --modes bf16 --nproc 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.distributed.launcher.api import elastic_launch

from trainer.config import TrainConfig, validate_config
from trainer.data.inspection import inspect_for_config
from trainer.data.loaders import build_data
from trainer.distributed import standalone_launch
from trainer.inference import InputNormalizer
from trainer.loop import fit
from trainer.losses import build_loss, output_channels
from trainer.models.registry import build_model
from trainer.reporting import NullReporter

CARVANA_SIZE = (1918, 1280)  # width, height
REFERENCE_IMAGES_PER_S = 48.0
TARGET_FACTOR = 2.5


def make_carvana_like(root: Path, count: int, seed: int = 0) -> Path:
    """`count` JPEG car-like images and GIF masks in the Carvana layout."""
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = CARVANA_SIZE
    background = rng.integers(150, 230, (height // 8, width // 8, 3), dtype=np.uint8)
    for index in range(count):
        name = f"car{index:05d}_01"
        if (images / f"{name}.jpg").exists():
            continue
        image = Image.fromarray(background).resize(CARVANA_SIZE, Image.Resampling.BILINEAR)
        mask = Image.new("P", CARVANA_SIZE, 0)
        mask.putpalette([0, 0, 0, 255, 255, 255])
        left = int(rng.integers(200, 500))
        top = int(rng.integers(300, 500))
        box = [left, top, left + int(rng.integers(1000, 1300)), top + int(rng.integers(400, 600))]
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        for drawing, fill in ((ImageDraw.Draw(image), colour), (ImageDraw.Draw(mask), 1)):
            drawing.rounded_rectangle(box, radius=120, fill=fill)
            drawing.ellipse([box[0] + 150, box[3] - 120, box[0] + 350, box[3] + 80], fill=fill)
            drawing.ellipse([box[2] - 350, box[3] - 120, box[2] - 150, box[3] + 80], fill=fill)
        image.save(images / f"{name}.jpg", quality=90)
        mask.save(masks / f"{name}_mask.gif")
    return root


def carvana_config(dataset: Path, **overrides: object) -> TrainConfig:
    settings = {
        "dataset": str(dataset),
        "model": "unet",
        "base_channels": 64,
        "depth": 4,
        "upsampling": "transpose",
        "scale": 0.5,
        "batch_size": 8,
        "learning_rate": 1e-4,
        "optimizer": "rmsprop",
        "loss": "ce+dice",
        "augment": "light",
        "val_fraction": 0.05,
        "preview_count": 0,
        "num_workers": max(1, min(12, (os.cpu_count() or 2) - 2)),
        **overrides,
    }
    return validate_config(settings)


def loader_rate(cfg: TrainConfig, batches: int) -> float:
    """Images/s the training DataLoader delivers with nothing consuming them."""
    data = build_data(cfg, inspect_for_config(cfg), pin_memory=torch.cuda.is_available())
    iterator = iter(data.train_loader)
    next(iterator)  # worker start-up is not throughput
    seen, started = 0, time.perf_counter()
    for index, (images, _) in enumerate(iterator):
        seen += images.shape[0]
        if index + 1 >= batches:
            break
    return seen / (time.perf_counter() - started)


@dataclass(frozen=True)
class Setting:
    amp: str
    channels_last: bool
    compile: bool

    @property
    def label(self) -> str:
        layout = "on " if self.channels_last else "off"
        compiled = "on " if self.compile else "off"
        return f"{self.amp:>4}  cl={layout}  compile={compiled}"


class EpochRates(NullReporter):
    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.rates.append(metrics["train/images_per_s"])


def end_to_end_rate(cfg: TrainConfig, out_dir: Path) -> float:
    """Training images/s of `fit`, from the second epoch on (compilation and start-up excluded)."""
    reporter = EpochRates()
    fit(cfg, reporter, out_dir=out_dir)
    return statistics.mean(reporter.rates[1:])


def _rank_rates(settings: dict[str, object], out_dir: str, threads: int | None) -> list[float]:
    """One process of a launched run: its `fit`; rank 0 returns the per-epoch images/s."""
    if threads is not None:
        torch.set_num_threads(threads)
    reporter = EpochRates()  # fit keeps only rank 0's reporter
    fit(validate_config(settings), reporter, out_dir=Path(out_dir))
    return reporter.rates


def launched_rate(cfg: TrainConfig, nproc: int, out_dir: Path) -> float:
    """Images/s of `fit` on `nproc` processes of one run, from its second epoch on."""
    launch = standalone_launch(nproc, "bench")
    cores = os.cpu_count() or 1
    threads = None if cfg.device == "cuda" else max(1, cores // nproc)
    launched = elastic_launch(launch, _rank_rates)
    rates: dict[int, list[float]] = launched(cfg.model_dump(mode="json"), str(out_dir), threads)
    return statistics.mean(rates[0][1:])


def print_process_scaling(cfg: TrainConfig, nproc: int) -> None:
    """End-to-end images/s of 1 and `nproc` processes, side by side."""
    if cfg.device == "cuda" and nproc > torch.cuda.device_count():
        print(f"--nproc {nproc}: only {torch.cuda.device_count()} CUDA device(s) here")
        return
    where = "GPU" if cfg.device == "cuda" else "CPU process"
    print(
        f"one run on 1 and {nproc} processes ({cfg.amp}, one {where} each, batch "
        f"{cfg.batch_size} per process, epochs 2-{cfg.epochs} timed)"
    )
    with tempfile.TemporaryDirectory() as run_dir:
        single = end_to_end_rate(cfg, Path(run_dir))
    workers = max(1, cfg.num_workers // nproc) if cfg.num_workers else 0
    shared = cfg.model_copy(update={"num_workers": workers})
    with tempfile.TemporaryDirectory() as run_dir:
        several = launched_rate(shared, nproc, Path(run_dir))
    print(f"{'processes':>9} {'images/s':>10} {'per process':>12} {'scaling':>8}")
    print(f"{1:>9} {single:10.1f} {single:12.1f} {'':>8}")
    print(f"{nproc:>9} {several:10.1f} {several / nproc:12.1f} {several / (nproc * single):8.0%}")


def model_only_rate(cfg: TrainConfig, steps: int) -> tuple[float, float]:
    """(images/s, peak GiB) of train steps on a fixed batch already on the GPU."""
    device = torch.device("cuda")
    height, width = round(CARVANA_SIZE[1] * cfg.scale), round(CARVANA_SIZE[0] * cfg.scale)
    model = build_model(cfg, in_channels=3, out_channels=output_channels(cfg.loss, 2)).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    trained = torch.compile(model) if cfg.compile else model
    loss_fn = build_loss(cfg, 2).to(device)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=cfg.learning_rate)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype is torch.float16)
    normalizer = InputNormalizer(cfg.normalization, 3, device, channels_last=cfg.channels_last)
    pixels = torch.randint(
        0, 255, (cfg.batch_size, 3, height, width), dtype=torch.uint8, device=device
    )
    target = torch.randint(0, 2, (cfg.batch_size, height, width), device=device)

    def step() -> None:
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = loss_fn(trained(normalizer(pixels)), target)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    rate = steps * cfg.batch_size / (time.perf_counter() - started)
    return rate, torch.cuda.max_memory_allocated() / 2**30


def settings_to_run(modes: Sequence[str], compile_too: bool) -> list[Setting]:
    compiles = (False, True) if compile_too else (False,)
    return [
        Setting(amp, channels_last, compiled)
        for amp in modes
        for channels_last in (False, True)
        for compiled in compiles
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=256, help="Carvana-like images to generate")
    parser.add_argument("--data", type=Path, help="folder to keep the generated data in")
    parser.add_argument(
        "--workers", type=int, help="loader workers (default: cores - 2, at most 12)"
    )
    parser.add_argument("--modes", default="off,bf16,fp16", help="amp modes (off = fp32)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    parser.add_argument("--steps", type=int, default=30, help="timed model-only steps")
    parser.add_argument("--loader-batches", type=int, default=20)
    parser.add_argument(
        "--nproc", type=int, help="compare 1 and N processes end to end instead of the table"
    )
    parser.add_argument(
        "--scale", type=float, default=0.5, help="training scale of the 1918x1280 images"
    )
    args = parser.parse_args()
    if args.nproc is not None and args.nproc < 2:
        parser.error("--nproc takes 2 or more processes")

    with tempfile.TemporaryDirectory() as scratch:
        root = make_carvana_like(args.data or Path(scratch) / "carvana", args.images)
        overrides: dict[str, object] = {"scale": args.scale}
        if args.workers is not None:
            overrides["num_workers"] = args.workers
        base = carvana_config(root, **overrides)
        width, height = (round(side * base.scale) for side in CARVANA_SIZE)
        print(
            f"data: {args.images} Carvana-shaped images at scale {base.scale} -> {width}x{height}, "
            f"batch {base.batch_size}, {base.num_workers} loader workers, {os.cpu_count()} cores"
        )
        rate = loader_rate(base, args.loader_batches)
        print(f"loader alone (decode JPEG+GIF, resize, augment, collate): {rate:7.1f} images/s")

        if args.nproc is not None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
            amp = args.modes.split(",")[0] if device == "cuda" else "off"
            cfg = carvana_config(root, **overrides, amp=amp, epochs=3, device=device)
            print_process_scaling(cfg, args.nproc)
            return

        if not torch.cuda.is_available():
            print(
                "GPU figures missing: no CUDA device on this machine "
                "(end-to-end and model-only rates, peak memory)"
            )
            return
        reference, target = REFERENCE_IMAGES_PER_S, TARGET_FACTOR * REFERENCE_IMAGES_PER_S
        print(
            f"device: {torch.cuda.get_device_name(0)}; reference Pytorch-UNet ~{reference:.0f} "
            f"images/s (AMP), target >= {target:.0f} end to end"
        )
        header = ("setting", "end-to-end", "model-only", "data share", "peak GiB")
        print(f"{header[0]:<34} {header[1]:>11} {header[2]:>11} {header[3]:>11} {header[4]:>9}")
        for setting in settings_to_run(args.modes.split(","), not args.no_compile):
            cfg = carvana_config(
                root, **overrides, amp=setting.amp, channels_last=setting.channels_last,
                compile=setting.compile, epochs=3, device="cuda",
            )  # fmt: skip
            model_rate, peak = model_only_rate(cfg, args.steps)
            with tempfile.TemporaryDirectory() as run_dir:
                e2e = end_to_end_rate(cfg, Path(run_dir))
            share = e2e / model_rate
            print(f"{setting.label:<34} {e2e:11.1f} {model_rate:11.1f} {share:10.0%} {peak:9.2f}")
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
