"""Dataset rules: paths stay inside the configured roots, folders are inspected before use, and
a registered dataset's report is reused while its folder is unchanged (same fingerprint).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from server.dataset import repository
from server.dataset.schemas import DatasetCreate, DatasetPatch
from server.errors import Conflict, DatasetRejected, InvalidInput, PathNotAllowed
from server.events import record_event
from server.models import Dataset, utcnow
from server.root_paths import is_inside, paths_inside
from server.settings import Settings
from trainer.colors import default_palette
from trainer.config import TrainConfig
from trainer.data.errors import DatasetLayoutError
from trainer.data.image_files import UnreadableFileError
from trainer.data.inspection import inspect_dataset, inspect_for_config
from trainer.data.mask_encoding import MaskValueError
from trainer.data.report import InspectionReport

logger = logging.getLogger(__name__)

_INSPECTION_ERRORS = (DatasetLayoutError, UnreadableFileError, MaskValueError, OSError)


def _roots(settings: Settings) -> list[Path]:
    return [root.resolve() for root in settings.dataset_roots]


def resolve_dataset_path(settings: Settings, raw: str, *, field: str = "path") -> Path:
    """The real folder `raw` names, which must lie inside a dataset root (`paths_inside`).

    Raises:
        PathNotAllowed: the folder resolves outside every root (the message lists the roots).
        InvalidInput: the folder does not exist.
    """
    roots = _roots(settings)
    listed = ", ".join(str(root) for root in roots)
    inside = paths_inside(raw, roots)
    if inside is None:
        raise PathNotAllowed(
            f"dataset path {raw!r} is outside the allowed dataset roots ({listed}); "
            "set SEGTRACK_DATASET_ROOTS to allow more folders",
            {"field": field, "allowed_roots": [str(root) for root in roots]},
        )
    for folder in inside:
        if folder.is_dir():
            return folder
    raise InvalidInput(
        f"dataset folder {raw!r} does not exist under the dataset roots ({listed})",
        [{"field": field, "message": f"no folder {raw!r} under {listed}"}],
    )


def require_inside_roots(roots: Sequence[Path], dataset: Dataset, path: Path) -> Path:
    """`path` (the dataset's folder or one of its files) resolved, refused unless that is still
    inside a dataset root: a folder registered there may since have been swapped for a symlink
    that leads elsewhere, or the roots changed. Called before every read of a dataset's files;
    reading the returned path leaves no later symlink swap on the way to it unchecked.

    Raises:
        PathNotAllowed: `path` resolves outside every dataset root (403).
    """
    resolved = path.resolve()
    if is_inside(resolved, roots):
        return resolved
    listed = ", ".join(str(root) for root in roots)
    raise PathNotAllowed(
        f"dataset {dataset.name!r}: {path} now leads outside the dataset roots ({listed}), "
        "so its files are not served; move the data back inside a root (a symlink there may "
        "only point inside a root too)",
        {"field": "dataset", "allowed_roots": [str(root) for root in roots]},
    )


def fingerprint(folder: Path) -> str:
    """Cheap change detector: number of files and the newest modification time in the tree."""
    count = 0
    newest = folder.stat().st_mtime_ns
    for current, directories, files in os.walk(folder):
        base = Path(current)
        for name in directories + files:
            try:
                newest = max(newest, (base / name).stat().st_mtime_ns)
            except OSError:
                continue
        count += len(files)
    return f"{count}:{newest}"


def _rejected(folder: Path, error: Exception) -> DatasetRejected:
    message = str(error)
    return DatasetRejected(
        f"dataset {folder} cannot be used: {message}",
        {"root": str(folder), "ok": False, "errors": [message], "warnings": []},
    )


def _check(report: InspectionReport) -> dict[str, Any]:
    details = report.to_dict()
    if not report.ok:
        raise DatasetRejected(report.format_errors(), details)
    return details


def default_colors(num_classes: int) -> list[str]:
    """The trainer's default palette (also used by `segtrack predict --overlay`) as '#rrggbb'."""
    return [f"#{red:02x}{green:02x}{blue:02x}" for red, green, blue in default_palette(num_classes)]


def _hex(colors: Sequence[Sequence[int]]) -> list[str]:
    return [f"#{red:02x}{green:02x}{blue:02x}" for red, green, blue in colors]


def initial_colors(report: InspectionReport) -> list[str]:
    """A newly registered dataset's class colours, as '#rrggbb': those its classes file
    (classes.json) gives, else the colours RGB-coded masks are drawn in, else the default
    palette."""
    layout = report.dataset
    given = layout.class_colors if layout is not None else None
    if given is not None and len(given) == report.num_classes:
        return _hex(given)
    classes = report.classes
    if report.encoding.mode == "rgb" and classes:
        values = [item.get("value") for item in classes]
        colours = [value for value in values if isinstance(value, list) and len(value) == 3]
        if len(colours) == len(values):
            return _hex(colours)
    return default_colors(report.num_classes)


def register_dataset(session: Session, settings: Settings, body: DatasetCreate) -> Dataset:
    """Inspect the folder and register it under `body.name`.

    Raises:
        Conflict: the name is taken. PathNotAllowed / InvalidInput: see resolve_dataset_path.
        DatasetRejected: the inspection found errors (details: the report).
    """
    if repository.by_name(session, body.name) is not None:
        raise Conflict(f"a dataset named {body.name!r} exists already; pick another name")
    folder = resolve_dataset_path(settings, body.path)
    try:
        report = inspect_dataset(
            folder,
            layout=body.layout,
            mask_suffix=body.mask_suffix,
            num_classes=body.num_classes,
            class_names=body.class_names,
            mask_ignore_value=body.mask_ignore_value,
        )
    except _INSPECTION_ERRORS as error:
        raise _rejected(folder, error) from error
    details = _check(report)
    colors = body.class_colors or initial_colors(report)
    if len(colors) != report.num_classes:
        raise InvalidInput(
            f"class_colors has {len(colors)} entries but the dataset has {report.num_classes} "
            "classes",
            [{"field": "class_colors", "message": f"give {report.num_classes} colours"}],
        )
    now = utcnow()
    return repository.add_dataset(
        session,
        Dataset(
            name=body.name,
            path=str(folder),
            layout=report.layout,
            report=details,
            class_names=list(report.class_names),
            class_colors=colors,
            num_classes=report.num_classes,
            num_pairs=report.num_pairs,
            fingerprint=fingerprint(folder),
            created_at=now,
            updated_at=now,
        ),
    )


def update_dataset(session: Session, id_or_name: str, body: DatasetPatch) -> Dataset:
    """Change a dataset's display settings. New class colours are announced with a `dataset`
    event in the same transaction, so every open page showing the dataset repaints.

    Raises:
        NotFound: no such dataset. InvalidInput: not one colour per class.
    """
    dataset = repository.get_dataset(session, id_or_name)
    if body.class_colors is not None:
        if len(body.class_colors) != dataset.num_classes:
            raise InvalidInput(
                f"class_colors has {len(body.class_colors)} entries but dataset "
                f"{dataset.name!r} has {dataset.num_classes} classes",
                [{"field": "class_colors", "message": f"give {dataset.num_classes} colours"}],
            )
        colors = list(body.class_colors)
        if colors != dataset.class_colors:
            dataset.class_colors = colors
            dataset.updated_at = utcnow()
            record_event(
                session,
                "dataset",
                None,
                {
                    "action": "colors",
                    "dataset_id": dataset.id,
                    "name": dataset.name,
                    "class_colors": colors,
                },
            )
    return dataset


def _stored_report_applies(dataset: Dataset, cfg: TrainConfig) -> bool:
    """Whether the config inspects the dataset exactly as its registration did."""
    report = dataset.report
    return (
        cfg.layout in ("auto", dataset.layout)
        and cfg.mask_suffix in (None, report.get("mask_suffix"))
        and cfg.num_classes in (None, dataset.num_classes)
        and cfg.class_names in (None, dataset.class_names)
        and cfg.mask_ignore_value is None
        and cfg.in_channels in (None, report.get("in_channels"))
    )


def report_for_config(
    session: Session, cfg: TrainConfig, dataset: Dataset | None
) -> dict[str, Any]:
    """The inspection report of the config's dataset, reusing a registered dataset's report
    while its folder's fingerprint is unchanged (a changed folder is re-inspected and stored).

    Raises:
        DatasetRejected: the inspection found errors (details: the report).
    """
    folder = Path(cfg.dataset)
    if dataset is not None and _stored_report_applies(dataset, cfg):
        current = fingerprint(folder)
        if current == dataset.fingerprint:
            if not dataset.report.get("ok", False):
                raise DatasetRejected(f"dataset {dataset.name!r} failed inspection", dataset.report)
            return dataset.report
        logger.info("dataset %s changed on disk; inspecting it again", dataset.name)
        try:
            report = inspect_for_config(cfg)
        except _INSPECTION_ERRORS as error:
            raise _rejected(folder, error) from error
        details = report.to_dict()
        dataset.report = details
        dataset.fingerprint = current
        dataset.num_pairs = report.num_pairs
        dataset.updated_at = utcnow()
        return _check(report)
    try:
        report = inspect_for_config(cfg)
    except _INSPECTION_ERRORS as error:
        raise _rejected(folder, error) from error
    return _check(report)
