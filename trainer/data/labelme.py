"""Converting labelme annotations (polygons, rectangles, circles) into an images/masks dataset."""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from trainer.config import MAX_CLASSES
from trainer.data.classes_file import write_classes_file
from trainer.data.image_files import image_size, write_mask

logger = logging.getLogger(__name__)

AREA_SHAPES: tuple[str, ...] = ("polygon", "rectangle", "circle")
"""Shape types rasterised into masks."""
LINE_SHAPES: tuple[str, ...] = ("line", "linestrip", "point")
"""Shape types without an area: skipped and counted."""
BACKGROUND_LABELS: tuple[str, ...] = ("background", "_background_")
"""Labels that mean class 0; labelme projects often list `_background_` first."""
_PIL_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif"}


class LabelmeError(Exception):
    """A labelme file that cannot be converted; the message names the file and the problem."""


@dataclass(frozen=True)
class ConversionResult:
    """What `convert_labelme` wrote.

    Attributes:
        count: Image/mask pairs written.
        class_names: Class names in index order, "background" first.
        images_dir: Folder of the copied images.
        masks_dir: Folder of the uint8 class-index PNG masks.
        skipped_shapes: Line and point shapes left out (they have no area).
    """

    count: int
    class_names: tuple[str, ...]
    images_dir: Path
    masks_dir: Path
    skipped_shapes: int


@dataclass(frozen=True)
class _Annotation:
    path: Path
    shapes: tuple[dict[str, Any], ...]
    image_path: Path | None
    image_data: bytes | None


def _load(path: Path) -> _Annotation:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise LabelmeError(f"cannot read {path}: {error}") from error
    except json.JSONDecodeError as error:
        raise LabelmeError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise LabelmeError(f"{path} is not a labelme file: it needs a 'shapes' list")
    shapes = tuple(data["shapes"])
    for position, shape in enumerate(shapes):
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str):
            raise LabelmeError(f"{path}: shape {position} needs a 'label' string")
        points = shape.get("points")
        if not isinstance(points, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, int | float) for v in p)
            for p in points
        ):
            raise LabelmeError(f"{path}: shape {position} needs 'points' as [[x, y], ...]")
    image_data = None
    if data.get("imageData"):
        try:
            image_data = base64.b64decode(data["imageData"], validate=True)
        except (binascii.Error, TypeError) as error:
            raise LabelmeError(f"{path}: imageData is not valid base64") from error
    image_path = data.get("imagePath")
    return _Annotation(
        path=path,
        shapes=shapes,
        image_path=(path.parent / image_path)
        if isinstance(image_path, str) and image_path
        else None,
        image_data=image_data,
    )


def _class_names(annotations: Sequence[_Annotation], labels: Sequence[str] | None) -> list[str]:
    found = {s["label"] for a in annotations for s in a.shapes} - set(BACKGROUND_LABELS)
    if labels is None:
        names = sorted(found)
    else:
        names = [label for label in labels if label not in BACKGROUND_LABELS]
        unknown = sorted(found - set(names))
        if unknown:
            raise LabelmeError(
                f"labels {unknown} are used in the annotations but not in the given labels "
                f"{list(labels)}; add them or fix the annotations"
            )
    if len(names) + 1 > MAX_CLASSES:
        raise LabelmeError(f"{len(names)} labels: at most {MAX_CLASSES - 1} besides background")
    return ["background", *names]


def _write_image(annotation: _Annotation, images_dir: Path) -> Path:
    """Copy the annotated image (or decode imageData) into `images_dir`; returns the new file."""
    stem = annotation.path.stem
    if annotation.image_path is not None and annotation.image_path.is_file():
        target = images_dir / f"{stem}{annotation.image_path.suffix.lower()}"
        shutil.copyfile(annotation.image_path, target)
        return target
    if annotation.image_data is None:
        raise LabelmeError(
            f"{annotation.path}: image {annotation.image_path} not found and no imageData embedded"
        )
    try:
        with Image.open(io.BytesIO(annotation.image_data)) as image:
            image_format = image.format or "PNG"
    except (UnidentifiedImageError, OSError) as error:
        raise LabelmeError(f"{annotation.path}: imageData is not an image") from error
    target = images_dir / f"{stem}{_PIL_SUFFIXES.get(image_format, '.png')}"
    if target.suffix == ".png" and image_format != "PNG":
        with Image.open(io.BytesIO(annotation.image_data)) as image:
            image.save(target, format="PNG")
    else:
        target.write_bytes(annotation.image_data)
    return target


def _rasterise(
    annotation: _Annotation, size: tuple[int, int], classes: dict[str, int]
) -> tuple[np.ndarray[Any, np.dtype[np.uint8]], int]:
    """Draw the area shapes in file order (later on top); returns the (H, W) mask and skips."""
    height, width = size
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    skipped = 0
    for shape in annotation.shapes:
        kind = shape.get("shape_type") or "polygon"
        points = [(float(x), float(y)) for x, y in shape["points"]]
        fill = classes.get(shape["label"], 0)
        if kind == "polygon" and len(points) >= 3:
            draw.polygon(points, fill=fill, outline=fill)
        elif kind == "rectangle" and len(points) == 2:
            (x0, y0), (x1, y1) = points
            draw.rectangle((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), fill=fill)
        elif kind == "circle" and len(points) == 2:
            (cx, cy), (px, py) = points
            radius = math.hypot(px - cx, py - cy)
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill)
        elif kind in LINE_SHAPES or kind == "polygon":
            skipped += 1  # no area to fill (a polygon of fewer than 3 points has none either)
        else:
            raise LabelmeError(
                f"{annotation.path}: shape {shape['label']!r} of type {kind!r} with {len(points)} "
                f"points cannot be drawn; supported: polygon (3+ points), rectangle and circle "
                f"(2 points); {', '.join(LINE_SHAPES)} are skipped"
            )
    return np.asarray(canvas, dtype=np.uint8), skipped


def convert_labelme(
    src: Path, dst: Path, *, labels: Sequence[str] | None = None
) -> ConversionResult:
    """Convert a folder of labelme JSON files into `dst/images`, `dst/masks`, `dst/classes.json`.

    Args:
        src: Folder holding the labelme `*.json` files (and usually their images).
        dst: Output dataset folder (images/masks layout).
        labels: Class names in index order (background is added as class 0); by default the
            sorted label names found.

    Raises:
        LabelmeError: no JSON files, bad JSON, missing images, or labels outside `labels`.
    """
    if not src.is_dir():
        raise LabelmeError(f"labelme folder {src} does not exist")
    files = sorted(src.glob("*.json"))
    if not files:
        raise LabelmeError(f"no labelme .json files in {src}")
    annotations = [_load(path) for path in files]
    names = _class_names(annotations, labels)
    classes = {name: index for index, name in enumerate(names)}
    images_dir, masks_dir = dst / "images", dst / "masks"
    images_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    skipped = 0
    for annotation in annotations:
        image_file = _write_image(annotation, images_dir)
        mask, skipped_here = _rasterise(annotation, image_size(image_file), classes)
        skipped += skipped_here
        write_mask(masks_dir / f"{annotation.path.stem}.png", mask)
    write_classes_file(dst, names)
    if skipped:
        logger.warning("skipped %d line/point shapes: they have no area to fill", skipped)
    logger.info("converted %d labelme files into %s (%s)", len(files), dst, ", ".join(names))
    return ConversionResult(len(files), tuple(names), images_dir, masks_dir, skipped)
