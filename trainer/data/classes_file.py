"""A dataset's classes file: classes.json or classes.txt at the dataset root.

It names the classes in index order and, in classes.json, optionally gives each class its raw mask
value and display colour; `read_classes_file` parses and checks it (a malformed file raises
`DatasetLayoutError`) and `write_classes_file` writes classes.json. Torch-free.

    {"classes": [{"name": "background", "value": 0, "color": [0, 0, 0]},
                 {"name": "road", "value": 1, "color": "#804080"}]}

A colour is `[r, g, b]` (0..255 each) or `"#rrggbb"`; a dataset registered on the server starts
with these colours in the dashboard.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.data.errors import DatasetLayoutError
from trainer.data.mask_encoding import (
    Colour,
    MaskValueError,
    RawValue,
    raw_value_from_json,
    raw_value_to_json,
)

CLASSES_JSON = "classes.json"
CLASSES_TXT = "classes.txt"


@dataclass(frozen=True)
class ClassesFile:
    """A classes.json / classes.txt: names in index order, optional raw values and colours."""

    path: Path
    names: tuple[str, ...]
    values: tuple[RawValue, ...] | None
    colors: tuple[Colour, ...] | None


_HEX_COLOUR = re.compile(r"#([0-9a-fA-F]{2})([0-9a-fA-F]{2})([0-9a-fA-F]{2})")


def _colour(value: Any, where: str) -> Colour:
    if (
        isinstance(value, list)
        and len(value) == 3
        # bool is an int to Python, but `true` is no colour channel.
        and all(isinstance(part, int) and not isinstance(part, bool) for part in value)
        and all(0 <= part <= 255 for part in value)
    ):
        return int(value[0]), int(value[1]), int(value[2])
    match = _HEX_COLOUR.fullmatch(value) if isinstance(value, str) else None
    if match is not None:
        red, green, blue = (int(part, 16) for part in match.groups())
        return red, green, blue
    raise DatasetLayoutError(
        f'{where}: color must be [r, g, b] with each part in 0..255, or "#rrggbb"; got '
        f"{json.dumps(value)}"
    )


def _parse_classes_json(path: Path) -> ClassesFile:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetLayoutError(f"cannot read {path}: {error}") from error
    entries = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DatasetLayoutError(
            f'{path} must look like {{"classes": [{{"name": "background", "value": 0, '
            '"color": [0, 0, 0]}, ...]}} (value and color optional)'
        )
    names: list[str] = []
    values: list[RawValue] = []
    colors: list[Colour] = []
    for position, item in enumerate(entries):
        where = f"{path} class {position}"
        entry = {"name": item} if isinstance(item, str) else item
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise DatasetLayoutError(f"{where}: each class needs a 'name' string")
        names.append(entry["name"])
        if "value" in entry:
            try:
                values.append(raw_value_from_json(entry["value"]))
            except MaskValueError as error:
                raise DatasetLayoutError(f"{where}: {error}") from error
        if "color" in entry:
            colors.append(_colour(entry["color"], where))
    for label, items in (("value", values), ("color", colors)):
        if items and len(items) != len(names):
            raise DatasetLayoutError(f"{path}: give a {label} for every class or for none")
    if len(set(names)) != len(names):
        raise DatasetLayoutError(f"{path}: class names must be unique, got {names}")
    return ClassesFile(path, tuple(names), tuple(values) or None, tuple(colors) or None)


def read_classes_file(root: Path) -> ClassesFile | None:
    """The classes.json (preferred) or classes.txt at `root`, or None when there is neither."""
    json_path, txt_path = root / CLASSES_JSON, root / CLASSES_TXT
    if json_path.is_file():
        return _parse_classes_json(json_path)
    if txt_path.is_file():
        try:
            lines = txt_path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise DatasetLayoutError(f"cannot read {txt_path}: {error}") from error
        names = tuple(line.strip() for line in lines if line.strip())
        if len(set(names)) != len(names) or not names:
            raise DatasetLayoutError(f"{txt_path}: one unique class name per line, in index order")
        return ClassesFile(txt_path, names, None, None)
    return None


def write_classes_file(
    root: Path,
    names: Sequence[str],
    values: Sequence[RawValue] | None = None,
    colors: Sequence[Colour] | None = None,
) -> Path:
    """Write `root/classes.json`; `values` default to the class indices."""
    if values is not None and len(values) != len(names):
        raise ValueError(f"{len(values)} values for {len(names)} class names")
    if colors is not None and len(colors) != len(names):
        raise ValueError(f"{len(colors)} colors for {len(names)} class names")
    classes: list[dict[str, Any]] = []
    for index, name in enumerate(names):
        value = values[index] if values is not None else index
        entry: dict[str, Any] = {"name": name, "value": raw_value_to_json(value)}
        if colors is not None:
            entry["color"] = list(colors[index])
        classes.append(entry)
    path = root / CLASSES_JSON
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"classes": classes}, indent=2) + "\n", encoding="utf-8")
    return path
