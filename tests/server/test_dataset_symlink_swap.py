"""A registered dataset folder later swapped for a symlink that leads outside the dataset roots is
no longer served: its samples, images and masks, and new runs on it, are refused with 403. A
symlink that stays inside the roots is fine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.server.helpers import ApiClient, valid_config, write_dataset

SAMPLES = "/api/v1/datasets/shapes/samples"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A dataset of the same shape outside every dataset root."""
    return write_dataset(tmp_path / "elsewhere" / "private", count=4)


@pytest.fixture
def registered(client: ApiClient, shapes_dataset: Path) -> Path:
    response = client.post("/api/v1/datasets", json={"name": "shapes", "path": str(shapes_dataset)})
    assert response.status_code == 201, response.text
    # Listed and read once, so the server holds the folder's listing in its cache.
    assert client.get(SAMPLES).status_code == 200
    assert client.get(f"{SAMPLES}/0/image.png").status_code == 200
    return shapes_dataset


def _swap_for_symlink(folder: Path, target: Path) -> None:
    shutil.rmtree(folder)
    folder.symlink_to(target, target_is_directory=True)


def _assert_refused(client: ApiClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "path_not_allowed"
    assert "outside the dataset roots" in error["message"]
    assert "'shapes'" in error["message"]


def test_a_folder_swapped_for_a_symlink_outside_is_refused(
    client: ApiClient, registered: Path, outside: Path, dataset_root: Path
) -> None:
    _swap_for_symlink(registered, outside)
    for url in (SAMPLES, f"{SAMPLES}/0/image.png", f"{SAMPLES}/1/mask.png"):
        _assert_refused(client, url)
    error = client.get(SAMPLES).json()["error"]
    assert error["details"]["allowed_roots"] == [str(dataset_root.resolve())]

    created = client.post("/api/v1/runs", json={"config": valid_config("shapes")})
    assert created.status_code == 403, created.text
    assert created.json()["error"]["code"] == "path_not_allowed"


def test_a_file_swapped_for_a_symlink_outside_is_refused(
    client: ApiClient, registered: Path, outside: Path
) -> None:
    image = registered / "images" / "sample_0.png"
    image.unlink()
    image.symlink_to(outside / "images" / "sample_0.png")
    mask = registered / "masks" / "sample_2.png"
    mask.unlink()
    mask.symlink_to(outside / "masks" / "sample_2.png")

    # A pair with a file that leads outside is not served at all, the others are.
    for index in (0, 2):
        for kind in ("image", "mask"):
            _assert_refused(client, f"{SAMPLES}/{index}/{kind}.png")
    for index in (1, 3):
        for kind in ("image", "mask"):
            assert client.get(f"{SAMPLES}/{index}/{kind}.png").status_code == 200


def test_a_symlink_that_stays_inside_the_roots_is_served(
    client: ApiClient, registered: Path, dataset_root: Path
) -> None:
    moved = dataset_root / "shapes-moved"
    shutil.copytree(registered, moved)
    _swap_for_symlink(registered, moved)
    assert client.get(SAMPLES).json()["total"] == 4
    assert client.get(f"{SAMPLES}/3/image.png").status_code == 200
    assert client.get(f"{SAMPLES}/3/mask.png").status_code == 200
    assert client.post("/api/v1/runs", json={"config": valid_config("shapes")}).status_code == 201
