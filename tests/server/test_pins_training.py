"""A real (tiny) training through the worker's DbReporter: an image pinned over the API after
epoch 1 is previewed from epoch 2 on, beside the fixed set and each epoch's worst, and the
previews API says why each sample is there."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from server.run.lifecycle import claim_run
from server.settings import Settings
from tests.server.helpers import ApiClient, valid_config, write_dataset
from tests.trainer.factories import tiny_config
from trainer.loop import fit
from trainer.reporting import MultiReporter, NullReporter, PreviewSample
from worker.report_writer import ReportWriter
from worker.reporter import DbReporter, pin_reader


class PinAfterFirstPreviews(NullReporter):
    """Once epoch 1's previews are reported (and stored), pins a validation image over the API
    by its name: the one the first epoch neither fixed nor counted among its worst."""

    def __init__(self, client: ApiClient, run_id: int, writer: ReportWriter) -> None:
        self.client = client
        self.run_id = run_id
        self.writer = writer
        self.pinned: str | None = None

    def on_preview(self, epoch: int, samples: Sequence[PreviewSample]) -> None:
        if epoch != 1:
            return
        self.writer.flush()  # the run's validation set is stored: its names can be pinned
        shown = {sample.index for sample in samples}
        images = self.client.get(f"/api/v1/runs/{self.run_id}/images?sort=name&limit=100")
        candidates = [item for item in images.json()["items"] if item["index"] not in shown]
        self.pinned = candidates[0]["name"]
        response = self.client.request(
            "PUT", f"/api/v1/runs/{self.run_id}/pinned-images/{self.pinned}"
        )
        assert response.status_code == 201, response.text


def serialised(
    read: Callable[[], Sequence[int]], writer: ReportWriter
) -> Callable[[], Sequence[int]]:
    """`read` once the writer's reports are stored: the test's sessions share one connection,
    which two threads must not use at once (a worker's have a connection each)."""

    def pinned_images() -> Sequence[int]:
        writer.flush()
        return read()

    return pinned_images


def test_a_pin_made_after_epoch_1_is_previewed_from_epoch_2(
    client: ApiClient,
    db_session: Session,
    session_factory: sessionmaker[Session],
    dataset_root: Path,
    settings: Settings,
) -> None:
    dataset = write_dataset(dataset_root / "pins", count=16)
    run_id: int = client.post("/api/v1/runs", json={"config": valid_config("pins")}).json()["id"]
    assert claim_run(db_session, run_id, worker="w1", device="cpu") is not None
    db_session.commit()
    writer = ReportWriter(run_id=run_id, sessions=session_factory, redis_url=None, limit_s=10)
    pinner = PinAfterFirstPreviews(client, run_id, writer)
    reporter = MultiReporter(
        [
            DbReporter(
                run_id=run_id,
                writer=writer,
                artifacts_dir=settings.artifacts_dir,
                stop_requested=lambda: False,
                pinned_images=serialised(pin_reader(session_factory, run_id), writer),
            ),
            pinner,
        ]
    )
    cfg = tiny_config(
        dataset, epochs=3, preview_count=1, preview_worst=1, val_fraction=0.5, depth=2
    )
    fit(cfg, reporter, out_dir=settings.artifacts_dir / "checkpoints")
    writer.flush()
    writer.close()

    url = f"/api/v1/runs/{run_id}/previews"
    epochs = {epoch: client.get(f"{url}?epoch={epoch}").json()["samples"] for epoch in (1, 2, 3)}
    fixed = {
        epoch: [sample["sample_index"] for sample in samples if "fixed" in sample["reasons"]]
        for epoch, samples in epochs.items()
    }
    assert len(fixed[1]) == 1 and fixed[1] == fixed[2] == fixed[3]
    for samples in epochs.values():
        assert sum("worst" in sample["reasons"] for sample in samples) == 1
        assert len({sample["sample_index"] for sample in samples}) == len(samples)
    assert not any("pinned" in sample["reasons"] for sample in epochs[1])
    for epoch in (2, 3):
        pinned = [sample for sample in epochs[epoch] if "pinned" in sample["reasons"]]
        assert [sample["name"] for sample in pinned] == [pinner.pinned], epoch
    png = client.get(pinned[0]["prediction_url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
