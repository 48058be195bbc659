"""Fine-tuning: `init_from` starts a run from the weights of an earlier model."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch

from tests.trainer.factories import binary_demo_dataset, tiny_config
from trainer.checkpoint import load_checkpoint
from trainer.loop import TrainingError, fit
from trainer.models.registry import build_model
from trainer.reporting import NullReporter
from trainer.warm_start import WarmStartError, apply_warm_start, read_weights_source


class EpochMetrics(NullReporter):
    def __init__(self) -> None:
        self.epochs: dict[int, dict[str, float]] = {}

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.epochs[epoch] = dict(metrics)


@pytest.fixture(scope="module")
def two_class_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """best.pt of a tiny unet trained for one epoch on 0/255 binary masks."""
    root = tmp_path_factory.mktemp("binary")
    binary = binary_demo_dataset(root, seed=1, count=12, size=32)
    fit(tiny_config(binary, epochs=1), out_dir=root / "run")
    return root / "run" / "best.pt"


def test_every_tensor_but_the_head_moves_into_a_four_class_model(
    two_class_checkpoint: Path,
) -> None:
    source = load_checkpoint(two_class_checkpoint)
    model = build_model(tiny_config(Path("d")), in_channels=3, out_channels=4)

    result = apply_warm_start(model, read_weights_source(two_class_checkpoint))

    assert result.reshaped == ("head.weight (2, 8, 1, 1) -> (4, 8, 1, 1)", "head.bias (2,) -> (4,)")
    assert result.missing == ()
    assert result.unused == ()
    assert set(result.loaded) == set(source.model_state) - {"head.weight", "head.bias"}
    state = model.state_dict()
    for name in result.loaded:
        torch.testing.assert_close(state[name], source.model_state[name], rtol=0, atol=0)


def test_fine_tuning_a_two_class_model_on_four_classes(
    two_class_checkpoint: Path,
    demo_dataset: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reporter = EpochMetrics()
    cfg = tiny_config(demo_dataset, epochs=2, init_from=str(two_class_checkpoint))
    with caplog.at_level(logging.INFO, logger="trainer.warm_start"):
        result = fit(cfg, reporter, out_dir=tmp_path)

    assert result.status == "completed" and result.epochs_done == 2
    assert "loaded 84 of the model's 86 tensors" in caplog.text
    assert "head.weight (2, 8, 1, 1) -> (4, 8, 1, 1)" in caplog.text
    assert all(math.isfinite(value) for value in reporter.epochs[2].values())
    # Weights only: the epoch count and the optimizer start afresh.
    checkpoint = load_checkpoint(tmp_path / "last.pt")
    assert checkpoint.state.epoch == 2
    assert checkpoint.class_names == ("background", "circle", "square", "triangle")
    assert checkpoint.config.init_from == str(two_class_checkpoint)


def test_a_plain_state_dict_saved_through_data_parallel_loads(
    two_class_checkpoint: Path, tmp_path: Path
) -> None:
    state = load_checkpoint(two_class_checkpoint).model_state
    path = tmp_path / "weights.pth"
    torch.save({f"module.{name}": tensor for name, tensor in state.items()}, path)
    model = build_model(tiny_config(Path("d")), in_channels=3, out_channels=2)

    result = apply_warm_start(model, read_weights_source(path))

    assert result.reshaped == () and result.missing == ()
    assert len(result.loaded) == len(state)


def test_a_model_of_another_width_is_refused_with_the_reason(
    two_class_checkpoint: Path, demo_dataset: Path, tmp_path: Path
) -> None:
    cfg = tiny_config(demo_dataset, base_channels=16, init_from=str(two_class_checkpoint))
    with pytest.raises(TrainingError) as caught:
        fit(cfg, out_dir=tmp_path)
    reason = caught.value.reason
    assert "shares no tensor with this UNet model" in reason
    assert "inc.0.weight (8, 3, 3, 3) -> (16, 3, 3, 3)" in reason
    assert "a segtrack checkpoint (unet, base_channels 8, depth 3" in reason
    assert "same model, base_channels, depth and upsampling" in reason
    assert not (tmp_path / "last.pt").exists()


def test_a_file_of_another_network_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "resnet.pth"
    torch.save(
        {"conv1.weight": torch.zeros(64, 3, 7, 7), "bn1.num_batches_tracked": torch.tensor(1)}, path
    )
    model = build_model(tiny_config(Path("d")), in_channels=3, out_channels=2)
    with pytest.raises(
        WarmStartError, match=r"no tensor name matches \(the file has conv1\.weight"
    ):
        apply_warm_start(model, read_weights_source(path))


def test_missing_and_unreadable_files_fail_before_the_data_is_read(tmp_path: Path) -> None:
    # The dataset does not exist either: the weights file is checked first.
    missing = tiny_config(tmp_path / "no-data", init_from=str(tmp_path / "nowhere.pt"))
    with pytest.raises(TrainingError, match=r"init_from file .*nowhere\.pt does not exist"):
        fit(missing, out_dir=tmp_path / "run")
    notes = tmp_path / "notes.pt"
    notes.write_text("not weights", encoding="utf-8")
    unreadable = tiny_config(tmp_path / "no-data", init_from=str(notes))
    with pytest.raises(TrainingError, match=r"notes\.pt is not a PyTorch state dict file"):
        fit(unreadable, out_dir=tmp_path / "run")


def test_resume_wins_over_init_from(
    demo_dataset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fit(tiny_config(demo_dataset, epochs=1), out_dir=tmp_path)
    cfg = tiny_config(demo_dataset, epochs=2, init_from=str(tmp_path / "gone.pt"))
    with caplog.at_level(logging.INFO, logger="trainer.loop"):
        result = fit(cfg, out_dir=tmp_path, resume_from=tmp_path / "last.pt")
    assert result.status == "completed" and result.epochs_done == 2
    assert "resuming, so init_from" in caplog.text


def test_cli_init_from_flag(two_class_checkpoint: Path, tmp_path: Path) -> None:
    from segtrack.cli import main

    assert main(["demo-data", str(tmp_path / "data"), "--count", "8", "--size", "32"]) == 0
    config = tmp_path / "config.yaml"
    config.write_text(
        f"dataset: {tmp_path / 'data'}\nbase_channels: 8\ndepth: 3\nepochs: 1\n"
        "num_workers: 0\naugment: none\n",
        encoding="utf-8",
    )
    run = tmp_path / "run"
    flags = ["--init-from", str(two_class_checkpoint), "--out", str(run)]
    assert main(["train", str(config), *flags]) == 0
    saved = json.loads((run / "config.json").read_text(encoding="utf-8"))
    assert saved["init_from"] == str(two_class_checkpoint)
    assert main(["train", str(config), "--set", "init_from=/nowhere.pt", "--out", str(run)]) == 2
