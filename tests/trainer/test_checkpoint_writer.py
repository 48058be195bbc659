"""Checkpoints written in the background: snapshots are copies, files are whole when reported."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from tests.trainer.factories import tiny_config
from trainer.checkpoint import TrainingState, checkpoint_payload, load_checkpoint
from trainer.checkpoint_writer import CheckpointFile, CheckpointWriteError, CheckpointWriter
from trainer.reporting import CheckpointKind, NullReporter


class _Training:
    """A model and optimizer that `step` changes in place, as the training loop does."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.1)
        self.step()

    def step(self) -> None:
        self.model(torch.randn(2, 3, 8, 8)).square().mean().backward()
        self.optimizer.step()
        self.optimizer.zero_grad()

    def payload(self, epoch: int) -> dict[str, Any]:
        return checkpoint_payload(
            model=self.model,
            config=tiny_config(Path("data")),
            class_names=("background", "thing"),
            mask_encoding={"values": [0, 255]},
            in_channels=3,
            out_channels=2,
            state=TrainingState(epoch, None, None, 0, epoch),
            optimizer=self.optimizer,
        )


class _Seen(NullReporter):
    """Records each checkpoint as the reporter sees it: thread, file size, epoch in the file."""

    def __init__(self) -> None:
        self.seen: list[tuple[CheckpointKind, int, int, str, int]] = []

    def on_checkpoint(
        self, kind: CheckpointKind, path: Path, epoch: int, metric: float | None
    ) -> None:
        in_file = load_checkpoint(path).state.epoch
        size = path.stat().st_size
        self.seen.append((kind, epoch, in_file, threading.current_thread().name, size))


def _files(folder: Path, epoch: int) -> list[CheckpointFile]:
    return [
        CheckpointFile("best", folder / "best.pt", epoch, 0.5),
        CheckpointFile("last", folder / "last.pt", epoch, 0.5),
    ]


def test_a_snapshot_is_a_copy_that_later_steps_leave_alone() -> None:
    training = _Training()
    payload = training.payload(epoch=1)
    weight = payload["model"]["0.weight"].clone()
    moment = payload["optimizer"]["state"][0]["exp_avg"].clone()
    training.step()
    assert not torch.equal(training.model.state_dict()["0.weight"], weight)
    assert torch.equal(payload["model"]["0.weight"], weight)
    assert torch.equal(payload["optimizer"]["state"][0]["exp_avg"], moment)
    live = {tensor.untyped_storage().data_ptr() for tensor in training.model.state_dict().values()}
    copied = {tensor.untyped_storage().data_ptr() for tensor in payload["model"].values()}
    assert not live & copied


def test_files_are_reported_whole_in_order_on_the_calling_thread(tmp_path: Path) -> None:
    training, reporter = _Training(), _Seen()
    with CheckpointWriter(reporter) as writer:
        writer.save(_files(tmp_path, 1), lambda: training.payload(1))
        training.step()
        writer.save(_files(tmp_path, 2)[1:], lambda: training.payload(2))
    caller = threading.current_thread().name
    assert [
        (kind, epoch, in_file, thread) for kind, epoch, in_file, thread, _ in reporter.seen
    ] == [
        ("best", 1, 1, caller),
        ("last", 1, 1, caller),
        ("last", 2, 2, caller),
    ]
    assert all(size > 0 for *_, size in reporter.seen)
    assert load_checkpoint(tmp_path / "best.pt").state.epoch == 1
    assert load_checkpoint(tmp_path / "last.pt").state.epoch == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best.pt", "last.pt"]


def test_the_next_snapshot_of_a_file_waits_for_its_previous_write(tmp_path: Path) -> None:
    training = _Training()
    in_file_at_snapshot: list[int] = []

    def second_snapshot() -> Mapping[str, Any]:
        in_file_at_snapshot.append(load_checkpoint(tmp_path / "last.pt").state.epoch)
        return training.payload(2)

    with CheckpointWriter(NullReporter()) as writer:
        writer.save(_files(tmp_path, 1)[1:], lambda: training.payload(1))
        writer.save(_files(tmp_path, 2)[1:], second_snapshot)
    assert in_file_at_snapshot == [1]


def test_a_failed_write_raises_naming_the_file_and_keeps_the_previous_one(tmp_path: Path) -> None:
    training, reporter = _Training(), _Seen()
    with CheckpointWriter(reporter) as writer:
        writer.save(_files(tmp_path, 1), lambda: training.payload(1))
    # A folder where the temporary file must go makes the write fail as a full disk would.
    (tmp_path / "last.pt.tmp").mkdir()
    with pytest.raises(CheckpointWriteError) as error, CheckpointWriter(reporter) as writer:
        writer.save(_files(tmp_path, 2), lambda: training.payload(2))
    assert str(tmp_path / "last.pt") in str(error.value)
    assert error.value.path == tmp_path / "last.pt"
    assert [(kind, epoch) for kind, epoch, *_ in reporter.seen] == [
        ("best", 1),
        ("last", 1),
        ("best", 2),
    ]
    assert load_checkpoint(tmp_path / "last.pt").state.epoch == 1


def test_a_failed_write_is_raised_by_the_next_save(tmp_path: Path) -> None:
    training = _Training()
    (tmp_path / "last.pt.tmp").mkdir()
    with CheckpointWriter(NullReporter()) as writer:
        writer.save(_files(tmp_path, 1)[1:], lambda: training.payload(1))
        with pytest.raises(CheckpointWriteError, match=r"last\.pt"):
            writer.save(_files(tmp_path, 2)[1:], lambda: training.payload(2))


def test_an_error_on_its_way_out_wins_and_the_failed_write_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    training = _Training()
    (tmp_path / "best.pt.tmp").mkdir()
    with (
        caplog.at_level(logging.ERROR, logger="trainer.checkpoint_writer"),
        pytest.raises(KeyError, match="training failed"),
        CheckpointWriter(NullReporter()) as writer,
    ):
        writer.save(_files(tmp_path, 1), lambda: training.payload(1))
        raise KeyError("training failed")
    assert "best.pt" in caplog.text
    assert not (tmp_path / "best.pt").exists()
