"""One run on two processes: real torch.distributed (gloo on the CPU), one process a rank.

Each rank runs a job of this module and leaves its outcome (a value, or the error it
ended with) in a file, so a failing rank never takes the others down before they report.
"""

from __future__ import annotations

import csv
import functools
import multiprocessing
import os
import pickle
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from torch.multiprocessing.spawn import ProcessContext, start_processes

from tests.trainer.factories import tiny_config
from trainer.checkpoint import load_checkpoint
from trainer.config import TrainConfig
from trainer.data.dataset import SegmentationDataset
from trainer.data.demo import make_demo_dataset
from trainer.data.inspection import inspect_for_config
from trainer.data.loaders import build_data
from trainer.distributed import World, join_world, launch_command
from trainer.inference import InputNormalizer
from trainer.loop import FitResult, fit
from trainer.losses import build_loss, output_channels
from trainer.models.registry import build_model
from trainer.models.resnet import ResNetEncoder
from trainer.optim import lr_scale
from trainer.reporting import NullReporter, RunInfo
from trainer.runtime import Precision
from trainer.scoring import ScoredSet, score_set
from trainer.validation_detail import ValidationDetail

WORLD_LIMIT_S = 120.0
"""A world that has not ended by then hangs; the test fails instead of waiting forever."""

Outcome = tuple[str, Any]
"""("ok", value) or ("error", "<type>: <message>")."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rank_main(
    rank: int, world_size: int, port: int, job: Callable[[int], object], results: Path
) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size),
    )
    try:
        outcome: Outcome = ("ok", job(rank))
    except Exception as error:
        outcome = ("error", f"{type(error).__name__}: {error}")
    (results / f"rank{rank}.pkl").write_bytes(pickle.dumps(outcome))


def run_world(world_size: int, job: Callable[[int], object], scratch: Path) -> list[Outcome]:
    """Run `job(rank)` on `world_size` rank processes; their outcomes in rank order."""
    # The ranks fork from one server process that imports torch and this module once (the
    # first world starts it), rather than each importing them afresh (seconds a rank, and six
    # worlds here). `segtrack train` starting fresh processes of its own is tested below.
    multiprocessing.set_forkserver_preload(["torch", "torch._dynamo", "trainer.loop", __name__])
    results = scratch / f"outcomes-{time.monotonic_ns()}"
    results.mkdir(parents=True)
    context: ProcessContext = start_processes(  # type: ignore[no-untyped-call]
        _rank_main,
        args=(world_size, _free_port(), job, results),
        nprocs=world_size,
        join=False,
        start_method="forkserver",
    )
    deadline = time.monotonic() + WORLD_LIMIT_S
    while not context.join(timeout=max(deadline - time.monotonic(), 0.1)):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the {world_size} ranks still ran after {WORLD_LIMIT_S:.0f} s")
    return [pickle.loads((results / f"rank{rank}.pkl").read_bytes()) for rank in range(world_size)]


@pytest.fixture(autouse=True)
def _one_thread_per_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two ranks share two cores; the rank processes inherit this environment (the same in
    every test, as the server they fork from keeps the environment it started with)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("SEGTRACK_COLLECTIVE_TIMEOUT_S", "60")


def _config(dataset: Path, **overrides: Any) -> TrainConfig:
    settings: dict[str, Any] = {"depth": 2, "batch_size": 4, "preview_count": 1, "device": "cpu"}
    return tiny_config(dataset, **{**settings, **overrides})


@pytest.mark.parametrize(
    ("lr_scaling", "expected"), [("none", 1.0), ("linear", 8.0), ("sqrt", 8.0**0.5)]
)
def test_learning_rate_scales_with_processes_times_accumulation(
    tmp_path: Path, lr_scaling: str, expected: float
) -> None:
    cfg = _config(tmp_path, lr_scaling=lr_scaling, grad_accum_steps=2)
    assert lr_scale(cfg, world_size=4) == pytest.approx(expected)


def test_launch_command_runs_a_module_on_each_process() -> None:
    command = launch_command(2, ["platform"])
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    finished = subprocess.run(
        command, capture_output=True, text=True, timeout=WORLD_LIMIT_S, check=False
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    # `python -m platform`, twice; the two processes share the pipe, so their lines may interleave
    assert finished.stdout.count(platform.platform()) == 2


# --- validation equals one process's ---------------------------------------------------------


def _scores(cfg: TrainConfig, weights: Path, world: World) -> dict[str, ScoredSet]:
    """This rank's share scored with the world, and the whole set scored alone, every image
    counted."""
    report = inspect_for_config(cfg)
    alone = build_data(cfg, report, pin_memory=False)
    shard = build_data(cfg, report, pin_memory=False, rank=world.rank, world_size=world.world_size)
    out_channels = output_channels(cfg.loss, alone.num_classes)
    model = build_model(cfg, in_channels=alone.in_channels, out_channels=out_channels)
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    common: dict[str, Any] = {
        "normalizer": InputNormalizer(cfg.normalization, alone.in_channels, world.device),
        "loss_fn": build_loss(cfg, alone.num_classes),
        "class_names": alone.class_names,
        "device": world.device,
        "precision": Precision(None, use_scaler=False),
        "flip_tta": False,
        "image_names": alone.val_names,
    }
    return {
        "alone": score_set(model, alone.val_loader, **common),
        "world": score_set(model, shard.val_loader, world=world, **common),
    }


def _score_job(cases: list[tuple[TrainConfig, Path]], rank: int) -> list[dict[str, ScoredSet]]:
    world = join_world("cpu")
    try:
        return [_scores(cfg, weights, world) for cfg, weights in cases]
    finally:
        world.close()


def _same_counts(first: ScoredSet, second: ScoredSet) -> bool:
    """The same confusion matrix and the same images with the same counts, in the same order."""
    if first.images is None or second.images is None:
        return False
    kinds = ("true_positive", "false_positive", "false_negative")
    return (
        np.array_equal(first.confusion, second.confusion)
        and first.images.names == second.images.names
        and all(
            np.array_equal(getattr(first.images, kind), getattr(second.images, kind))
            for kind in kinds
        )
    )


def test_validation_on_two_ranks_equals_one_process_exactly(tmp_path: Path) -> None:
    cases = []
    # 6 validation images in batches of 2 (3 batches: 2 + 1 per rank), 5 in batches of 2 (the
    # last batch holds 1), and 5 in one batch of 8 (rank 1 scores nothing).
    for count, batch_size in ((24, 2), (21, 2), (21, 8)):
        root = make_demo_dataset(tmp_path / f"demo{count}", count=count, size=32, seed=count).root
        cfg = _config(root, val_fraction=0.25, batch_size=batch_size)
        torch.manual_seed(count)
        model = build_model(cfg, in_channels=3, out_channels=output_channels(cfg.loss, 4))
        weights = tmp_path / f"weights{count}-{batch_size}.pt"
        torch.save(model.state_dict(), weights)
        cases.append((cfg, weights))

    outcomes = run_world(2, functools.partial(_score_job, cases), tmp_path)

    for status, per_case in outcomes:
        assert status == "ok", per_case
        for scored in per_case:
            world, alone = scored["world"], scored["alone"]
            assert world.metrics == alone.metrics
            assert "val/loss" in world.metrics and "val/iou/circle" in world.metrics
            # Every image once, in the single-process order, with the same counts.
            assert _same_counts(world, alone)
            assert world.images is not None
            diagonal = np.diagonal(world.confusion)
            assert np.array_equal(world.images.true_positive.sum(axis=0), diagonal)
            assert np.array_equal(
                world.images.false_negative.sum(axis=0), world.confusion.sum(axis=1) - diagonal
            )
    # Both ranks end with the same numbers.
    for first, second in zip(outcomes[0][1], outcomes[1][1], strict=True):
        assert first["world"].metrics == second["world"].metrics
        assert _same_counts(first["world"], second["world"])


# --- training, checkpoints and resume across world sizes ---------------------------------------


class _Recorder(NullReporter):
    """Picklable record of what a rank's reporter was told."""

    def __init__(self, stop_at_epoch: int | None = None) -> None:
        self.info: RunInfo | None = None
        self.epochs: dict[int, dict[str, float]] = {}
        self.progress_shares: list[float | None] = []
        self.details: list[ValidationDetail] = []
        self.stop_at_epoch = stop_at_epoch

    def on_start(self, info: RunInfo) -> None:
        self.info = info

    def on_train_progress(self, progress: Any) -> None:
        self.progress_shares.append(progress.data_wait_share)

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.epochs[epoch] = dict(metrics)

    def on_validation_detail(self, detail: ValidationDetail) -> None:
        self.details.append(detail)

    def should_stop(self) -> bool:
        return self.stop_at_epoch is not None and max(self.epochs, default=0) >= self.stop_at_epoch


def _fit_job(
    cfg: TrainConfig,
    out_dir: Path,
    resume_from: Path | None,
    stop_at_epoch: int | None,
    rank: int,
) -> tuple[FitResult, _Recorder]:
    recorder = _Recorder(stop_at_epoch)
    return fit(cfg, recorder, out_dir=out_dir, resume_from=resume_from), recorder


def _results(outcomes: list[Outcome]) -> list[tuple[FitResult, _Recorder]]:
    for status, value in outcomes:
        assert status == "ok", value
    return [value for _, value in outcomes]


def test_two_ranks_train_and_their_checkpoints_resume_on_any_number(tmp_path: Path) -> None:
    dataset = make_demo_dataset(tmp_path / "demo", count=24, size=32, seed=0).root
    cfg = _config(dataset, epochs=3, lr_scaling="linear", learning_rate=0.005)

    (main, main_record), (other, other_record) = _results(
        run_world(2, functools.partial(_fit_job, cfg, tmp_path / "two", None, None), tmp_path)
    )
    assert main.status == other.status == "completed"
    # One run, whichever rank tells it (apart from each rank's own clock and memory).
    own = {"train/images_per_s", "train/peak_memory_mib"}
    assert {k: v for k, v in main.last_metrics.items() if k not in own} == {
        k: v for k, v in other.last_metrics.items() if k not in own
    }
    losses = [main_record.epochs[epoch]["train/loss"] for epoch in (1, 2, 3)]
    assert losses[2] < losses[0]
    assert main_record.epochs[1]["lr"] == pytest.approx(0.01)  # 0.005 x 2 processes
    assert main_record.info is not None
    assert main_record.info.world_size == 2 and main_record.info.effective_batch_size == 8
    shares = [share for share in main_record.progress_shares if share is not None]
    assert shares and all(0.0 <= share <= 1.0 for share in shares)
    assert other_record.info is None and not other_record.epochs  # only rank 0 reports
    # Every validation image once per epoch, whichever rank scored it.
    assert [detail.epoch for detail in main_record.details] == [1, 2, 3]
    assert not other_record.details
    for detail in main_record.details:
        assert len(detail.images.names) == len(set(detail.images.names)) == 5
        assert int(detail.images.pixels().sum()) == int(detail.confusion.sum())
        assert np.array_equal(
            detail.images.true_positive.sum(axis=0), np.diagonal(detail.confusion)
        )

    two_rank = load_checkpoint(tmp_path / "two" / "last.pt")
    assert not any(key.startswith("module.") for key in two_rank.model_state)
    resumed_alone = fit(
        cfg.model_copy(update={"epochs": 4}),
        out_dir=tmp_path / "two",
        resume_from=tmp_path / "two" / "last.pt",
    )
    assert resumed_alone.status == "completed" and resumed_alone.epochs_done == 4

    fit(cfg.model_copy(update={"epochs": 1}), out_dir=tmp_path / "one")
    resume = functools.partial(_fit_job, cfg, tmp_path / "one", tmp_path / "one" / "last.pt", 2)
    (main, main_record), (other, _) = _results(run_world(2, resume, tmp_path))
    # Rank 0's reporter asked to stop after epoch 2; both ranks stopped there.
    assert main.status == other.status == "stopped"
    assert main.epochs_done == other.epochs_done == 2
    assert sorted(main_record.epochs) == [2]
    assert load_checkpoint(tmp_path / "one" / "last.pt").state.epoch == 2


def test_two_ranks_train_with_a_frozen_encoder_then_train_it(tmp_path: Path) -> None:
    dataset = make_demo_dataset(tmp_path / "demo", count=16, size=32, seed=0).root
    torch.manual_seed(5)
    source = ResNetEncoder(18)
    weights = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), weights)
    cfg = _config(
        dataset,
        epochs=2,
        model="resnet18-unet",
        image_size=32,
        encoder_weights=str(weights),
        freeze_encoder_epochs=1,
    )
    (main, _), (other, _) = _results(
        run_world(2, functools.partial(_fit_job, cfg, tmp_path / "run", None, None), tmp_path)
    )
    # Epoch 1 gives the frozen encoder no gradient on either rank, epoch 2 trains it.
    assert main.status == other.status == "completed"
    trained = load_checkpoint(tmp_path / "run" / "last.pt").model_state
    assert not torch.equal(trained["encoder.conv1.weight"], source.state_dict()["conv1.weight"])


# --- a failing rank ends the run everywhere ----------------------------------------------------


def _failing_fit_job(cfg: TrainConfig, out_dir: Path, rank: int) -> FitResult:
    if rank == 1:
        reads = iter(range(1_000_000))
        read_sample = SegmentationDataset.__getitem__

        def failing_read(
            self: SegmentationDataset, index: Any
        ) -> tuple[torch.Tensor, torch.Tensor]:
            if next(reads) == 6:  # mid-way through the first epoch
                raise OSError(f"cannot read sample {index}: the disk went away")
            return read_sample(self, index)

        SegmentationDataset.__getitem__ = failing_read  # type: ignore[method-assign]
    return fit(cfg, out_dir=out_dir)


def test_an_error_on_one_rank_ends_every_rank_with_its_reason(tmp_path: Path) -> None:
    dataset = make_demo_dataset(tmp_path / "demo", count=24, size=32, seed=0).root
    cfg = _config(dataset, epochs=2, batch_size=2)

    (main_status, main_error), (other_status, other_error) = run_world(
        2, functools.partial(_failing_fit_job, cfg, tmp_path / "run"), tmp_path
    )

    assert main_status == other_status == "error"
    assert other_error.startswith("OSError: cannot read sample")
    assert main_error.startswith("TrainingError: rank 1: cannot read sample")
    assert "the disk went away" in main_error


def _nan_on_rank_one_job(cfg: TrainConfig, out_dir: Path, rank: int) -> FitResult:
    if rank == 1:
        read_sample = SegmentationDataset.__getitem__

        def poisoned_read(
            self: SegmentationDataset, index: Any
        ) -> tuple[torch.Tensor, torch.Tensor]:
            image, mask = read_sample(self, index)
            return image.float().fill_(float("nan")), mask

        SegmentationDataset.__getitem__ = poisoned_read  # type: ignore[method-assign]
    return fit(cfg, out_dir=out_dir)


def test_a_non_finite_loss_on_one_rank_stops_both(tmp_path: Path) -> None:
    dataset = make_demo_dataset(tmp_path / "demo", count=24, size=32, seed=0).root
    outcomes = run_world(
        2, functools.partial(_nan_on_rank_one_job, _config(dataset), tmp_path / "run"), tmp_path
    )
    for status, error in outcomes:
        assert status == "error"
        assert error.startswith("TrainingError: the training loss became nan in epoch 1")


# --- the command line --------------------------------------------------------------------------


def test_segtrack_train_launches_the_processes_itself(tmp_path: Path) -> None:
    dataset = make_demo_dataset(tmp_path / "demo", count=24, size=32, seed=0).root
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(_config(dataset, epochs=2).model_dump(mode="json")))
    out = tmp_path / "out"

    command = [sys.executable, "-m", "segtrack", "train", str(config), "--out", str(out)]
    finished = subprocess.run(
        [*command, "--nproc-per-node", "2"],
        capture_output=True,
        text=True,
        timeout=WORLD_LIMIT_S,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("completed: 2 epochs") == 1  # printed by rank 0 alone
    assert "2 processes train together, 8 images per optimizer step" in finished.stderr
    with (out / "metrics.csv").open(newline="", encoding="utf-8") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1", "2"]
    assert (out / "config.json").exists()
    assert load_checkpoint(out / "last.pt").state.epoch == 2
