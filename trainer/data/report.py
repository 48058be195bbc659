"""The dataset inspection report: what `inspect_dataset` found, and the error it raises.

`InspectionReport` holds the pairs, split sizes, image and mask facts, the class table and the
errors and warnings, and renders itself as JSON (`to_dict`) or terminal text (`format_text`);
`require_ok` turns a report with errors into a `DatasetError`. Torch-free: the web server shows the
same report before a run is queued.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainer.data.layout import DatasetLayout
from trainer.data.mask_encoding import MaskEncoding


class DatasetError(Exception):
    """A dataset that cannot be trained on; `report` holds the full inspection."""

    def __init__(self, report: InspectionReport) -> None:
        super().__init__(report.format_errors())
        self.report = report


@dataclass
class InspectionReport:
    """Everything `inspect_dataset` found; `errors` block training, `warnings` do not.

    `classes` holds one dict per class: index, name, value (raw value as JSON: int or [r, g, b]),
    pixel_share (0..1 of all mask pixels) and images_with_class. `image_sizes` holds min_height,
    max_height, min_width, max_width and all_equal.
    """

    root: str
    layout: str
    num_pairs: int
    num_train: int
    num_val: int
    unmatched_images: list[str]
    unmatched_masks: list[str]
    size_mismatches: list[dict[str, Any]]
    unreadable: list[dict[str, str]]
    classes: list[dict[str, Any]]
    ignored_share: float
    in_channels: int
    image_dtype: str
    image_sizes: dict[str, Any]
    encoding: MaskEncoding
    class_names: list[str]
    errors: list[str]
    warnings: list[str]
    mask_suffix: str = ""
    dataset: DatasetLayout | None = field(default=None, repr=False, compare=False)
    """The discovered layout (samples, split); not part of `to_dict`."""

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def num_classes(self) -> int:
        return self.encoding.num_classes

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the layout's file lists are left out)."""
        return {
            "root": self.root,
            "layout": self.layout,
            "num_pairs": self.num_pairs,
            "num_train": self.num_train,
            "num_val": self.num_val,
            "unmatched_images": list(self.unmatched_images),
            "unmatched_masks": list(self.unmatched_masks),
            "size_mismatches": [dict(item) for item in self.size_mismatches],
            "unreadable": [dict(item) for item in self.unreadable],
            "classes": [dict(item) for item in self.classes],
            "ignored_share": self.ignored_share,
            "in_channels": self.in_channels,
            "image_dtype": self.image_dtype,
            "image_sizes": dict(self.image_sizes),
            "encoding": self.encoding.to_dict(),
            "class_names": list(self.class_names),
            "num_classes": self.num_classes,
            "mask_suffix": self.mask_suffix,
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "ok": self.ok,
        }

    def format_errors(self) -> str:
        """The error part of the report: why this dataset cannot be trained on."""
        lines = [f"dataset {self.root} cannot be used for training:"]
        lines += [f"  - {error}" for error in self.errors]
        return "\n".join(lines)

    def format_text(self) -> str:
        """A readable multi-line report for the terminal."""
        sizes = self.image_sizes
        if sizes:
            size = f"{sizes['min_height']}x{sizes['min_width']}"
            if not sizes["all_equal"]:
                size += f" to {sizes['max_height']}x{sizes['max_width']}"
            size += " (height x width, all equal)" if sizes["all_equal"] else " (height x width)"
        else:
            size = "unknown"
        lines = [
            f"Dataset {self.root}",
            f"  layout {self.layout}: {self.num_pairs} image/mask pairs -> "
            f"{self.num_train} train / {self.num_val} val",
            f"  images: {self.in_channels} channel(s), {self.image_dtype}, {size}",
            f"  masks: {self.encoding.mode} values, {self.num_classes} classes"
            + (f", mask suffix {self.mask_suffix!r}" if self.mask_suffix else ""),
            "",
            f"  {'class':>5}  {'name':<20} {'raw value':<16} {'pixels':>8}  {'images':>6}",
        ]
        for item in self.classes:
            value = item["value"]
            raw = str(tuple(value)) if isinstance(value, list) else str(value)
            lines.append(
                f"  {item['index']:>5}  {item['name']:<20} {raw:<16} "
                f"{item['pixel_share']:>7.2%}  {item['images_with_class']:>6}"
            )
        if self.encoding.ignore_values:
            ignored = ", ".join(str(value) for value in self.encoding.ignore_values)
            lines.append(f"  ignored (raw {ignored}): {self.ignored_share:.2%} of pixels")
        for title, items in (("Errors", self.errors), ("Warnings", self.warnings)):
            if items:
                lines += ["", f"{title}:"] + [f"  - {item}" for item in items]
        lines += ["", "OK: ready to train" if self.ok else "NOT OK: fix the errors above"]
        return "\n".join(lines)


def require_ok(report: InspectionReport) -> InspectionReport:
    """Return `report`, or raise DatasetError when it has errors."""
    if not report.ok:
        raise DatasetError(report)
    return report


def default_class_names(num_classes: int) -> list[str]:
    """background, foreground for 2 classes; background, class_1, ... otherwise."""
    if num_classes == 2:
        return ["background", "foreground"]
    return ["background", *(f"class_{index}" for index in range(1, num_classes))]
