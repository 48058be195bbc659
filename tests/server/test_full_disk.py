"""A full disk under the artifacts root: an upload piece is refused with 507 and the offset to
resume from, gives its bytes back, and goes through once space is freed; other writes (previews)
get the same clear 507 rather than a 500.

The disk is a real one: a small tmpfs mounted for the test (needs the right to mount, as root)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.artifacts import upload_part_path
from server.deps import get_task_queue
from server.settings import Settings
from tests.server.helpers import ApiClient, RecordingTaskQueue, create_external, issue_token

DISK_BYTES = 2 * 1024 * 1024


def _mount(folder: Path, size: int) -> None:
    options = f"size={size}" if not os.path.ismount(folder) else f"remount,size={size}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB file system of its own."""
    folder = tmp_path / "disk"
    folder.mkdir()
    try:
        _mount(folder, DISK_BYTES)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot mount a tmpfs here: {error}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def disk_client(
    small_disk: Path,
    database_url: str,
    session_factory: sessionmaker[Session],
    task_queue: RecordingTaskQueue,
    dataset_root: Path,
) -> Iterator[ApiClient]:
    settings = Settings(
        data_dir=small_disk,
        database_url=database_url,
        broker_url="memory://",
        redis_url=None,
        dataset_roots=[dataset_root],
        reaper_interval_s=0,
        allowed_hosts=["testserver"],
    )
    app: FastAPI = create_app(settings, session_factory=session_factory)
    app.dependency_overrides[get_task_queue] = lambda: task_queue
    with ApiClient(app, issue_token(session_factory)) as client:
        yield client


def test_a_piece_that_fills_the_disk_gets_507_and_resumes_once_space_is_freed(
    disk_client: ApiClient, small_disk: Path
) -> None:
    run = create_external(disk_client)
    data = os.urandom(3 * 1024 * 1024)  # more than the disk holds
    body = {
        "kind": "best",
        "name": "best.pt",
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    upload = disk_client.post(f"/api/v1/runs/{run['id']}/uploads", json=body).json()
    url = f"/api/v1/runs/{run['id']}/uploads/{upload['id']}"
    headers = {"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}

    full = disk_client.patch(url, content=data, headers=headers)
    assert full.status_code == 507, full.text
    error = full.json()["error"]
    assert error["code"] == "insufficient_storage"
    assert error["details"]["offset"] == 0
    assert "disk is full" in error["message"] and "offset 0" in error["message"]
    part = upload_part_path(small_disk / "artifacts", run["id"], upload["id"])
    assert part.stat().st_size == 0  # the piece's bytes were given back
    assert disk_client.get(url).json()["offset"] == 0

    _mount(small_disk, 4 * DISK_BYTES)
    done = disk_client.patch(url, content=data, headers=headers)
    assert done.status_code == 200, done.text
    assert done.json() == {"offset": len(data), "complete": True}
    assert disk_client.get(f"/api/v1/runs/{run['id']}/checkpoints/best").content == data


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_preview_on_a_full_disk_gets_507_not_500(
    disk_client: ApiClient, small_disk: Path
) -> None:
    run = create_external(disk_client)
    filler = small_disk / "filler"
    with filler.open("wb") as handle, pytest.raises(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    noise = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    mask = np.zeros((256, 256), np.uint8)
    files = {
        "image": ("image.png", _png(noise), "image/png"),
        "truth": ("truth.png", _png(mask), "image/png"),
        "prediction": ("prediction.png", _png(mask), "image/png"),
    }
    form = {"epoch": "1", "sample_index": "0", "name": "a.png"}
    response = disk_client.post(f"/api/v1/runs/{run['id']}/previews", data=form, files=files)
    assert response.status_code == 507, response.text
    assert response.json()["error"]["code"] == "insufficient_storage"

    filler.unlink()
    stored = disk_client.post(f"/api/v1/runs/{run['id']}/previews", data=form, files=files)
    assert stored.status_code == 201, stored.text
