"""A registered dataset starts with the colours its classes.json gives (the demo dataset's too);
colours given at registration win; without any, the default palette."""

from __future__ import annotations

import json
from pathlib import Path

from server.dataset.service import default_colors
from tests.server.helpers import ApiClient, write_dataset
from trainer.data.demo import DEMO_CLASS_COLORS, make_demo_dataset


def _register(client: ApiClient, name: str, path: Path, **extra: object) -> dict[str, object]:
    response = client.post("/api/v1/datasets", json={"name": name, "path": str(path), **extra})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def _listed_colors(client: ApiClient, name: str) -> object:
    items = client.get("/api/v1/datasets").json()["items"]
    return next(item["class_colors"] for item in items if item["name"] == name)


def _classes_json(folder: Path, classes: list[dict[str, object]]) -> None:
    (folder / "classes.json").write_text(json.dumps({"classes": classes}), encoding="utf-8")


def test_colours_come_from_classes_json(client: ApiClient, dataset_root: Path) -> None:
    folder = write_dataset(dataset_root / "roads", classes=3)
    _classes_json(
        folder,
        [
            {"name": "background", "value": 0, "color": [10, 20, 30]},
            {"name": "road", "value": 1, "color": "#804080"},
            {"name": "car", "value": 2, "color": [255, 0, 0]},
        ],
    )
    expected = ["#0a141e", "#804080", "#ff0000"]
    body = _register(client, "roads", folder)
    assert body["class_names"] == ["background", "road", "car"]
    assert body["class_colors"] == expected
    assert client.get("/api/v1/datasets/roads").json()["class_colors"] == expected
    assert _listed_colors(client, "roads") == expected


def test_the_demo_dataset_shows_its_own_colours(client: ApiClient, dataset_root: Path) -> None:
    demo = make_demo_dataset(dataset_root / "demo", count=6, size=16).root
    body = _register(client, "demo", demo)
    expected = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in DEMO_CLASS_COLORS]
    assert body["class_colors"] == expected
    assert expected != default_colors(len(expected))
    assert _listed_colors(client, "demo") == expected


def test_colours_given_at_registration_win(client: ApiClient, dataset_root: Path) -> None:
    folder = write_dataset(dataset_root / "given")
    _classes_json(
        folder,
        [
            {"name": "background", "color": [1, 1, 1]},
            {"name": "cell", "color": [2, 2, 2]},
        ],
    )
    body = _register(client, "given", folder, class_colors=["#000000", "#00ff00"])
    assert body["class_colors"] == ["#000000", "#00ff00"]


def test_without_colours_the_default_palette(client: ApiClient, dataset_root: Path) -> None:
    folder = write_dataset(dataset_root / "plain", classes=3)
    _classes_json(folder, [{"name": "background"}, {"name": "a"}, {"name": "b"}])
    assert _register(client, "plain", folder)["class_colors"] == default_colors(3)


def test_a_bad_colour_in_classes_json_is_refused_with_the_allowed_forms(
    client: ApiClient, dataset_root: Path
) -> None:
    folder = write_dataset(dataset_root / "bad")
    _classes_json(folder, [{"name": "background", "color": "red"}, {"name": "cell"}])
    response = client.post("/api/v1/datasets", json={"name": "bad", "path": str(folder)})
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert '[r, g, b] with each part in 0..255, or "#rrggbb"' in message
    assert '"red"' in message
