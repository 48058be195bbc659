"""A worker's run stores each epoch's validation detail through its DbReporter (the retrying
report writer); the API then scores the images as the trainer does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from server.run.lifecycle import claim_run
from tests.server.helpers import ApiClient, valid_config
from tests.server.validation_data import CLASSES, counts
from trainer.reporting import RunInfo
from trainer.validation_detail import ImageCounts, ValidationDetail
from worker.report_writer import ReportWriter
from worker.reporter import DbReporter

pytestmark = pytest.mark.usefixtures("shapes_dataset")


def _detail(epoch: int, class_names: tuple[str, ...] = tuple(CLASSES)) -> ValidationDetail:
    designed = counts(epoch)
    images = ImageCounts(
        designed.names, designed.true_positive, designed.false_positive, designed.false_negative
    )
    return ValidationDetail(epoch, class_names, designed.confusion, images)


def test_the_worker_reporter_stores_every_epoch(
    client: ApiClient,
    db_session: Session,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    run_id: int = client.post("/api/v1/runs", json={"config": valid_config()}).json()["id"]
    assert claim_run(db_session, run_id, worker="w1", device="cpu") is not None
    db_session.commit()
    writer = ReportWriter(run_id=run_id, sessions=session_factory, redis_url=None, limit_s=10)
    reporter = DbReporter(
        run_id=run_id, writer=writer, artifacts_dir=tmp_path, stop_requested=lambda: False
    )
    reporter.on_start(
        RunInfo(
            class_names=tuple(CLASSES),
            num_train=8,
            num_val=4,
            in_channels=3,
            epochs=2,
            start_epoch=1,
            device="cpu",
            steps_per_epoch=4,
            parameters=100,
            mask_encoding={},
        )
    )
    for epoch in (1, 2, 2):  # a resumed epoch reports again: it replaces
        reporter.on_validation_detail(_detail(epoch))
    # Classes that are not the run's are refused and logged; the writing goes on.
    reporter.on_validation_detail(_detail(3, ("background", "dog")))
    reporter.on_epoch_end(3, {"val/iou": 0.5})
    writer.flush()
    writer.close()

    page = client.get(f"/api/v1/runs/{run_id}/images?sort=name").json()
    assert page["epochs"] == [1, 2]
    trainer_scores = _detail(2).images.image_iou()
    by_index = {item["index"]: item["iou"] for item in page["items"]}
    assert np.allclose([by_index[index] for index in range(4)], trainer_scores)
    matrix = client.get(f"/api/v1/runs/{run_id}/confusion").json()["matrix"]
    assert matrix == _detail(2).confusion.tolist()
    assert client.get(f"/api/v1/runs/{run_id}/metrics").json()["series"]["val/iou"]["value"] == [
        0.5
    ]
