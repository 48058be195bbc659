"""classes.json colours: [r, g, b] or "#rrggbb", anything else refused with the allowed forms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.data.classes_file import read_classes_file, write_classes_file
from trainer.data.errors import DatasetLayoutError


def _write(root: Path, colors: list[object]) -> None:
    classes = [{"name": f"class{index}", "color": color} for index, color in enumerate(colors)]
    (root / "classes.json").write_text(json.dumps({"classes": classes}), encoding="utf-8")


def test_colours_as_lists_or_hex(tmp_path: Path) -> None:
    _write(tmp_path, [[0, 0, 0], "#FF8000", "#0a0b0c"])
    classes = read_classes_file(tmp_path)
    assert classes is not None
    assert classes.colors == ((0, 0, 0), (255, 128, 0), (10, 11, 12))


@pytest.mark.parametrize(
    "color", [[0, 0], [0, 0, 256], [True, 0, 0], [0.5, 0, 0], "#fff", "red", "#12345g", None]
)
def test_other_colours_are_refused(tmp_path: Path, color: object) -> None:
    _write(tmp_path, [[0, 0, 0], color])
    with pytest.raises(DatasetLayoutError, match=r"class 1: color must be \[r, g, b\]") as caught:
        read_classes_file(tmp_path)
    assert '"#rrggbb"' in str(caught.value)


def test_written_colours_read_back(tmp_path: Path) -> None:
    write_classes_file(tmp_path, ["background", "road"], colors=[(0, 0, 0), (1, 2, 3)])
    classes = read_classes_file(tmp_path)
    assert classes is not None and classes.colors == ((0, 0, 0), (1, 2, 3))
