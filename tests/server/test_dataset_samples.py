"""Sample image/mask pairs of registered datasets: listing, image PNGs made viewable, masks
decoded with the dataset's stored encoding into class-index PNGs."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from server.dataset.samples import display_image
from tests.server.helpers import ApiClient, write_dataset


def _register(client: ApiClient, name: str, path: Path, **extra: object) -> dict[str, object]:
    response = client.post("/api/v1/datasets", json={"name": name, "path": str(path), **extra})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def _png(client: ApiClient, url: str) -> npt.NDArray[np.uint8]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as image:
        return np.asarray(image)


def test_samples_list_in_name_order_with_png_urls(client: ApiClient, dataset_root: Path) -> None:
    dataset = _register(client, "shapes", write_dataset(dataset_root / "shapes", count=5))
    body = client.get("/api/v1/datasets/shapes/samples?offset=1&limit=3").json()
    assert body["total"] == 5 and body["offset"] == 1
    assert [item["name"] for item in body["items"]] == ["sample_1", "sample_2", "sample_3"]
    first = body["items"][0]
    base = f"/api/v1/datasets/{dataset['id']}/samples/1"
    assert first == {
        "index": 1,
        "name": "sample_1",
        "image_url": f"{base}/image.png",
        "mask_url": f"{base}/mask.png",
    }
    tail = client.get("/api/v1/datasets/shapes/samples?offset=4&limit=10").json()
    assert [item["index"] for item in tail["items"]] == [4]


def test_mask_png_holds_class_indices(client: ApiClient, dataset_root: Path) -> None:
    folder = write_dataset(dataset_root / "three", count=2, classes=3)
    _register(client, "three", folder)
    mask = _png(client, "/api/v1/datasets/three/samples/1/mask.png")
    with Image.open(folder / "masks" / "sample_1.png") as raw:
        expected = np.asarray(raw)
    assert mask.dtype == np.uint8 and mask.ndim == 2
    np.testing.assert_array_equal(mask, expected)


def test_mask_is_decoded_with_the_stored_encoding(client: ApiClient, dataset_root: Path) -> None:
    """0/255 binary masks become 0/1; a declared ignore value becomes 255."""
    folder = dataset_root / "binary"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    raw = np.zeros((32, 32), dtype=np.uint8)
    raw[8:24, 8:24] = 255
    raw[0, :] = 77
    for index in range(3):
        Image.fromarray(np.full((32, 32, 3), 40 * index, dtype=np.uint8)).save(
            folder / "images" / f"s{index}.png"
        )
        Image.fromarray(raw).save(folder / "masks" / f"s{index}.png")
    _register(client, "binary", folder, mask_ignore_value=77)
    mask = _png(client, "/api/v1/datasets/binary/samples/0/mask.png")
    assert set(np.unique(mask).tolist()) == {0, 1, 255}
    assert (mask[0] == 255).all()
    assert (mask[8:24, 8:24] == 1).all()


def test_images_are_scaled_down_to_the_requested_size(
    client: ApiClient, dataset_root: Path
) -> None:
    _register(client, "shapes", write_dataset(dataset_root / "shapes", size=64))
    image = _png(client, "/api/v1/datasets/shapes/samples/0/image.png?size=16")
    mask = _png(client, "/api/v1/datasets/shapes/samples/0/mask.png?size=16")
    assert image.shape == (16, 16, 3)
    assert mask.shape == (16, 16)
    assert set(np.unique(mask).tolist()) <= {0, 1}, "nearest-neighbour keeps class indices"
    assert client.get("/api/v1/datasets/shapes/samples/0/image.png?size=4").status_code == 422


def test_missing_samples_and_datasets_are_404(client: ApiClient, dataset_root: Path) -> None:
    _register(client, "shapes", write_dataset(dataset_root / "shapes", count=4))
    response = client.get("/api/v1/datasets/shapes/samples/9/image.png")
    assert response.status_code == 404
    assert "indices 0 to 3" in response.json()["error"]["message"]
    response = client.get("/api/v1/datasets/nope/samples")
    assert response.status_code == 404
    assert "shapes" in response.json()["error"]["message"], "it lists the registered datasets"


def test_a_deleted_folder_is_a_conflict_not_a_crash(client: ApiClient, dataset_root: Path) -> None:
    folder = write_dataset(dataset_root / "gone", count=2)
    _register(client, "gone", folder)
    shutil.rmtree(folder)
    response = client.get("/api/v1/datasets/gone/samples/0/mask.png")
    assert response.status_code == 409
    assert "gone" in response.json()["error"]["message"]


def test_display_image_makes_any_dtype_viewable() -> None:
    wide = np.array([[[1000], [3000]], [[5000], [1000]]], dtype=np.uint16)
    grey = display_image(wide)
    assert grey.dtype == np.uint8 and grey.shape == (2, 2)
    assert grey.min() == 0 and grey.max() == 255
    floats = np.full((2, 2, 4), np.nan, dtype=np.float32)
    floats[0, 0] = 1.0
    rgb = display_image(floats)
    assert rgb.shape == (2, 2, 3) and rgb[0, 0].tolist() == [255, 255, 255]
    flat = display_image(np.full((2, 2, 2), 7.0, dtype=np.float32))
    assert flat.shape == (2, 2) and (flat == 0).all()
    same = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    np.testing.assert_array_equal(display_image(same), same)


def test_class_folder_masks_are_combined(client: ApiClient, dataset_root: Path) -> None:
    """One binary mask per class (masks/<class>/<name>.png) becomes one class-index mask."""
    folder = dataset_root / "folders"
    (folder / "images").mkdir(parents=True)
    for name in ("cat", "dog"):
        (folder / "masks" / name).mkdir(parents=True)
    for index in range(2):
        Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(
            folder / "images" / f"p{index}.png"
        )
        cat = np.zeros((16, 16), dtype=np.uint8)
        cat[:8] = 255
        dog = np.zeros((16, 16), dtype=np.uint8)
        dog[12:, :4] = 1
        Image.fromarray(cat).save(folder / "masks" / "cat" / f"p{index}.png")
        Image.fromarray(dog).save(folder / "masks" / "dog" / f"p{index}.png")
    _register(client, "folders", folder, layout="class-folders")
    mask = _png(client, "/api/v1/datasets/folders/samples/1/mask.png")
    expected = np.zeros((16, 16), dtype=np.uint8)
    expected[:8] = 1
    expected[12:, :4] = 2
    np.testing.assert_array_equal(mask, expected)
