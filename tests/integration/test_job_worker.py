"""Jobs through a real worker: an API and a Celery worker through Redis and PostgreSQL train a
tiny run on a 0/255 binary dataset, then evaluate it (its `test/*` metrics land on the run),
export it to ONNX (the downloaded file runs in onnxruntime) and predict uploaded images (the
masks come back 0/255, as the dataset stores them)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from segtrack.client import SegtrackClient
from tests.integration.binary_dataset import SIZE, binary_pair
from tests.integration.services import TINY, Service


@pytest.fixture(scope="module")
def trained(jobs_service: Service) -> Iterator[tuple[SegtrackClient, int]]:
    """A client and a run trained for one epoch on the binary dataset."""
    with SegtrackClient(jobs_service.url, token=jobs_service.token, timeout=30) as client:
        config = {**TINY, "epochs": 1, "batch_size": 4, "image_size": SIZE}
        run = client.submit(config, name="jobs")
        final = client.wait(run["id"], timeout=240, poll=1)
        assert final["status"] == "succeeded", final.get("failure_reason")
        yield client, run["id"]


def _done(client: SegtrackClient, job: dict[str, Any]) -> dict[str, Any]:
    assert job["status"] == "queued"
    ended = client.wait_job(job["id"], timeout=180, poll=0.5)
    assert ended["status"] == "succeeded", (ended["reason"], ended["details"])
    return ended


def test_an_evaluate_job_attaches_test_metrics_to_the_run(
    trained: tuple[SegtrackClient, int],
) -> None:
    client, run_id = trained
    job = _done(client, client.evaluate(run_id))
    result = job["result"]
    assert result["split"] == "test" and result["num_images"] == 2 and result["epoch"] == 1
    assert {"metrics.json", "per_image.csv", "confusion_matrix.csv"} <= {
        file["name"] for file in job["files"]
    }
    series = client.metrics(run_id, ["test/iou", "test/dice", "val/iou"])
    assert series["test/iou"]["step"] == [1]
    assert series["test/iou"]["value"] == [pytest.approx(result["metrics"]["test/iou"])]
    assert "test/iou" in client.get_run(run_id)["metrics"]


def test_an_export_job_gives_an_onnx_file_that_onnxruntime_runs(
    trained: tuple[SegtrackClient, int], tmp_path: Path
) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    client, run_id = trained
    job = _done(client, client.export_model(run_id, "onnx"))
    assert max(job["result"]["max_abs_diff"].values()) < 1e-3
    model = client.download_job_file(job["id"], "model.onnx", tmp_path)
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"image": np.zeros((1, 3, 40, 56), dtype=np.float32)})
    assert logits.shape[0] == 1 and logits.shape[2:] == (40, 56)


def test_a_predict_job_on_uploaded_images_returns_masks_in_0_and_255(
    trained: tuple[SegtrackClient, int], tmp_path: Path
) -> None:
    client, run_id = trained
    rng = np.random.default_rng(11)
    images = []
    for index in range(2):
        image, _ = binary_pair(rng)
        images.append(tmp_path / f"new_{index}.png")
        Image.fromarray(image).save(images[-1])
    job = _done(client, client.predict(run_id, images, tta=True))
    assert job["result"]["count"] == 2
    archive = client.download_job_file(job["id"], "masks.zip", tmp_path)
    with zipfile.ZipFile(archive) as masks:
        assert sorted(masks.namelist()) == ["new_0.png", "new_1.png"]
        for name in masks.namelist():
            with Image.open(io.BytesIO(masks.read(name))) as mask:
                pixels = np.asarray(mask)
            assert pixels.shape == (SIZE, SIZE)
            assert set(np.unique(pixels)) <= {0, 255}
    overlay = job["result"]["images"][0]["overlay"]
    assert overlay in {file["name"] for file in job["files"]}
    saved = client.download_job_file(job["id"], overlay, tmp_path / "overlay.png")
    with Image.open(saved) as shown:
        assert shown.size == (SIZE, SIZE)
    # A folder inside the dataset roots works as well as an upload.
    from_folder = _done(client, client.predict(run_id, folder="demo/images/test"))
    assert from_folder["result"]["count"] == 2
