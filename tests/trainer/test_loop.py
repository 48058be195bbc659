from __future__ import annotations

import csv
import math
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.trainer.factories import binary_demo_dataset, tiny_config
from trainer.checkpoint import load_checkpoint
from trainer.data.errors import DatasetLayoutError
from trainer.data.report import DatasetError
from trainer.loop import BATCHNORM_REFRESH_BELOW_STEPS, TrainingError, fit
from trainer.reporting import (
    CheckpointKind,
    CsvReporter,
    EpochProgress,
    MultiReporter,
    NullReporter,
    PreviewSample,
    RunInfo,
)


class Recorder(NullReporter):
    """Keeps everything fit reports; can ask to stop after a number of progress reports."""

    def __init__(self, stop_after_progress: int | None = None) -> None:
        self.info: RunInfo | None = None
        self.epochs: dict[int, dict[str, float]] = {}
        self.previews: dict[int, list[PreviewSample]] = {}
        self.checkpoints: list[tuple[CheckpointKind, int]] = []
        self.progress_reports = 0
        self.stop_after_progress = stop_after_progress

    def on_start(self, info: RunInfo) -> None:
        self.info = info

    def on_train_progress(self, progress: EpochProgress) -> None:
        self.progress_reports += 1

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.epochs[epoch] = dict(metrics)

    def on_preview(self, epoch: int, samples: Sequence[PreviewSample]) -> None:
        self.previews[epoch] = list(samples)

    def on_checkpoint(
        self, kind: CheckpointKind, path: Path, epoch: int, metric: float | None
    ) -> None:
        self.checkpoints.append((kind, epoch))

    def should_stop(self) -> bool:
        return (
            self.stop_after_progress is not None
            and self.progress_reports >= self.stop_after_progress
        )


class StopAtEpoch(NullReporter):
    """Asks to stop once `epoch` epochs have ended, like a user cancelling between epochs."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.ended = 0

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.ended = epoch

    def should_stop(self) -> bool:
        return self.ended >= self.epoch


class StopAfterEpoch(NullReporter):
    """Asks (as a sweep's pruner does) to end the training once `epoch` is reported."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.reported: list[int] = []

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.reported.append(epoch)

    def stop_after_epoch(self, epoch: int) -> bool:
        return epoch >= self.epoch


def test_stop_after_epoch_ends_the_training_with_that_epoch_stored(
    demo_dataset: Path, tmp_path: Path
) -> None:
    reporter = StopAfterEpoch(1)
    result = fit(tiny_config(demo_dataset, epochs=3), reporter, out_dir=tmp_path)
    assert result.status == "stopped_after_epoch"
    assert result.epochs_done == 1 and reporter.reported == [1]
    assert load_checkpoint(tmp_path / "last.pt").state.epoch == 1


def test_a_tiny_unet_learns_the_demo_data(demo_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_config(demo_dataset, epochs=12, learning_rate=0.01, augment="light")
    recorder = Recorder()
    result = fit(cfg, recorder, out_dir=tmp_path)

    assert result.status == "completed"
    assert result.epochs_done == 12
    losses = [recorder.epochs[e]["train/loss"] for e in sorted(recorder.epochs)]
    assert losses[-1] < losses[0] / 2
    assert recorder.epochs[12]["val/iou"] >= 0.8
    assert result.best_metric is not None and result.best_metric >= 0.8
    expected_keys = {"lr", "train/loss", "train/grad_norm", "val/loss", "val/iou", "val/dice"}
    assert expected_keys | {"val/miou", "val/pixel_acc", "val/iou/circle"} <= set(
        recorder.epochs[1]
    )
    assert all(recorder.epochs[e]["train/grad_norm"] > 0 for e in recorder.epochs)
    assert recorder.info is not None
    assert recorder.info.class_names == ("background", "circle", "square", "triangle")
    assert (tmp_path / "best.pt").exists() and (tmp_path / "last.pt").exists()


def test_validation_runs_every_epoch_on_a_dozen_images(tmp_path: Path) -> None:
    from trainer.data.demo import make_demo_dataset

    dataset = make_demo_dataset(tmp_path / "small", count=12, size=48, seed=3).root
    recorder = Recorder()
    fit(tiny_config(dataset, epochs=3, batch_size=8), recorder, out_dir=tmp_path / "run")
    assert sorted(recorder.epochs) == [1, 2, 3]
    assert all("val/iou" in metrics for metrics in recorder.epochs.values())


def test_previews_are_the_same_images_every_epoch(demo_dataset: Path, tmp_path: Path) -> None:
    recorder = Recorder()
    fit(tiny_config(demo_dataset, preview_count=3), recorder, out_dir=tmp_path)
    first, second = recorder.previews[1], recorder.previews[2]
    assert [s.name for s in first] == [s.name for s in second]
    assert len(first) == 3
    sample = first[0]
    assert sample.image.dtype == np.uint8 and sample.image.shape[:2] == sample.truth.shape
    assert sample.prediction.shape == sample.truth.shape
    assert int(sample.prediction.max()) < 4


def test_checkpoints_describe_themselves(demo_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_config(demo_dataset)
    fit(cfg, out_dir=tmp_path)
    checkpoint = load_checkpoint(tmp_path / "last.pt")
    assert checkpoint.config == cfg
    assert checkpoint.state.epoch == 2
    assert checkpoint.class_names == ("background", "circle", "square", "triangle")
    assert checkpoint.mask_encoding["values"] == [0, 1, 2, 3]
    assert checkpoint.optimizer_state is not None and checkpoint.schedule_state is not None


class CheckpointReader(NullReporter):
    """Opens each checkpoint as it is reported, as a worker stats it: the file must be whole."""

    def __init__(self) -> None:
        self.read: list[tuple[CheckpointKind, int, int, str]] = []

    def on_checkpoint(
        self, kind: CheckpointKind, path: Path, epoch: int, metric: float | None
    ) -> None:
        in_file = load_checkpoint(path).state.epoch
        self.read.append((kind, epoch, in_file, threading.current_thread().name))


def test_each_checkpoint_is_reported_once_written_whole(demo_dataset: Path, tmp_path: Path) -> None:
    reader = CheckpointReader()
    fit(tiny_config(demo_dataset, epochs=2), reader, out_dir=tmp_path)
    caller = threading.current_thread().name
    # Each file holds the epoch it is reported for; best comes before last within an epoch.
    assert all(in_file == epoch and thread == caller for _, epoch, in_file, thread in reader.read)
    assert [(kind, epoch) for kind, epoch, *_ in reader.read if kind == "last"] == [
        ("last", 1),
        ("last", 2),
    ]
    assert reader.read[:2] == [("best", 1, 1, caller), ("last", 1, 1, caller)]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best.pt", "last.pt"]


def test_a_checkpoint_that_cannot_be_written_fails_the_run(
    demo_dataset: Path, tmp_path: Path
) -> None:
    # A folder in the way of the temporary file fails the write as a full disk would.
    (tmp_path / "last.pt.tmp").mkdir(parents=True)
    recorder = Recorder()
    with pytest.raises(TrainingError) as error:
        fit(tiny_config(demo_dataset, epochs=2), recorder, out_dir=tmp_path)
    assert f"cannot write checkpoint {tmp_path / 'last.pt'}" in error.value.reason
    assert ("last", 1) not in recorder.checkpoints
    assert not (tmp_path / "last.pt").exists()


def test_batchnorm_statistics_are_refreshed_only_early_in_a_run(tmp_path: Path) -> None:
    from trainer.data.demo import make_demo_dataset

    dataset = make_demo_dataset(tmp_path / "data", count=16, size=32, seed=2).root
    cfg = tiny_config(dataset, epochs=5, batch_size=1, depth=2, preview_count=0)
    recorder = Recorder()
    fit(cfg, recorder, out_dir=tmp_path / "run")
    assert recorder.info is not None
    steps = recorder.info.steps_per_epoch
    refreshed = [epoch for epoch in range(1, 6) if epoch * steps < BATCHNORM_REFRESH_BELOW_STEPS]
    assert 0 < len(refreshed) < 5
    # A refresh restarts the counts at one pass over the training set; later epochs add theirs.
    state = load_checkpoint(tmp_path / "run" / "last.pt").model_state
    counts = {int(value) for key, value in state.items() if key.endswith("num_batches_tracked")}
    assert counts == {steps * (1 + 5 - refreshed[-1])}


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_resume_continues_the_same_curve(demo_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_config(demo_dataset, epochs=3, augment="light", deterministic=True)
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    fit(cfg, CsvReporter(straight / "metrics.csv"), out_dir=straight)

    first = fit(
        cfg,
        MultiReporter([CsvReporter(interrupted / "metrics.csv"), StopAtEpoch(2)]),
        out_dir=interrupted,
    )
    assert first.status == "stopped" and first.epochs_done == 2
    fit(
        cfg,
        CsvReporter(interrupted / "metrics.csv"),
        out_dir=interrupted,
        resume_from=interrupted / "last.pt",
    )

    expected, resumed = _read_csv(straight / "metrics.csv"), _read_csv(interrupted / "metrics.csv")
    assert [row["epoch"] for row in resumed] == ["1", "2", "3"]
    for want, got in zip(expected, resumed, strict=True):
        for key in ("lr", "train/loss", "val/loss", "val/iou"):
            assert float(got[key]) == pytest.approx(float(want[key]), rel=1e-4, abs=1e-5), key


@pytest.mark.parametrize("grad_clip", [1e-6, None])
def test_grad_norm_is_the_mean_norm_before_clipping(
    demo_dataset: Path, tmp_path: Path, grad_clip: float | None
) -> None:
    cfg = tiny_config(demo_dataset, epochs=1, grad_clip=grad_clip, grad_accum_steps=2)
    fit(cfg, CsvReporter(tmp_path / "metrics.csv"), out_dir=tmp_path)
    (row,) = _read_csv(tmp_path / "metrics.csv")
    # Clipping to 1e-6 would leave norms of 1e-6; the metric is measured before it.
    assert 1e-3 < float(row["train/grad_norm"]) < 1e3


def test_resume_refuses_a_different_architecture(demo_dataset: Path, tmp_path: Path) -> None:
    fit(tiny_config(demo_dataset, epochs=1), out_dir=tmp_path)
    with pytest.raises(TrainingError, match="different architecture"):
        fit(
            tiny_config(demo_dataset, epochs=3, base_channels=16),
            out_dir=tmp_path,
            resume_from=tmp_path / "last.pt",
        )
    with pytest.raises(TrainingError, match="raise epochs"):
        fit(tiny_config(demo_dataset, epochs=1), out_dir=tmp_path, resume_from=tmp_path / "last.pt")


def test_cancel_mid_epoch_stops_and_keeps_earlier_checkpoints(
    demo_dataset: Path, tmp_path: Path
) -> None:
    cfg = tiny_config(demo_dataset, epochs=3, batch_size=4)
    recorder = Recorder(stop_after_progress=3)  # reports at batches 8 and 10 of each epoch
    result = fit(cfg, recorder, out_dir=tmp_path)
    assert result.status == "stopped"
    assert result.epochs_done == 1
    assert load_checkpoint(tmp_path / "last.pt").state.epoch == 1


def test_early_stopping_after_patience(demo_dataset: Path, tmp_path: Path) -> None:
    # At a negligible rate the monitored value only wobbles in its last digits; min_delta says
    # such wobbles are no improvement.
    cfg = tiny_config(
        demo_dataset,
        epochs=10,
        learning_rate=1e-20,
        scheduler="constant",
        early_stopping_patience=2,
        early_stopping_min_delta=0.05,
    )
    recorder = Recorder()
    result = fit(cfg, recorder, out_dir=tmp_path)
    assert result.status == "early_stopped"
    assert result.epochs_done == 3


def test_nan_loss_stops_the_run_with_the_reason(tmp_path: Path) -> None:
    images, masks = tmp_path / "data" / "images", tmp_path / "data" / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    rng = np.random.default_rng(0)
    for index in range(6):
        pixels = rng.random((32, 32, 3), dtype=np.float32)
        pixels[0, 0, 0] = np.nan
        np.save(images / f"{index}.npy", pixels)
        mask = (rng.random((32, 32)) > 0.5).astype(np.uint8) * 255
        Image.fromarray(mask).save(masks / f"{index}.png")
    with pytest.raises(TrainingError, match="training loss became nan"):
        fit(tiny_config(tmp_path / "data", depth=2), out_dir=tmp_path / "run")


def test_a_broken_dataset_stops_before_epoch_one(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    recorder = Recorder()
    with pytest.raises(DatasetLayoutError, match="no image has a matching mask"):
        fit(tiny_config(tmp_path), recorder, out_dir=tmp_path / "run")
    (tmp_path / "images" / "a.png").write_bytes(b"not a png")
    (tmp_path / "masks" / "a.png").write_bytes(b"not a png")
    (tmp_path / "images" / "b.png").write_bytes(b"not a png")
    (tmp_path / "masks" / "b.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"a\.png"):
        fit(tiny_config(tmp_path), recorder, out_dir=tmp_path / "run")
    assert recorder.info is None


def test_unknown_monitor_names_the_choices(demo_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=r"circle"):
        fit(tiny_config(demo_dataset, monitor="val/iou/horse"), out_dir=tmp_path)


@pytest.mark.parametrize(
    "overrides",
    [
        {"model": "unet++", "deep_supervision": True, "depth": 2},
        {"model": "vgg16-unet", "image_size": 32, "base_channels": 8},
        {"loss": "focal", "optimizer": "sgd", "scheduler": "multistep", "milestones": [1]},
        {"loss": "lovasz", "optimizer": "rmsprop", "scheduler": "poly", "tta": True},
        {"loss": "dice", "scheduler": "plateau", "grad_accum_steps": 2, "monitor": "val/loss"},
        {"channels_last": True, "scheduler": "step", "log_every_steps": 1, "warmup_epochs": 1},
    ],
)
def test_training_options_run_end_to_end(
    small_demo_dataset: Path, tmp_path: Path, overrides: dict[str, object]
) -> None:
    recorder = Recorder()
    cfg = tiny_config(small_demo_dataset, epochs=2, **overrides)
    result = fit(cfg, recorder, out_dir=tmp_path)
    assert result.status == "completed"
    assert all(math.isfinite(value) for value in recorder.epochs[2].values())


def test_binary_masks_with_a_sigmoid_head(tmp_path: Path) -> None:
    binary = binary_demo_dataset(tmp_path, seed=1)
    recorder = Recorder()
    fit(tiny_config(binary, loss="bce+dice"), recorder, out_dir=tmp_path / "run")
    assert recorder.info is not None
    assert recorder.info.class_names == ("background", "foreground")
    assert "val/iou/foreground" in recorder.epochs[2]
    checkpoint = load_checkpoint(tmp_path / "run" / "best.pt")
    assert checkpoint.out_channels == 1


def test_amp_on_cpu_warns_and_trains_in_float32(demo_dataset: Path, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("checks the fallback on machines without CUDA")
    recorder = Recorder()
    fit(tiny_config(demo_dataset, epochs=1, amp="fp16"), recorder, out_dir=tmp_path)
    assert recorder.info is not None
    assert any("needs a CUDA device" in warning for warning in recorder.info.warnings)
    assert "float32" in recorder.info.device


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_and_compile_on_cuda(demo_dataset: Path, tmp_path: Path, amp: str) -> None:
    recorder = Recorder()
    cfg = tiny_config(
        demo_dataset, epochs=3, amp=amp, compile=True, channels_last=True, device="cuda"
    )
    result = fit(cfg, recorder, out_dir=tmp_path)
    assert result.status == "completed"
    assert recorder.info is not None and amp in recorder.info.device
    assert recorder.epochs[3]["train/loss"] < recorder.epochs[1]["train/loss"]


class _OutOfMemory(torch.nn.Module):
    """Stands in for a model too big for the GPU: its forward raises what CUDA raises."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_out_of_memory_stops_with_advice(
    demo_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("trainer.loop.build_model", lambda *args, **kwargs: _OutOfMemory())
    with pytest.raises(TrainingError) as error:
        fit(tiny_config(demo_dataset, batch_size=8), out_dir=tmp_path)
    assert "ran out of memory" in error.value.reason
    assert "lower batch_size" in error.value.reason and "amp (bf16)" in error.value.reason
