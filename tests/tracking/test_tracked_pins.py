"""Pins reach a run trained elsewhere: an image pinned on the server after the tracked run's
first epoch comes back in its heartbeat answers, and the trainer previews it (badged "pinned")
from the next epoch on; unpinned, it is left out again."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from segtrack import track
from segtrack.tracking.reporter import HttpReporter
from segtrack.tracking.run import TrackedRun
from tests.server.helpers import LiveServer
from tests.tracking.helpers import rest, wait_for
from trainer.config import TrainConfig
from trainer.data.demo import make_demo_dataset
from trainer.loop import fit
from trainer.reporting import PreviewSample


class PinningReporter(HttpReporter):
    """Pins an image on the server at the end of epoch 1 and unpins it at the end of epoch 2,
    each time waiting until the run's heartbeat answer has told the run."""

    def __init__(self, run: TrackedRun, server: LiveServer) -> None:
        super().__init__(run)
        self.server = server
        self.pinned: int | None = None

    def _change(self, method: str, image: int) -> None:
        path = f"/api/v1/runs/{self.run.id}/pinned-images/{image}"
        headers = {"Authorization": f"Bearer {self.server.token}"}
        answer = httpx.request(method, f"{self.server.url}{path}", headers=headers, timeout=10)
        assert answer.is_success, answer.text

    def on_preview(self, epoch: int, samples: Sequence[PreviewSample]) -> None:
        super().on_preview(epoch, samples)
        if epoch == 1:
            # The server takes pins once the run's validation set is stored.
            assert self.run.flush(timeout=20)
            size = rest(
                self.server.url, self.server.token, f"/api/v1/runs/{self.run.id}/validation"
            )
            shown = {sample.index for sample in samples}
            self.pinned = next(index for index in range(size["images"]) if index not in shown)
            self._change("PUT", self.pinned)
            wait_for(lambda: self.run.pinned_images() == (self.pinned,), "the pin in a heartbeat")
        elif epoch == 2 and self.pinned is not None:
            self._change("DELETE", self.pinned)
            wait_for(lambda: self.run.pinned_images() == (), "the unpin in a heartbeat")


def _previewed(server: LiveServer, run_id: int, epoch: int) -> dict[int, list[str]]:
    body: dict[str, Any] = rest(
        server.url, server.token, f"/api/v1/runs/{run_id}/previews?epoch={epoch}"
    )
    return {sample["sample_index"]: sample["reasons"] for sample in body["samples"]}


def test_a_pin_set_on_the_server_is_previewed_by_the_tracked_trainer(
    server: LiveServer, tmp_path: Path
) -> None:
    demo = make_demo_dataset(tmp_path / "demo", count=16, size=32, seed=0)
    cfg = TrainConfig.model_validate({
        "dataset": str(demo.root), "image_size": [32, 32], "base_channels": 8, "depth": 2,
        "epochs": 3, "batch_size": 8, "num_workers": 0, "augment": "none",
        "preview_count": 1, "preview_worst": 0, "val_fraction": 0.25,
    })  # fmt: skip
    with track(
        name="pinned", config=cfg, server=server.url, token=server.token,
        spool_dir=tmp_path / "spool",
    ) as run:  # fmt: skip
        reporter = PinningReporter(run, server)
        fit(cfg, reporter, out_dir=tmp_path / "out")
    assert run.id is not None and reporter.pinned is not None
    pinned = reporter.pinned
    first, second, third = (_previewed(server, run.id, epoch) for epoch in (1, 2, 3))
    assert pinned not in first
    assert second[pinned] == ["pinned"]
    assert pinned not in third
    # The fixed set stays throughout.
    assert set(first) <= set(second) and set(first) == set(third)
