"""Finding a dataset's image/mask pairs in the three folder layouts.

Torch-free. `discover_layout` only lists folders; reading pixels is `inspection`'s job.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from trainer.data.classes_file import ClassesFile, read_classes_file
from trainer.data.errors import DatasetLayoutError
from trainer.data.image_files import IMAGE_SUFFIXES, UnreadableFileError, read_palette
from trainer.data.mask_encoding import Colour, RawValue

logger = logging.getLogger(__name__)

LayoutKind = Literal["images-masks", "voc", "class-folders"]
LAYOUT_NAMES: tuple[str, ...] = ("auto", "images-masks", "voc", "class-folders")
IMAGE_DIR_NAMES: tuple[str, ...] = ("images", "imgs")
MASK_DIR_NAMES: tuple[str, ...] = ("masks", "labels")
TRAIN_DIR_NAMES: tuple[str, ...] = ("train", "training")
VAL_DIR_NAMES: tuple[str, ...] = ("val", "valid", "validation")
TEST_DIR_NAMES: tuple[str, ...] = ("test", "testing")
VOC_YEARS: tuple[str, ...] = ("VOC2012", "VOC2007")
VOC_IGNORE_VALUE = 255
VOC_CLASS_NAMES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
_SUFFIX_SEPARATORS = "_-."

LAYOUTS_HELP = (
    "accepted layouts:\n"
    "  images-masks: images/ (or imgs/) + masks/ (or labels/), pairs matched by file name with an "
    "optional mask suffix such as '_mask'; images/train + images/val (and masks/train + masks/val) "
    "give a fixed split\n"
    "  voc: JPEGImages/ + SegmentationClass/ + ImageSets/Segmentation/{train,val}.txt, or a folder "
    "holding VOC2012/ or VOC2007/ (e.g. VOCdevkit)\n"
    "  class-folders: images/ + masks/<class name>/<image name>.png, one binary mask per class\n"
    "  optional at the dataset root: classes.json or classes.txt naming the classes"
)


@dataclass(frozen=True)
class Sample:
    """One training example: an image and its mask file(s).

    Attributes:
        name: Unique name (the image stem, prefixed with "train/" or "val/" in split folders).
        image: Image file.
        masks: One mask file; in class-folders layouts one entry per foreground class, None where
            that class has no file for this image (the class is absent).
    """

    name: str
    image: Path
    masks: tuple[Path | None, ...]


@dataclass(frozen=True)
class DatasetLayout:
    """What `discover_layout` found.

    `class_names`, `class_colors` and `class_values` come from `classes_file` when there is one;
    palette VOC masks without one get the 21 Pascal VOC names. `unmatched_*` hold file paths
    relative to `root`.
    """

    kind: LayoutKind
    root: Path
    samples: tuple[Sample, ...]
    split: dict[str, tuple[str, ...]] | None = None
    class_names: tuple[str, ...] | None = None
    class_colors: tuple[Colour, ...] | None = None
    class_values: tuple[RawValue, ...] | None = None
    default_ignore_value: int | None = None
    unmatched_images: tuple[str, ...] = ()
    unmatched_masks: tuple[str, ...] = ()
    mask_suffix: str = ""
    classes_file: Path | None = None
    test_samples: tuple[Sample, ...] = ()
    """Held-out pairs (images/test + masks/test, or VOC's test.txt), looked for only when asked
    (`include_test`); they are never part of `samples`, so training never sees them."""


# --- folder listing and matching ------------------------------------------------------------------


def _child_dir(parent: Path, names: Sequence[str]) -> Path | None:
    """The sub-folder of `parent` named like one of `names` (case-insensitive), in that order."""
    if not parent.is_dir():
        return None
    folders = {entry.name.lower(): entry for entry in parent.iterdir() if entry.is_dir()}
    for name in names:
        if name.lower() in folders:
            return folders[name.lower()]
    return None


def _image_files(folder: Path, prefix: str = "") -> dict[str, Path]:
    """Stem (with `prefix`) -> file for the image files in `folder`, one per stem."""
    files: dict[str, Path] = {}
    rank = {suffix: position for position, suffix in enumerate(IMAGE_SUFFIXES)}
    candidates = [
        entry
        for entry in folder.iterdir()
        if entry.suffix.lower() in rank and not entry.name.startswith(".") and entry.is_file()
    ]
    for entry in sorted(candidates, key=lambda e: (e.stem, rank[e.suffix.lower()], e.name)):
        name = prefix + entry.stem
        if name in files:
            logger.warning("%s and %s share a name; using the first", files[name], entry)
            continue
        files[name] = entry
    return files


def _has_image_files(folder: Path) -> bool:
    return any(
        entry.suffix.lower() in IMAGE_SUFFIXES and entry.is_file() for entry in folder.iterdir()
    )


def _detect_suffix(image_names: set[str], mask_names: Sequence[str]) -> str:
    """The mask-name suffix ("" or e.g. "_mask") that pairs the most masks with an image."""
    matches: Counter[str] = Counter()
    for mask in mask_names:
        if mask in image_names:
            matches[""] += 1
        for position, char in enumerate(mask):
            if char in _SUFFIX_SEPARATORS and position > 0 and mask[:position] in image_names:
                matches[mask[position:]] += 1
    if not matches:
        return ""
    return max(matches.items(), key=lambda item: (item[1], -len(item[0])))[0]


def _strip_suffix(name: str, suffix: str) -> str | None:
    if not suffix:
        return name
    return name[: -len(suffix)] if name.endswith(suffix) and len(name) > len(suffix) else None


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _describe_folder(root: Path) -> str:
    if not root.is_dir():
        return "nothing (the folder does not exist)"
    entries = sorted(
        entry.name + ("/" if entry.is_dir() else "")
        for entry in root.iterdir()
        if not entry.name.startswith(".")
    )
    if not entries:
        return "an empty folder"
    shown = ", ".join(entries[:15])
    return shown + (f" and {len(entries) - 15} more" if len(entries) > 15 else "")


def _no_pairs(root: Path, kind: str, detail: str) -> DatasetLayoutError:
    return DatasetLayoutError(
        f"{root} looks like a {kind} dataset but no image has a matching mask ({detail}); "
        "images and masks pair by file name without the suffix (e.g. images/a.jpg <-> "
        "masks/a.png, or masks/a_mask.png with mask_suffix '_mask')"
    )


# --- images/ + masks/ -----------------------------------------------------------------------------


def _split_dirs(image_dir: Path, mask_dir: Path) -> dict[str, tuple[Path, Path]] | None:
    """{"train": (images/train, masks/train), "val": ...} when both folders have both parts."""
    parts: dict[str, tuple[Path, Path]] = {}
    for part, names in (("train", TRAIN_DIR_NAMES), ("val", VAL_DIR_NAMES)):
        images, masks = _child_dir(image_dir, names), _child_dir(mask_dir, names)
        if images is None or masks is None:
            return None
        parts[part] = (images, masks)
    return parts


def _pair(
    images: dict[str, Path], masks: dict[str, Path], suffix: str, root: Path
) -> tuple[list[Sample], list[str]]:
    """Samples of the masks whose name (less `suffix`) is an image's, and the unmatched masks."""
    samples: list[Sample] = []
    unmatched_masks: list[str] = []
    for mask_name, mask_path in masks.items():
        name = _strip_suffix(mask_name, suffix)
        if name is None or name not in images:
            unmatched_masks.append(_relative(mask_path, root))
            continue
        samples.append(Sample(name, images[name], (mask_path,)))
    return samples, unmatched_masks


def _test_pairs(root: Path, image_dir: Path, mask_dir: Path, suffix: str) -> tuple[Sample, ...]:
    """Pairs of images/test + masks/test, named "test/<stem>"; none without both folders."""
    images, masks = _child_dir(image_dir, TEST_DIR_NAMES), _child_dir(mask_dir, TEST_DIR_NAMES)
    if images is None or masks is None:
        return ()
    samples, _ = _pair(
        _image_files(images, prefix="test/"), _image_files(masks, prefix="test/"), suffix, root
    )
    return tuple(sorted(samples, key=lambda s: s.name))


def _images_masks(
    root: Path, image_dir: Path, mask_dir: Path, mask_suffix: str | None, *, include_test: bool
) -> DatasetLayout:
    images: dict[str, Path] = {}
    masks: dict[str, Path] = {}
    split_dirs = _split_dirs(image_dir, mask_dir)
    if split_dirs is not None:
        for part, (part_images, part_masks) in split_dirs.items():
            images |= _image_files(part_images, prefix=f"{part}/")
            masks |= _image_files(part_masks, prefix=f"{part}/")
    else:
        images, masks = _image_files(image_dir), _image_files(mask_dir)
    suffix = mask_suffix if mask_suffix is not None else _detect_suffix(set(images), list(masks))
    samples, unmatched_masks = _pair(images, masks, suffix, root)
    paired = {sample.name for sample in samples}
    if not samples:
        raise _no_pairs(
            root,
            "images/masks",
            f"{len(images)} images in {_relative(image_dir, root)}/, {len(masks)} masks in "
            f"{_relative(mask_dir, root)}/, mask suffix {suffix!r}",
        )
    split = None
    if split_dirs is not None:
        split = {
            part: tuple(sorted(s.name for s in samples if s.name.startswith(f"{part}/")))
            for part in split_dirs
        }
    return DatasetLayout(
        kind="images-masks",
        root=root,
        samples=tuple(sorted(samples, key=lambda s: s.name)),
        split=split,
        unmatched_images=tuple(_relative(p, root) for n, p in images.items() if n not in paired),
        unmatched_masks=tuple(sorted(unmatched_masks)),
        mask_suffix=suffix,
        test_samples=_test_pairs(root, image_dir, mask_dir, suffix) if include_test else (),
    )


# --- class folders --------------------------------------------------------------------------------


def _class_folders(
    root: Path,
    image_dir: Path,
    mask_dir: Path,
    mask_suffix: str | None,
    classes: ClassesFile | None,
) -> DatasetLayout:
    folders = {
        entry.name: entry
        for entry in mask_dir.iterdir()
        if entry.is_dir() and not entry.name.startswith(".")
    }
    if classes is not None:
        foreground = list(classes.names[1:])
        unknown = sorted(set(folders) - set(foreground))
        if unknown:
            raise DatasetLayoutError(
                f"mask folders {unknown} are not named in {classes.path} (classes after "
                f"the background: {foreground})"
            )
    else:
        foreground = sorted(folders)
    images = _image_files(image_dir)
    class_masks = [_image_files(folders[name]) if name in folders else {} for name in foreground]
    all_names = [name for masks in class_masks for name in masks]
    suffix = mask_suffix if mask_suffix is not None else _detect_suffix(set(images), all_names)
    by_image: dict[str, list[Path | None]] = {}
    unmatched_masks: list[str] = []
    for position, masks in enumerate(class_masks):
        for mask_name, mask_path in masks.items():
            name = _strip_suffix(mask_name, suffix)
            if name is None or name not in images:
                unmatched_masks.append(_relative(mask_path, root))
                continue
            by_image.setdefault(name, [None] * len(foreground))[position] = mask_path
    if not by_image:
        raise _no_pairs(
            root,
            "class-folders",
            f"{len(images)} images, {len(all_names)} masks in {len(folders)} "
            f"class folders, mask suffix {suffix!r}",
        )
    samples = tuple(Sample(name, images[name], tuple(by_image[name])) for name in sorted(by_image))
    return DatasetLayout(
        kind="class-folders",
        root=root,
        samples=samples,
        class_names=("background", *foreground),
        unmatched_images=tuple(_relative(p, root) for n, p in images.items() if n not in by_image),
        unmatched_masks=tuple(sorted(unmatched_masks)),
        mask_suffix=suffix,
    )


# --- Pascal VOC -----------------------------------------------------------------------------------


def _voc_root(root: Path) -> Path | None:
    candidates = [root]
    for parent in (root, root / "VOCdevkit"):
        candidates += [parent / year for year in VOC_YEARS]
    for candidate in candidates:
        if (candidate / "JPEGImages").is_dir() and (candidate / "SegmentationClass").is_dir():
            return candidate
    return None


def _read_names(path: Path) -> tuple[str, ...]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetLayoutError(f"cannot read split file {path}: {error}") from error
    return tuple(line.split()[0] for line in lines if line.strip())


def _voc_test_pairs(
    sets: Path, images: dict[str, Path], masks: dict[str, Path]
) -> tuple[Sample, ...]:
    """Pairs listed in ImageSets/Segmentation/test.txt; none without the file."""
    if not (sets / "test.txt").is_file():
        return ()
    return tuple(
        Sample(name, images[name], (masks[name],))
        for name in _read_names(sets / "test.txt")
        if name in images and name in masks
    )


def _voc(root: Path, *, default_names: bool, include_test: bool) -> DatasetLayout:
    images = _image_files(root / "JPEGImages")
    masks = _image_files(root / "SegmentationClass")
    sets = root / "ImageSets" / "Segmentation"
    listed: dict[str, tuple[str, ...]] = {}
    for part in ("train", "val"):
        if (sets / f"{part}.txt").is_file():
            listed[part] = _read_names(sets / f"{part}.txt")
    if len(listed) < 2:
        listed = (
            {"trainval": _read_names(sets / "trainval.txt")}
            if (sets / "trainval.txt").is_file()
            else {}
        )
    wanted = {name for names in listed.values() for name in names} if listed else set(masks)
    pairs = sorted(name for name in wanted if name in images and name in masks)
    missing = sorted(wanted - set(pairs))
    if not pairs:
        raise _no_pairs(root, "Pascal VOC", f"{len(images)} images, {len(masks)} masks")
    split = (
        {
            part: tuple(n for n in names if n in images and n in masks)
            for part, names in listed.items()
        }
        if "train" in listed
        else None
    )
    class_names: tuple[str, ...] | None = None
    if default_names:
        try:
            if read_palette(masks[pairs[0]]) is not None:
                class_names = VOC_CLASS_NAMES
        except UnreadableFileError:
            pass  # inspection reads every mask and reports the broken one
    return DatasetLayout(
        kind="voc",
        root=root,
        samples=tuple(Sample(name, images[name], (masks[name],)) for name in pairs),
        split=split,
        class_names=class_names,
        default_ignore_value=VOC_IGNORE_VALUE,
        unmatched_images=tuple(
            _relative(images[name], root) if name in images else f"{name} (listed, no image)"
            for name in missing
        ),
        unmatched_masks=tuple(_relative(masks[n], root) for n in sorted(set(masks) - set(images))),
        test_samples=_voc_test_pairs(sets, images, masks) if include_test else (),
    )


# --- entry point ----------------------------------------------------------------------------------


def image_folder(root: Path) -> Path | None:
    """The folder of the images of the dataset at `root`, or None where `root` holds no dataset
    layout: a VOC folder's `JPEGImages` (also inside VOC2012/, VOC2007/ or VOCdevkit/), else
    `images/` (or `imgs/`) beside `masks/` (or `labels/`). Its sub-folders (train, val, test)
    are part of it; the masks never are."""
    voc = _voc_root(root)
    if voc is not None:
        return voc / "JPEGImages"
    images = _child_dir(root, IMAGE_DIR_NAMES)
    return images if images is not None and _child_dir(root, MASK_DIR_NAMES) else None


def _detect_kind(root: Path) -> LayoutKind:
    if _voc_root(root) is not None:
        return "voc"
    image_dir, mask_dir = _child_dir(root, IMAGE_DIR_NAMES), _child_dir(root, MASK_DIR_NAMES)
    if image_dir is None or mask_dir is None:
        raise DatasetLayoutError(
            f"no dataset layout recognised in {root}; found {_describe_folder(root)}.\n"
            + LAYOUTS_HELP
        )
    if (
        _split_dirs(image_dir, mask_dir) is None
        and not _has_image_files(mask_dir)
        and any(entry.is_dir() for entry in mask_dir.iterdir())
    ):
        return "class-folders"
    return "images-masks"


def discover_layout(
    root: Path, *, layout: str = "auto", mask_suffix: str | None = None, include_test: bool = False
) -> DatasetLayout:
    """Find the image/mask pairs under `root`.

    Args:
        root: Dataset folder.
        layout: "auto" (detect), "images-masks", "voc" or "class-folders".
        mask_suffix: Suffix of mask stems (e.g. "_mask"); detected when None.
        include_test: Also collect the held-out test pairs into `test_samples` (images/test +
            masks/test next to train/ and val/ or loose files, or VOC's test.txt).

    Raises:
        DatasetLayoutError: no known layout, no pairs, or a malformed classes file.
    """
    if layout not in LAYOUT_NAMES:
        raise DatasetLayoutError(f"unknown layout {layout!r}; allowed: {', '.join(LAYOUT_NAMES)}")
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset folder {root} does not exist or is not a folder")
    kind = _detect_kind(root) if layout == "auto" else layout
    if kind == "voc":
        voc_root = _voc_root(root)
        if voc_root is None:
            raise DatasetLayoutError(
                f"{root} is not a Pascal VOC folder; found {_describe_folder(root)}.\n"
                + LAYOUTS_HELP
            )
        classes = read_classes_file(voc_root) or read_classes_file(root)
        found = _voc(voc_root, default_names=classes is None, include_test=include_test)
    else:
        image_dir, mask_dir = _child_dir(root, IMAGE_DIR_NAMES), _child_dir(root, MASK_DIR_NAMES)
        if image_dir is None or mask_dir is None:
            raise DatasetLayoutError(
                f"{root} has no images/ and masks/ folders for layout {kind!r}; found "
                f"{_describe_folder(root)}.\n{LAYOUTS_HELP}"
            )
        classes = read_classes_file(root)
        if kind == "class-folders":
            found = _class_folders(root, image_dir, mask_dir, mask_suffix, classes)
        else:
            found = _images_masks(root, image_dir, mask_dir, mask_suffix, include_test=include_test)
    if classes is None:
        return found
    return replace(
        found,
        class_names=classes.names,
        class_colors=classes.colors,
        class_values=classes.values if found.kind != "class-folders" else None,
        classes_file=classes.path,
    )
