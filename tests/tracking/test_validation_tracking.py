"""A run trained elsewhere sends every epoch's validation detail: through the HttpReporter to a
real server, refused details logged and skipped while the rest arrives, and spooled offline
then sent by `segtrack sync`, a second sending replacing rather than duplicating."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from segtrack import track
from segtrack.tracking.reporter import HttpReporter
from segtrack.tracking.spool import SentMark, Spool
from segtrack.tracking.sync import sync_spool
from tests.server.helpers import LiveServer
from tests.server.validation_data import CLASSES, counts
from tests.tracking.helpers import rest, series
from trainer.validation_detail import ImageCounts, ValidationDetail


def detail(epoch: int, class_names: tuple[str, ...] = tuple(CLASSES)) -> ValidationDetail:
    designed = counts(epoch)
    images = ImageCounts(
        designed.names, designed.true_positive, designed.false_positive, designed.false_negative
    )
    return ValidationDetail(epoch, class_names, designed.confusion, images)


def test_the_http_reporter_sends_each_epoch(server: LiveServer, tmp_path: Path) -> None:
    with track(
        name="validated", server=server.url, token=server.token, spool_dir=tmp_path / "spool"
    ) as run:
        run.log_info(class_names=CLASSES, epochs_planned=2)
        reporter = HttpReporter(run)
        for epoch in (1, 2):
            reporter.on_epoch_end(epoch, {"val/iou": 0.5})
            reporter.on_validation_detail(detail(epoch))
    assert run.id is not None
    confusion = rest(server.url, server.token, f"/api/v1/runs/{run.id}/confusion")
    assert confusion["epochs"] == [1, 2]
    assert confusion["matrix"] == detail(2).confusion.tolist()
    images = rest(server.url, server.token, f"/api/v1/runs/{run.id}/images")
    assert [item["name"] for item in images["items"]] == ["bad", "mid", "good", "empty"]
    assert not list(Spool.open(tmp_path / "spool" / run.key).blobs.glob("validation-*"))


def test_a_refused_detail_is_skipped_and_the_rest_arrives(
    server: LiveServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with track(
        name="refused", server=server.url, token=server.token, spool_dir=tmp_path / "spool"
    ) as run:
        run.log_info(class_names=CLASSES)
        with pytest.raises(ValueError, match="confusion"):
            run.log_validation(
                {"epoch": 1, "class_names": CLASSES, "confusion": np.zeros((3, 3), np.int64),
                 "images": {"names": [], "true_positive": [], "false_positive": [],
                            "false_negative": []}}
            )  # fmt: skip
        with caplog.at_level(logging.WARNING, logger="segtrack.tracking.sender"):
            run.log_validation(detail(1, ("background", "dog")))
            run.log({"val/iou": 0.7}, epoch=1)
            run.log_validation(detail(1))
            assert run.flush(timeout=20)
    assert run.id is not None
    assert "class_names" in caplog.text and "refused" in caplog.text
    assert series(server.url, server.token, run.id)["val/iou"]["value"] == [0.7]
    assert rest(server.url, server.token, f"/api/v1/runs/{run.id}/confusion")["epochs"] == [1]


def test_spooled_offline_then_synced_and_a_resend_replaces(
    server: LiveServer, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    run = track(name=f"offline-{tmp_path.name}", spool_dir=spool_dir)  # no server: spooled
    run.log_info(class_names=CLASSES)
    for epoch in (1, 2):
        run.log_validation(detail(epoch))
    run.finish()
    folder = spool_dir / run.key
    kept = tmp_path / "blobs-before-sync"
    shutil.copytree(folder / "blobs", kept)

    first = sync_spool(folder, server=server.url, token=server.token)
    assert first.problem is None and first.left == 0
    run_id = Spool.open(folder).meta.run_id
    assert run_id is not None
    assert not list((folder / "blobs").glob("validation-*"))
    assert sync_spool(folder, token=server.token).sent == 0

    # A crash before the sent mark was saved: everything is sent again, and replaces.
    shutil.copytree(kept, folder / "blobs", dirs_exist_ok=True)
    Spool.open(folder).save_sent(SentMark())
    again = sync_spool(folder, token=server.token)
    assert again.problem is None and again.sent == first.sent
    assert Spool.open(folder).meta.run_id == run_id
    confusion = rest(server.url, server.token, f"/api/v1/runs/{run_id}/confusion")
    assert confusion["epochs"] == [1, 2]
    trend = rest(server.url, server.token, f"/api/v1/runs/{run_id}/images/1/trend")
    assert [point["epoch"] for point in trend["points"]] == [1, 2]
