"""The model card (trainer.model_card): parameters, FLOPs at the training size, forward-pass
latency and images/s, and the peak training memory every epoch reports."""

from __future__ import annotations

import contextlib
import math
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from tests.trainer.factories import tiny_config
from trainer.encoder_freeze import set_encoder_frozen
from trainer.loop import fit
from trainer.model_card import (
    PEAK_MEMORY_KEY,
    PeakMemory,
    count_flops,
    measure_model_card,
    time_forward,
    training_size,
)
from trainer.models.registry import build_model_by_name, encoder_of
from trainer.reporting import NullReporter, RunInfo

CPU = torch.device("cpu")


def _measure(
    model: nn.Module, *, size: tuple[int, int] = (32, 32), batch_size: int = 4
) -> dict[str, Any]:
    return measure_model_card(
        model,
        in_channels=3,
        image_size=size,
        batch_size=batch_size,
        device=CPU,
        autocast=contextlib.nullcontext,
        precision="float32",
    ).to_dict()


def _tiny_unet() -> nn.Module:
    torch.manual_seed(0)
    return build_model_by_name("unet", in_channels=3, out_channels=4, base_channels=8, depth=2)


def _tiny_resnet_unet() -> nn.Module:
    torch.manual_seed(0)
    return build_model_by_name(
        "resnet18-unet", in_channels=3, out_channels=2, base_channels=8, encoder_width=8
    )


def test_parameter_counts_are_every_parameter_tensors_elements() -> None:
    model = _tiny_unet()
    card = _measure(model)
    total = sum(p.numel() for p in model.parameters())
    assert card["parameters"] == total > 0
    assert card["trainable_parameters"] == total


def test_trainable_parameters_leave_a_frozen_encoder_out() -> None:
    model = _tiny_resnet_unet()
    encoder = encoder_of(model)
    assert encoder is not None
    assert set_encoder_frozen(model, True)
    card = _measure(model)
    total = sum(p.numel() for p in model.parameters())
    frozen = sum(p.numel() for p in encoder.parameters())
    assert 0 < frozen < total
    assert card["parameters"] == total
    assert card["trainable_parameters"] == total - frozen


def test_flops_of_a_single_convolution_are_two_per_multiply_add() -> None:
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
    # 8 x 16 x 20 output elements, each 3 x 3 x 3 multiply-adds; the bias adds nothing.
    assert count_flops(conv, torch.zeros(1, 3, 16, 20)) == 2 * (8 * 16 * 20) * (3 * 3 * 3)
    card = _measure(conv, size=(16, 20))
    assert card["flops"] == 2 * (8 * 16 * 20) * (3 * 3 * 3) == 138_240
    assert card["image_size"] == [16, 20] and card["in_channels"] == 3


def test_flops_of_a_grouped_convolution_and_a_linear_layer() -> None:
    grouped = nn.Conv2d(4, 8, kernel_size=3, groups=2, bias=False)
    # 10 x 10 in, no padding: 8 x 8 x 8 outputs, each over 4 / 2 channels x 3 x 3.
    assert count_flops(grouped, torch.zeros(1, 4, 10, 10)) == 2 * (8 * 8 * 8) * (2 * 3 * 3)
    head = nn.Sequential(nn.Flatten(), nn.ReLU(), nn.Linear(12, 5))
    assert count_flops(head, torch.zeros(1, 3, 2, 2)) == 2 * 12 * 5


def test_flops_are_of_one_image_whatever_the_batch_size() -> None:
    model = _tiny_unet()
    single = _measure(model, batch_size=1)["flops"]
    assert single is not None and single > 0
    assert _measure(model, batch_size=4)["flops"] == single
    assert count_flops(model, torch.zeros(2, 3, 32, 32)) == 2 * single


def test_latency_and_images_per_second_are_positive_and_agree() -> None:
    model = _tiny_unet()
    model.train()
    card = _measure(model, batch_size=4)
    assert model.training, "the model is left in the mode it came in"
    assert card["latency_ms_batch_1"] > 0 and card["latency_ms_batch"] > 0
    assert card["images_per_s"] == pytest.approx(4 / (card["latency_ms_batch"] / 1000))
    assert card["batch_size"] == 4
    assert card["device"] == "cpu" and card["precision"] == "float32"


def test_batch_size_one_times_once_and_reports_the_same_latency() -> None:
    card = _measure(_tiny_unet(), batch_size=1)
    assert card["latency_ms_batch"] == card["latency_ms_batch_1"] > 0
    assert card["images_per_s"] == pytest.approx(1000 / card["latency_ms_batch_1"])


def test_timing_stops_at_its_budget_but_times_at_least_one_pass() -> None:
    calls = 0

    class Counting(nn.Module):
        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            nonlocal calls
            calls += 1
            return inputs * 2

    ms = time_forward(
        Counting(), torch.ones(1, 1, 4, 4), device=CPU, autocast=contextlib.nullcontext,
        budget_s=0.0, warmup=2, max_passes=20,
    )  # fmt: skip
    assert ms >= 0 and math.isfinite(ms)
    assert calls == 2, "one warm-up pass, then one timed pass: the budget is spent"


def test_training_size_is_the_configured_one_else_the_first_image() -> None:
    images = [(torch.zeros(3, 24, 40), torch.zeros(24, 40))]
    assert training_size((64, 48), images) == (64, 48)
    assert training_size(None, images) == (24, 40)
    assert training_size(None, []) is None


def test_peak_memory_on_the_cpu_grows_with_what_training_holds() -> None:
    # A fresh process: the peak resident size is a high-water mark, already high in a long suite.
    script = """
import pytest, torch
from trainer.model_card import PEAK_MEMORY_KEY, PeakMemory
memory = PeakMemory(torch.device("cpu"))
memory.start()
held = torch.ones(32 * 2**20 // 4)  # 32 MiB of float32, every page written
peak = memory.peak_mib()
assert peak is not None and peak >= 24, peak
assert memory.metrics() == {PEAK_MEMORY_KEY: pytest.approx(memory.peak_mib())}
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


class _Recorder(NullReporter):
    def __init__(self) -> None:
        self.info: RunInfo | None = None
        self.epochs: dict[int, dict[str, float]] = {}

    def on_start(self, info: RunInfo) -> None:
        self.info = info

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.epochs[epoch] = dict(metrics)


def test_a_tiny_training_run_reports_its_card_and_peak_memory(
    demo_dataset: Path, tmp_path: Path
) -> None:
    recorder = _Recorder()
    fit(tiny_config(demo_dataset, epochs=2, batch_size=8), recorder, out_dir=tmp_path)
    info = recorder.info
    assert info is not None
    card = dict(info.model_card)
    assert card["parameters"] == info.parameters == card["trainable_parameters"]
    assert card["image_size"] == [64, 64] and card["in_channels"] == 3
    assert card["batch_size"] == 8
    assert card["flops"] > 0
    assert card["latency_ms_batch_1"] > 0 and card["latency_ms_batch"] > 0
    assert card["images_per_s"] == pytest.approx(8 / (card["latency_ms_batch"] / 1000))
    assert card["device"] == "cpu" and card["precision"] == "float32"
    peaks = [recorder.epochs[epoch][PEAK_MEMORY_KEY] for epoch in (1, 2)]
    assert all(peak >= 0 for peak in peaks)
    assert peaks[1] >= peaks[0], "a peak since the training started never falls"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_card_names_the_gpu_and_the_peak_counts_the_allocator() -> None:
    device = torch.device("cuda", 0)
    memory = PeakMemory(device)
    memory.start()
    model = _tiny_unet().to(device)
    card = measure_model_card(
        model,
        in_channels=3,
        image_size=(64, 64),
        batch_size=4,
        device=device,
        autocast=lambda: torch.autocast("cuda", dtype=torch.bfloat16),
        precision="bf16",
    ).to_dict()
    assert card["device"] == f"cuda:0 ({torch.cuda.get_device_name(0)})"
    assert card["precision"] == "bf16"
    assert card["latency_ms_batch_1"] > 0 and card["latency_ms_batch"] > 0
    held = torch.ones(64 * 2**20 // 4, device=device)  # 64 MiB of float32
    peak = memory.peak_mib()
    assert peak is not None and peak >= 64
    del held


def test_a_run_that_starts_with_a_frozen_encoder_counts_it_out_of_the_trainable(
    demo_dataset: Path, tmp_path: Path
) -> None:
    recorder = _Recorder()
    cfg = tiny_config(
        demo_dataset, model="resnet18-unet", epochs=1, freeze_encoder_epochs=1, image_size=[32, 32]
    )
    fit(cfg, recorder, out_dir=tmp_path)
    assert recorder.info is not None
    card = dict(recorder.info.model_card)
    assert 0 < card["trainable_parameters"] < card["parameters"] == recorder.info.parameters
