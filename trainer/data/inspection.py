"""Checking a dataset before training: pairs, sizes, channels, mask values and the class mapping.

Torch-free: the web server shows the same report before a run is queued. Errors stop a run before
epoch 1 (`require_ok`); warnings are shown and training goes on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainer.config import MAX_CLASSES, TrainConfig
from trainer.data.image_files import LOSSY_SUFFIXES, UnreadableFileError, read_image, read_palette
from trainer.data.layout import DatasetLayout, discover_layout
from trainer.data.mask_encoding import (
    Colour,
    EncodingMode,
    MaskEncoding,
    MaskValueError,
    RawValue,
    infer_encoding,
    pack_colour,
    raw_value_to_json,
    unpack_colour,
)
from trainer.data.report import InspectionReport, default_class_names
from trainer.data.scan import SampleScan, ValueTotals, scan_samples, total_values
from trainer.data.split import split_samples

logger = logging.getLogger(__name__)

RARE_CLASS_SHARE = 0.001
"""Classes below this share of all mask pixels get a warning."""
SIZE_SPREAD = 2.0
"""Image sides differing by more than this factor get a warning when no image_size is set."""
_LISTED = 20


def _count(number: int, noun: str, plural: str | None = None) -> str:
    """`1 mask`, `3 masks`."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def _listing(names: Sequence[str], limit: int = _LISTED) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# --- the class mapping ----------------------------------------------------------------------------


def _encoding_mode(
    layout: DatasetLayout, totals: ValueTotals
) -> tuple[EncodingMode, list[int] | None]:
    """The mask mode and, for palette masks, the palette of the first one."""
    if layout.kind == "class-folders":
        return "class-folders", None
    if totals.colour:
        return "rgb", None
    first = layout.samples[0].masks[0]
    try:
        palette = read_palette(first) if first is not None else None
    except UnreadableFileError:
        palette = None
    return ("index", palette) if palette is not None else ("grey", None)


def _class_values(
    layout: DatasetLayout, mode: EncodingMode, errors: list[str]
) -> tuple[RawValue, ...] | None:
    values = layout.class_values
    if mode == "rgb" and values is None:
        return layout.class_colors
    if values is not None and mode != "class-folders":
        colours = [isinstance(value, tuple) for value in values]
        if any(colours) != (mode == "rgb") or len(set(colours)) > 1:
            kind = "[r, g, b] colours" if mode == "rgb" else "int values"
            errors.append(f"the classes file's values must all be {kind}: the masks are {mode}")
            return None
    return values if mode != "class-folders" else None


def _fallback_encoding(mode: EncodingMode, found: list[int] | list[Colour]) -> MaskEncoding:
    """An encoding to describe the masks with when the real one cannot be inferred."""
    try:
        return infer_encoding(
            found[:MAX_CLASSES], mode=mode, num_classes=None, ignore_value=None, identity=False
        )
    except MaskValueError:
        return MaskEncoding(mode="grey", values=(0, 1))


def _layout_names(
    layout: DatasetLayout, totals: ValueTotals, num_classes: int | None, ignore_value: int | None
) -> tuple[str, ...] | None:
    """The layout's class names; the Pascal VOC defaults only while the masks fit them."""
    names = layout.class_names
    if names is None or layout.kind != "voc" or layout.classes_file is not None:
        return names
    # The 21 VOC names are a guess from palette masks; custom VOC-style sets have their own classes.
    largest = max((value for value in totals.pixels if value != ignore_value), default=0)
    if totals.colour or largest >= len(names) or num_classes not in (None, len(names)):
        return None
    return names


def _infer(
    layout: DatasetLayout,
    totals: ValueTotals,
    scans: Sequence[SampleScan],
    *,
    layout_names: Sequence[str] | None,
    num_classes: int | None,
    class_names: Sequence[str] | None,
    ignore_value: int | None,
    errors: list[str],
) -> MaskEncoding:
    mode, palette = _encoding_mode(layout, totals)
    found: list[int] | list[Colour] = (
        [unpack_colour(key) for key in sorted(totals.pixels)]
        if totals.colour
        else sorted(totals.pixels)
    )
    names = class_names if class_names is not None else layout_names
    hint = num_classes if num_classes is not None else (len(names) if names else None)
    class_values = _class_values(layout, mode, errors)
    identity = layout.kind in ("voc", "class-folders") or class_values is not None
    try:
        return infer_encoding(
            found,
            mode=mode,
            num_classes=hint,
            ignore_value=ignore_value,
            identity=identity,
            class_values=class_values,
            palette=palette,
            dtype="uint16" if any(scan.wide for scan in scans) else None,
        )
    except MaskValueError as error:
        errors.append(str(error))
        return _fallback_encoding(mode, found)


def _raw_key(value: RawValue, colour: bool) -> int:
    """The key `total_values` counts `value` under (grey g is (g, g, g) among colours)."""
    if isinstance(value, tuple):
        return pack_colour(value)
    return pack_colour((value, value, value)) if colour else value


def _class_table(
    encoding: MaskEncoding, totals: ValueTotals, names: Sequence[str]
) -> tuple[list[dict[str, Any]], float]:
    total = max(totals.total, 1)
    classes = []
    for index, value in enumerate(encoding.values):
        key = _raw_key(value, totals.colour)
        classes.append(
            {
                "index": index,
                "name": names[index] if index < len(names) else f"class_{index}",
                "value": raw_value_to_json(value),
                "pixel_share": totals.pixels.get(key, 0) / total,
                "images_with_class": totals.images.get(key, 0),
            }
        )
    ignored = sum(totals.pixels.get(_raw_key(v, totals.colour), 0) for v in encoding.ignore_values)
    return classes, ignored / total


def _resolve_names(
    encoding: MaskEncoding,
    layout_names: Sequence[str] | None,
    given: Sequence[str] | None,
    errors: list[str],
) -> list[str]:
    count = encoding.num_classes
    for source, names in (("class_names", given), ("the classes file", layout_names)):
        if names is None:
            continue
        if len(names) == count:
            return list(names)
        errors.append(
            f"{source} lists {len(names)} classes ({_listing(list(names))}) but the masks "
            f"have {count} classes ({encoding.describe()})"
        )
        break
    return default_class_names(count)


# --- checks ---------------------------------------------------------------------------------------


def _check_classes(
    report_classes: list[dict[str, Any]],
    encoding: MaskEncoding,
    errors: list[str],
    warnings: list[str],
) -> None:
    present = [item for item in report_classes if item["pixel_share"] > 0]
    if len(present) < 2 and report_classes:
        only = present[0]["name"] if present else "no class"
        errors.append(
            f"only {only!r} appears in the masks: there is nothing to learn (check that the "
            f"masks are the right files; mapping {encoding.describe()})"
        )
        return
    absent = [
        f"{item['index']} {item['name']!r}" for item in report_classes if not item["pixel_share"]
    ]
    if absent:
        warnings.append(f"classes never present in the masks: {_listing(absent)}")
    rare = [
        f"{item['index']} {item['name']!r} ({item['pixel_share']:.3%})"
        for item in report_classes
        if 0 < item["pixel_share"] < RARE_CLASS_SHARE
    ]
    if rare:
        warnings.append(
            f"classes on under {RARE_CLASS_SHARE:.1%} of pixels: {_listing(rare)}; the model may "
            "never predict them (consider class_weights or a dice loss)"
        )


def _check_encoding(
    encoding: MaskEncoding, totals: ValueTotals, scans: Sequence[SampleScan], warnings: list[str]
) -> None:
    if encoding.mode == "grey" and encoding.values == (0, 255):
        warnings.append(
            "masks hold 0 and 255: read as binary, 0 -> class 0 (background) and 255 -> class 1 "
            "(foreground); set mask_ignore_value: 255 if 255 marks pixels to ignore instead"
        )
    lossy = sum(
        1
        for scan in scans
        for path in scan.sample.masks
        if path is not None and path.suffix.lower() in LOSSY_SUFFIXES
    )
    if lossy:
        total = max(totals.total, 1)
        odd = sum(1 for count in totals.pixels.values() if count / total < RARE_CLASS_SHARE)
        # First: smeared values explain most of the other warnings.
        warnings.insert(
            0,
            f"{_count(lossy, 'mask is a JPEG file', 'masks are JPEG files')}: lossy compression "
            f"smears class values ({len(totals.pixels)} distinct values found, {odd} of them on "
            f"under {RARE_CLASS_SHARE:.1%} of pixels each); save masks as PNG",
        )
    overlapping = [scan for scan in scans if scan.overlap > 0]
    if overlapping:
        names = [scan.sample.name for scan in overlapping]
        warnings.append(
            f"{_count(len(overlapping), 'image has', 'images have')} pixels in more than one "
            "class mask "
            f"({sum(scan.overlap for scan in overlapping)} pixels); the later class wins: "
            f"{_listing(names)}"
        )


def _check_images(
    scans: Sequence[SampleScan],
    *,
    in_channels: int | None,
    image_size: tuple[int, int] | None,
    errors: list[str],
    warnings: list[str],
) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    """Channel and size checks; returns (channels, image size summary, size mismatches)."""
    shapes = [(scan.sample.name, scan.image_shape) for scan in scans if scan.image_shape]
    channels = Counter(shape[2] for _, shape in shapes)
    found_channels = channels.most_common(1)[0][0] if channels else 0
    if len(channels) > 1:
        odd = [name for name, shape in shapes if shape[2] != found_channels]
        counts = ", ".join(f"{count} with {c}" for c, count in sorted(channels.items()))
        errors.append(
            f"images have different channel counts ({counts}); convert them to one format: "
            f"{_listing(odd)}"
        )
    if in_channels is not None and channels and found_channels != in_channels:
        errors.append(f"in_channels is {in_channels} but the images have {found_channels}")
    mismatches = [
        {"name": scan.sample.name, "image": list(scan.image_shape[:2]), "mask": list(mask)}
        for scan in scans
        if scan.image_shape is not None
        for mask in scan.mask_shapes
        if tuple(mask) != scan.image_shape[:2]
    ]
    if mismatches:
        shown = [
            f"{m['name']} (image {'x'.join(map(str, m['image']))}, "
            f"mask {'x'.join(map(str, m['mask']))})"
            for m in mismatches
        ]
        errors.append(
            f"{_count(len(mismatches), 'mask differs', 'masks differ')} in size from its image: "
            f"{_listing(shown)}"
        )
    if not shapes:
        return found_channels, {}, mismatches
    heights = [shape[0] for _, shape in shapes]
    widths = [shape[1] for _, shape in shapes]
    sizes = {
        "min_height": min(heights),
        "max_height": max(heights),
        "min_width": min(widths),
        "max_width": max(widths),
        "all_equal": len({shape[:2] for _, shape in shapes}) == 1,
    }
    spread = max(max(heights) / min(heights), max(widths) / min(widths))
    if image_size is None and spread > SIZE_SPREAD:
        warnings.append(
            f"image sizes range from {min(heights)}x{min(widths)} to {max(heights)}x{max(widths)}; "
            "set image_size to train at one size (mixed sizes are padded per batch)"
        )
    return found_channels, sizes, mismatches


def _first_image_dtype(scans: Sequence[SampleScan]) -> str:
    for scan in scans:
        if scan.image_shape is not None:
            try:
                return str(read_image(scan.sample.image).dtype)
            except UnreadableFileError:
                continue
    return "unknown"


def inspect_dataset(
    root: Path,
    *,
    layout: str = "auto",
    mask_suffix: str | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    mask_ignore_value: int | None = None,
    in_channels: int | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    image_size: tuple[int, int] | None = None,
) -> InspectionReport:
    """Read every mask and image header under `root` and report what training would see.

    Raises:
        DatasetLayoutError: no recognised layout or no image/mask pair at all (nothing to report).
    """
    found = discover_layout(root, layout=layout, mask_suffix=mask_suffix)
    scans = scan_samples(found.samples, class_folders=found.kind == "class-folders")
    totals = total_values(scans)
    errors: list[str] = []
    warnings: list[str] = []

    if len(found.samples) < 2:
        errors.append(
            f"found {len(found.samples)} image/mask pair; training needs at least 2 "
            "(one to train on, one to validate)"
        )
    unreadable = [
        {"path": path, "reason": reason} for scan in scans for path, reason in scan.unreadable
    ]
    if unreadable:
        listed = [f"{item['path']} ({item['reason']})" for item in unreadable]
        errors.append(f"{_count(len(unreadable), 'file')} cannot be read: {_listing(listed)}")
    for files, what in (
        (found.unmatched_images, ("image has no mask", "images have no mask")),
        (found.unmatched_masks, ("mask has no image", "masks have no image")),
    ):
        if files:
            warnings.append(
                f"{_count(len(files), *what)} and {'is' if len(files) == 1 else 'are'} skipped: "
                f"{_listing(list(files))}"
            )

    channels, sizes, mismatches = _check_images(
        scans, in_channels=in_channels, image_size=image_size, errors=errors, warnings=warnings
    )
    ignore_value = (
        mask_ignore_value if mask_ignore_value is not None else found.default_ignore_value
    )
    layout_names = _layout_names(found, totals, num_classes, ignore_value)
    encoding = _infer(
        found,
        totals,
        scans,
        layout_names=layout_names,
        num_classes=num_classes,
        class_names=class_names,
        ignore_value=ignore_value,
        errors=errors,
    )
    resolved_names = _resolve_names(encoding, layout_names, class_names, errors)
    classes, ignored_share = _class_table(encoding, totals, resolved_names)
    _check_classes(classes, encoding, errors, warnings)
    _check_encoding(encoding, totals, scans, warnings)

    split = split_samples(
        [sample.name for sample in found.samples], found.split, val_fraction=val_fraction, seed=seed
    )
    if split.note:
        warnings.append(split.note)
    report = InspectionReport(
        root=str(found.root),
        layout=found.kind,
        num_pairs=len(found.samples),
        num_train=len(split.train),
        num_val=len(split.val),
        unmatched_images=list(found.unmatched_images),
        unmatched_masks=list(found.unmatched_masks),
        size_mismatches=mismatches,
        unreadable=unreadable,
        classes=classes,
        ignored_share=ignored_share,
        in_channels=channels,
        image_dtype=_first_image_dtype(scans),
        image_sizes=sizes,
        encoding=encoding,
        class_names=resolved_names,
        errors=errors,
        warnings=warnings,
        mask_suffix=found.mask_suffix,
        dataset=found,
    )
    logger.info(
        "inspected %s: %d pairs, %d classes, %d errors, %d warnings",
        report.root, report.num_pairs, report.num_classes, len(errors), len(warnings),
    )  # fmt: skip
    return report


def inspect_for_config(cfg: TrainConfig) -> InspectionReport:
    """`inspect_dataset` with the config's data settings."""
    return inspect_dataset(
        Path(cfg.dataset).expanduser(),
        layout=cfg.layout,
        mask_suffix=cfg.mask_suffix,
        num_classes=cfg.num_classes,
        class_names=cfg.class_names,
        mask_ignore_value=cfg.mask_ignore_value,
        in_channels=cfg.in_channels,
        val_fraction=cfg.val_fraction,
        seed=cfg.seed,
        image_size=cfg.image_size,
    )
