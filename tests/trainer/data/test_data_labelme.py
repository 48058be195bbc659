"""Converting labelme JSON annotations into an images/masks dataset."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from trainer.data.classes_file import read_classes_file
from trainer.data.image_files import read_image, read_mask
from trainer.data.inspection import inspect_dataset
from trainer.data.labelme import LabelmeError, convert_labelme

HEIGHT, WIDTH = 40, 60


def _png_bytes(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (WIDTH, HEIGHT), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _shapes() -> list[dict[str, Any]]:
    return [
        {"label": "dog", "points": [[0, 0], [19, 0], [19, 19], [0, 19]], "shape_type": "polygon"},
        {"label": "cat", "points": [[30, 10], [49, 29]], "shape_type": "rectangle"},
        {"label": "cat", "points": [[10, 10], [15, 15]], "shape_type": "rectangle"},
        {"label": "dog", "points": [[5, 30], [9, 30]], "shape_type": "line"},
    ]


def _annotation(path: Path, shapes: list[dict[str, Any]], **extra: Any) -> None:
    data = {"version": "5.4.1", "shapes": shapes, "imageHeight": HEIGHT, "imageWidth": WIDTH}
    data.update(extra)
    path.write_text(json.dumps(data))


def test_embedded_image_data_and_image_path(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    embedded = _png_bytes((10, 20, 30))
    _annotation(
        src / "first.json",
        _shapes(),
        imagePath="missing.png",
        imageData=base64.b64encode(embedded).decode(),
    )
    Image.new("RGB", (WIDTH, HEIGHT), (200, 100, 0)).save(src / "photo.jpg")
    _annotation(
        src / "second.json",
        [{"label": "cat", "points": [[30, 20], [30, 25]], "shape_type": "circle"}],
        imagePath="photo.jpg",
        imageData=None,
    )

    result = convert_labelme(src, dst)

    assert result.count == 2
    assert result.class_names == ("background", "cat", "dog")
    assert result.skipped_shapes == 1
    assert (dst / "images" / "first.png").read_bytes() == embedded
    assert (dst / "images" / "second.jpg").read_bytes() == (src / "photo.jpg").read_bytes()
    assert read_image(dst / "images" / "second.jpg").shape == (HEIGHT, WIDTH, 3)
    first = read_mask(dst / "masks" / "first.png")
    assert first.shape == (HEIGHT, WIDTH)
    assert first[5, 5] == 2  # dog polygon
    assert first[12, 12] == 1  # cat rectangle drawn over the dog
    assert first[20, 40] == 1
    assert first[35, 7] == 0  # lines have no area
    second = read_mask(dst / "masks" / "second.png")
    assert second[20, 30] == 1
    assert second[20, 34] == 1
    assert second[20, 37] == 0
    classes = read_classes_file(dst)
    assert classes is not None
    assert classes.names == ("background", "cat", "dog")
    assert classes.values == (0, 1, 2)


def test_given_labels_set_the_order_and_the_result_inspects_cleanly(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for name in ("a", "b"):
        _annotation(
            src / f"{name}.json",
            _shapes(),
            imageData=base64.b64encode(_png_bytes((0, 0, 0))).decode(),
        )

    result = convert_labelme(src, dst, labels=["_background_", "dog", "cat", "bird"])
    report = inspect_dataset(dst)

    assert result.class_names == ("background", "dog", "cat", "bird")
    assert read_mask(dst / "masks" / "a.png")[5, 5] == 1
    assert report.ok, report.errors
    assert report.class_names == ["background", "dog", "cat", "bird"]
    assert report.num_classes == 4


def test_unknown_labels_are_named(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _annotation(
        src / "a.json", _shapes(), imageData=base64.b64encode(_png_bytes((0, 0, 0))).decode()
    )
    with pytest.raises(LabelmeError, match=r"\['cat'\]"):
        convert_labelme(src, tmp_path / "dst", labels=["dog"])


def test_bad_files_name_the_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "broken.json").write_text("{not json")
    with pytest.raises(LabelmeError, match=r"broken\.json is not valid JSON"):
        convert_labelme(src, tmp_path / "dst")

    (src / "broken.json").write_text(json.dumps({"shapes": [{"points": []}]}))
    with pytest.raises(LabelmeError, match=r"broken\.json.*label"):
        convert_labelme(src, tmp_path / "dst")

    _annotation(src / "broken.json", _shapes(), imagePath="nowhere.png")
    with pytest.raises(LabelmeError, match=r"nowhere\.png not found"):
        convert_labelme(src, tmp_path / "dst")

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LabelmeError, match="no labelme"):
        convert_labelme(empty, tmp_path / "dst")


def test_unsupported_shapes_are_errors(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _annotation(
        src / "a.json",
        [{"label": "dog", "points": [[0, 0]], "shape_type": "rectangle"}],
        imageData=base64.b64encode(_png_bytes((0, 0, 0))).decode(),
    )
    with pytest.raises(LabelmeError, match="rectangle"):
        convert_labelme(src, tmp_path / "dst")


def test_masks_match_image_size_not_the_json_header(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(src / "small.png")
    _annotation(src / "small.json", _shapes(), imagePath="small.png")

    convert_labelme(src, dst)

    assert read_mask(dst / "masks" / "small.png").shape == (10, 12)
