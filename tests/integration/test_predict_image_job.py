"""predict_image through a real worker: an API and a Celery worker through Redis and PostgreSQL
train a tiny run that saves a preview of one validation image only; a validation image with no
preview is then predicted from the run's checkpoint nearest the epoch asked, its image, truth and
prediction come back as the previews' PNGs (class indices at the training size), the same
request again reuses the job, and a previewed image predicted from the checkpoint of its epoch
matches the preview the trainer saved. A job queued while a training holds the worker's only
slot and cancelled then never starts."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from segtrack.client import SegtrackClient
from tests.integration.binary_dataset import PREDICT_DATASET, SIZE
from tests.integration.services import TINY, Service, wait_for


@pytest.fixture(scope="module")
def api(jobs_service: Service) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {jobs_service.token}"}
    with httpx.Client(base_url=jobs_service.url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def trained(jobs_service: Service) -> Iterator[tuple[SegtrackClient, int]]:
    with SegtrackClient(jobs_service.url, token=jobs_service.token, timeout=30) as client:
        # 20 pairs: 4 validation images, 1 of them previewed.
        config = {
            **TINY,
            "dataset": PREDICT_DATASET,
            "epochs": 2,
            "batch_size": 4,
            "image_size": SIZE,
            "preview_count": 1,
        }
        run = client.submit(config, name="predict-image")
        final = client.wait(run["id"], timeout=240, poll=1)
        assert final["status"] == "succeeded", final.get("failure_reason")
        yield client, run["id"]


def _png(api: httpx.Client, url: str) -> np.ndarray:
    response = api.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as image:
        return np.asarray(image)


def _done(client: SegtrackClient, job: dict[str, Any]) -> dict[str, Any]:
    ended = client.wait_job(job["id"], timeout=180, poll=0.5)
    assert ended["status"] == "succeeded", (ended["reason"], ended["details"])
    return ended


def test_an_image_without_a_preview_is_predicted_from_the_nearest_checkpoint(
    trained: tuple[SegtrackClient, int], api: httpx.Client
) -> None:
    client, run_id = trained
    listed = client.images(run_id, limit=100)
    previews = api.get(f"/api/v1/runs/{run_id}/previews").json()
    previewed = {sample["name"] for sample in previews["samples"]}
    assert len(previewed) == 1 and listed["total"] == 4
    unsaved = next(item for item in listed["items"] if item["name"] not in previewed)
    checkpoints = {
        item["kind"]: item["epoch"]
        for item in api.get(f"/api/v1/runs/{run_id}/checkpoints").json()["checkpoints"]
    }
    assert checkpoints["last"] == 2

    job = client.predict_image(run_id, unsaved["index"], epoch=2)
    assert job["status"] == "queued" and job["reused"] is False
    used = job["parameters"]["checkpoint"]
    assert checkpoints[used] == 2
    done = _done(client, job)
    result = done["result"]
    assert (result["epoch"], result["image"], result["name"]) == (
        2,
        unsaved["index"],
        unsaved["name"],
    )
    assert (result["width"], result["height"]) == (SIZE, SIZE)
    image = _png(api, result["image_url"])
    truth = _png(api, result["truth_url"])
    prediction = _png(api, result["prediction_url"])
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    assert truth.shape == prediction.shape == (SIZE, SIZE)
    # Class indices (0 background, 1 foreground), as previews store them, not the 0/255 of
    # the dataset's files.
    assert set(np.unique(truth)) == {0, 1}
    assert set(np.unique(prediction)) <= {0, 1}

    again = client.predict_image(run_id, unsaved["index"], epoch=2)
    assert again["id"] == job["id"] and again["reused"] is True
    assert again["status"] == "succeeded"


def test_a_previewed_image_predicted_again_matches_its_saved_preview(
    trained: tuple[SegtrackClient, int], api: httpx.Client
) -> None:
    client, run_id = trained
    checkpoints = api.get(f"/api/v1/runs/{run_id}/checkpoints").json()["checkpoints"]
    last = next(item for item in checkpoints if item["kind"] == "last")
    previews = api.get(f"/api/v1/runs/{run_id}/previews?epoch={last['epoch']}").json()
    (sample,) = previews["samples"]
    job = client.predict_image(run_id, sample["sample_index"], epoch=last["epoch"])
    result = _done(client, job)["result"]
    assert result["epoch"] == last["epoch"]
    for kind in ("image", "truth", "prediction"):
        saved = _png(api, sample[f"{kind}_url"])
        again = _png(api, result[f"{kind}_url"])
        assert saved.shape == again.shape, kind
        # The same weights on the same input: the same pixels (a tie at the threshold aside).
        assert np.mean(saved == again) > 0.99, kind


def test_a_job_cancelled_while_a_training_holds_the_slot_never_starts(
    trained: tuple[SegtrackClient, int], api: httpx.Client
) -> None:
    client, run_id = trained
    long_run = client.submit(
        {**TINY, "dataset": PREDICT_DATASET, "epochs": 200, "batch_size": 4, "image_size": SIZE},
        name="holds the slot",
    )
    wait_for(
        lambda: client.get_run(long_run["id"])["status"] == "running", 120, "the long run to start"
    )
    # Images no earlier test asked for, so nothing is reused.
    asked = {job["parameters"]["image_index"] for job in client.list_jobs(run_id)}
    first, second = sorted(set(range(4)) - asked)[:2]
    job = client.predict_image(run_id, first, epoch=1)
    assert job["status"] == "queued" and job["reused"] is False
    cancelled = client.cancel_job(job["id"])
    assert cancelled["status"] == "cancelled"
    client.cancel(long_run["id"])
    assert client.wait(long_run["id"], timeout=120, poll=1)["status"] == "cancelled"

    # The worker is free again; the cancelled job's message was turned away, not run.
    after = client.predict_image(run_id, second, epoch=1)
    _done(client, after)
    ended = client.get_job(job["id"])
    assert (ended["status"], ended["started_at"], ended["worker"]) == ("cancelled", None, None)
