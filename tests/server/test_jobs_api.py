"""Jobs over REST: evaluate, predict and export requests are checked against their run (the
checkpoint, the dataset's classes and splits, the images) and sent to the run's queue; members
queue jobs on their own runs only; a job's files download by the names it lists."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from PIL import Image
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from server.artifacts import checkpoint_path
from server.db import session_scope
from server.job.paths import job_dir
from server.models import Job, Run
from server.settings import Settings
from tests.server.helpers import (
    ApiClient,
    RecordingTaskQueue,
    issue_token,
    valid_config,
    write_dataset,
)


def _png(size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (120, 30, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def _with_test_split(root: Path) -> Path:
    """`root`'s dataset gains images/test + masks/test (two pairs)."""
    test = write_dataset(root / "_test", count=2)
    for part in ("images", "masks"):
        (test / part).rename(root / part / "test")
    return root


@pytest.fixture
def run(
    client: ApiClient,
    shapes_dataset: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
) -> dict[str, Any]:
    """A run of the registered `shapes` dataset (with a test split) that has a best checkpoint
    and knows its classes."""
    _with_test_split(shapes_dataset)
    assert (
        client.post("/api/v1/datasets", json={"name": "shapes", "path": "shapes"}).status_code
        == 201
    )
    created = client.post("/api/v1/runs", json={"config": valid_config()})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    best = checkpoint_path(settings.artifacts_dir, body["id"], "best")
    best.parent.mkdir(parents=True)
    best.write_bytes(b"weights")
    with session_scope(session_factory) as session:
        classes = client.get("/api/v1/datasets/shapes").json()["class_names"]
        session.execute(update(Run).where(Run.id == body["id"]).values(class_names=classes))
    return body


def _jobs(run: dict[str, Any]) -> str:
    return f"/api/v1/runs/{run['id']}/jobs"


def test_an_evaluate_job_is_stored_queued_and_sent_to_the_runs_queue(
    client: ApiClient, run: dict[str, Any], task_queue: RecordingTaskQueue
) -> None:
    response = client.post(_jobs(run), json={"kind": "evaluate"})
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["status"] == "queued"
    assert job["parameters"] == {
        "checkpoint": "best",
        "dataset_id": job["parameters"]["dataset_id"],
        "dataset": "shapes",
        "split": "test",
    }
    assert job["created_by"] == "admin"
    assert [(job_id, queue) for job_id, queue, _ in task_queue.jobs] == [(job["id"], run["queue"])]
    assert client.get(f"/api/v1/jobs/{job['id']}").json()["id"] == job["id"]
    listed = client.get(_jobs(run)).json()["items"]
    assert [item["id"] for item in listed] == [job["id"]]
    export = client.post(_jobs(run), json={"kind": "export", "format": "torchscript"})
    assert export.status_code == 201, export.text
    assert export.json()["parameters"] == {"checkpoint": "best", "format": "torchscript"}


def test_bad_job_requests_say_what_is_wrong(
    client: ApiClient, run: dict[str, Any], dataset_root: Path
) -> None:
    def problem(body: dict[str, Any], status: int) -> str:
        response = client.post(_jobs(run), json=body)
        assert response.status_code == status, response.text
        message: str = response.json()["error"]["message"]
        return message

    assert "has no last checkpoint (it has best)" in problem(
        {"kind": "evaluate", "checkpoint": "last"}, 409
    )
    write_dataset(dataset_root / "three", classes=3)
    assert (
        client.post("/api/v1/datasets", json={"name": "three", "path": "three"}).status_code == 201
    )
    mismatch = problem({"kind": "evaluate", "dataset": "three"}, 422)
    assert "has the classes [" in mismatch and "was trained on [" in mismatch
    write_dataset(dataset_root / "plain")
    assert (
        client.post("/api/v1/datasets", json={"name": "plain", "path": "plain"}).status_code == 201
    )
    assert "has no test split; it has: val" in problem(
        {"kind": "evaluate", "dataset": "plain"}, 422
    )
    assert (
        client.post(
            _jobs(run), json={"kind": "evaluate", "dataset": "plain", "split": "val"}
        ).status_code
        == 201
    )
    assert "registered datasets" in problem({"kind": "evaluate", "dataset": "nope"}, 422)
    assert "no dataset id" in problem({"kind": "evaluate", "dataset": "99999999999"}, 422)
    # A dataset that is neither an id nor a name gets one plain message, not one for each
    # member of the id-or-name union (naming pydantic's internal validators).
    for wrong in (2**40, 0, True, "", "x" * 101, "de\x00mo", [1]):
        message = problem({"kind": "evaluate", "dataset": wrong}, 422)
        assert "functools" not in message and "constrained" not in message, message
        expected = "NUL" if wrong == "de\x00mo" else "registered dataset's id"
        assert expected in message, message
    for body in (
        {"kind": "train"},
        {"kind": "export", "format": "tflite"},
        {"kind": "evaluate", "split": "train"},
        {"kind": "evaluate", "extra": 1},
        {"kind": "predict"},
        {"kind": "predict", "folder": "shapes", "upload": "0" * 32},
    ):
        assert client.post(_jobs(run), json=body).status_code == 422, body
    assert "no images uploaded" in problem({"kind": "predict", "upload": "a" * 32}, 422)
    assert client.post(_jobs(run), json={"kind": "predict", "folder": "/etc"}).status_code == 403
    assert client.post("/api/v1/runs/999999/jobs", json={"kind": "export"}).status_code == 404
    assert client.get("/api/v1/jobs/999999").status_code == 404


def test_images_uploaded_to_predict_on_are_checked_and_predicted_by_id(
    client: ApiClient, run: dict[str, Any], settings: Settings
) -> None:
    inputs = f"/api/v1/runs/{run['id']}/predict-inputs"
    files = [
        ("files", ("a b.png", _png(), "image/png")),
        ("files", ("../x.png", _png(), "image/png")),
    ]
    stored = client.post(inputs, files=files)
    assert stored.status_code == 201, stored.text
    assert stored.json()["files"] == ["a_b.png", "x.png"]
    not_image = client.post(inputs, files=[("files", ("notes.png", b"hello", "image/png"))])
    assert not_image.status_code == 422
    assert not_image.json()["error"]["message"] == (
        "'notes.png' is not an image (PNG, JPEG, TIFF, BMP are accepted)"
    )
    gif = io.BytesIO()
    Image.new("P", (4, 4)).save(gif, format="GIF")
    refused = client.post(inputs, files=[("files", ("g.gif", gif.getvalue(), "image/gif"))])
    assert "is a GIF image; accepted: PNG, JPEG, TIFF, BMP" in refused.json()["error"]["message"]
    unnamed = client.post(inputs, files=[("files", ("", _png(), "image/png"))])
    assert unnamed.status_code == 422
    assert unnamed.json()["error"]["message"] == (
        "invalid request: files.0: expected a file: send files as a multipart file part with a "
        "file name (curl -F 'files=@image.png'), not a text field"
    )
    many = [("files", (f"{index}.png", _png(2), "image/png")) for index in range(33)]
    assert client.post(inputs, files=many).status_code == 413
    job = client.post(
        _jobs(run), json={"kind": "predict", "upload": stored.json()["id"], "tta": True}
    )
    assert job.status_code == 201, job.text
    assert job.json()["parameters"]["tta"] is True


def test_a_jobs_files_download_by_the_names_it_lists(
    client: ApiClient,
    run: dict[str, Any],
    settings: Settings,
    session_factory: sessionmaker[Session],
) -> None:
    job = client.post(_jobs(run), json={"kind": "export"}).json()
    folder = job_dir(settings.artifacts_dir, run["id"], job["id"])
    (folder / "overlays").mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"onnx")
    (folder / "overlays" / "a.png").write_bytes(_png())
    (folder / "secret.txt").write_text("not listed")
    with session_scope(session_factory) as session:
        session.execute(
            update(Job)
            .where(Job.id == job["id"])
            .values(status="succeeded", files=["model.onnx", "overlays/a.png"])
        )
    described = client.get(f"/api/v1/jobs/{job['id']}").json()
    assert (described["files"][0]["name"], described["files"][0]["size_bytes"]) == ("model.onnx", 4)
    model = client.get(described["files"][0]["url"])
    assert model.status_code == 200 and model.content == b"onnx"
    overlay = client.get(f"/api/v1/jobs/{job['id']}/files/overlays/a.png")
    assert overlay.headers["content-type"] == "image/png"
    for name in ("secret.txt", "../../checkpoints/best.pt", "overlays/../secret.txt"):
        assert client.get(f"/api/v1/jobs/{job['id']}/files/{name}").status_code == 404, name


@pytest.fixture
def callers(app: FastAPI, session_factory: sessionmaker[Session]) -> Iterator[dict[str, ApiClient]]:
    tokens = {
        "owner": issue_token(session_factory, "owner", "member"),
        "member": issue_token(session_factory, "other", "member"),
        "viewer": issue_token(session_factory, "watcher", "viewer"),
    }
    opened = {kind: ApiClient(app, token).__enter__() for kind, token in tokens.items()}
    yield opened
    for caller in opened.values():
        caller.__exit__()


def test_members_queue_jobs_on_their_own_runs_and_viewers_read_them(
    client: ApiClient,
    callers: dict[str, ApiClient],
    run: dict[str, Any],
    settings: Settings,
    session_factory: sessionmaker[Session],
) -> None:
    owned = callers["owner"].post("/api/v1/runs", json={"config": valid_config()}).json()
    best = checkpoint_path(settings.artifacts_dir, owned["id"], "best")
    best.parent.mkdir(parents=True)
    best.write_bytes(b"weights")
    export = {"kind": "export"}
    assert callers["owner"].post(_jobs(owned), json=export).status_code == 201
    assert callers["member"].post(_jobs(owned), json=export).status_code == 403
    assert callers["viewer"].post(_jobs(owned), json=export).status_code == 403
    assert callers["owner"].post(_jobs(run), json=export).status_code == 403
    assert client.post(_jobs(owned), json=export).status_code == 201
    listed = callers["viewer"].get(_jobs(owned))
    assert listed.status_code == 200 and len(listed.json()["items"]) == 2


def _predicted_folder(
    client: ApiClient, run: dict[str, Any], session_factory: sessionmaker[Session], folder: str
) -> tuple[dict[str, Any], Path]:
    """The parameters a predict job on `folder` shows, and the folder its worker reads."""
    response = client.post(_jobs(run), json={"kind": "predict", "folder": folder})
    assert response.status_code == 201, response.text
    job = response.json()
    with session_scope(session_factory) as session:
        stored = session.get(Job, job["id"])
        assert stored is not None
        inputs = Path(stored.parameters["inputs_path"])
    return job["parameters"], inputs


def test_a_dataset_folder_predicts_its_images_never_its_masks(
    client: ApiClient,
    run: dict[str, Any],
    session_factory: sessionmaker[Session],
    dataset_root: Path,
    tmp_path: Path,
) -> None:
    parameters, inputs = _predicted_folder(client, run, session_factory, "shapes")
    assert parameters == {
        "checkpoint": "best",
        "tta": False,
        "folder": "shapes",
        "images_folder": "shapes/images",
    }
    assert inputs == (dataset_root / "shapes" / "images").resolve()
    # Its test split's images come along; no mask does.
    assert len([p for p in inputs.rglob("*.png") if "masks" in p.parts]) == 0
    assert len(list(inputs.rglob("*.png"))) == 4 + 2

    # A folder that is no dataset's root is taken whole, the masks folder too when asked for.
    for inside in ("shapes/images", "shapes/masks", "shapes/images/test"):
        parameters, inputs = _predicted_folder(client, run, session_factory, inside)
        assert "images_folder" not in parameters and parameters["folder"] == inside
        assert inputs == (dataset_root / inside).resolve()

    voc = dataset_root / "devkit" / "VOC2012"
    for part in ("JPEGImages", "SegmentationClass"):
        (voc / part).mkdir(parents=True)
    parameters, inputs = _predicted_folder(client, run, session_factory, "devkit")
    assert parameters["images_folder"] == "devkit/VOC2012/JPEGImages"
    assert inputs == (voc / "JPEGImages").resolve()

    # An image folder linked out of the dataset roots is refused like the folder would be.
    outside = tmp_path / "outside"
    outside.mkdir()
    (dataset_root / "linked" / "masks").mkdir(parents=True)
    (dataset_root / "linked" / "images").symlink_to(outside, target_is_directory=True)
    refused = client.post(_jobs(run), json={"kind": "predict", "folder": "linked"})
    assert refused.status_code == 403, refused.text
