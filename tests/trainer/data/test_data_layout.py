"""Discovering the three dataset layouts, classes files and the train/val split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainer.data.classes_file import read_classes_file, write_classes_file
from trainer.data.errors import DatasetLayoutError
from trainer.data.layout import VOC_CLASS_NAMES, discover_layout
from trainer.data.split import evaluation_samples, split_samples


def _png(path: Path, array: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array if array is not None else np.zeros((8, 8), np.uint8)).save(path)
    return path


def _voc_mask(path: Path) -> None:
    image = Image.fromarray(np.array([[0, 1], [15, 255]], np.uint8))
    image.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def test_images_and_masks_matched_by_stem(tmp_path: Path) -> None:
    for name in ("b", "a", "c"):
        _png(tmp_path / "images" / f"{name}.png")
    _png(tmp_path / "images" / "d.jpg")
    for name in ("a", "b", "c", "e"):
        _png(tmp_path / "masks" / f"{name}.png")
    (tmp_path / "images" / "notes.txt").write_text("not an image")

    layout = discover_layout(tmp_path)

    assert layout.kind == "images-masks"
    assert [s.name for s in layout.samples] == ["a", "b", "c"]
    assert layout.samples[0].image == tmp_path / "images" / "a.png"
    assert layout.samples[0].masks == (tmp_path / "masks" / "a.png",)
    assert layout.unmatched_images == ("images/d.jpg",)
    assert layout.unmatched_masks == ("masks/e.png",)
    assert layout.mask_suffix == ""
    assert layout.split is None


def test_carvana_style_suffix_is_detected(tmp_path: Path) -> None:
    for name in ("0cdf5b5d0ce1_01", "0cdf5b5d0ce1_02", "fff9b3a5373f_16"):
        _png(tmp_path / "imgs" / f"{name}.png")
        _png(tmp_path / "masks" / f"{name}_mask.gif")

    layout = discover_layout(tmp_path)

    assert layout.mask_suffix == "_mask"
    assert len(layout.samples) == 3
    assert layout.samples[0].masks[0] is not None
    assert layout.samples[0].masks[0].name == "0cdf5b5d0ce1_01_mask.gif"
    assert layout.unmatched_masks == ()


def test_explicit_mask_suffix_and_label_folder(tmp_path: Path) -> None:
    _png(tmp_path / "images" / "x.png")
    _png(tmp_path / "labels" / "x-seg.png")
    _png(tmp_path / "labels" / "x.png")

    layout = discover_layout(tmp_path, mask_suffix="-seg")

    assert [s.masks[0].name for s in layout.samples if s.masks[0]] == ["x-seg.png"]
    assert layout.unmatched_masks == ("labels/x.png",)


def test_split_folders_give_the_split(tmp_path: Path) -> None:
    for part, names in (("train", ["a", "b"]), ("val", ["a"])):
        for name in names:
            _png(tmp_path / "images" / part / f"{name}.png")
            _png(tmp_path / "masks" / part / f"{name}.png")

    layout = discover_layout(tmp_path)

    assert layout.kind == "images-masks"
    assert layout.split == {"train": ("train/a", "train/b"), "val": ("val/a",)}
    assert [s.name for s in layout.samples] == ["train/a", "train/b", "val/a"]


def test_test_folders_are_held_out_and_found_only_when_asked(tmp_path: Path) -> None:
    for part, names in (("train", ["a", "b"]), ("val", ["c"]), ("test", ["d", "e"])):
        for name in names:
            _png(tmp_path / "images" / part / f"{name}.png")
            _png(tmp_path / "masks" / part / f"{name}_mask.png")

    training = discover_layout(tmp_path)
    layout = discover_layout(tmp_path, include_test=True)

    assert training.test_samples == ()
    assert [s.name for s in layout.samples] == ["train/a", "train/b", "val/c"]
    assert [s.name for s in layout.test_samples] == ["test/d", "test/e"]
    assert layout.test_samples[0].masks == (tmp_path / "masks" / "test" / "d_mask.png",)
    picked = {
        which: [s.name for s in evaluation_samples(layout, which, val_fraction=0.2, seed=0)]
        for which in ("test", "val", "all")
    }
    assert picked == {
        "test": ["test/d", "test/e"],
        "val": ["val/c"],
        "all": ["test/d", "test/e", "train/a", "train/b", "val/c"],
    }


def test_a_flat_dataset_with_a_test_folder(tmp_path: Path) -> None:
    for name in ("a", "b", "c", "d", "e"):
        _png(tmp_path / "images" / f"{name}.png")
        _png(tmp_path / "masks" / f"{name}.png")
    _png(tmp_path / "images" / "test" / "t.png")
    _png(tmp_path / "masks" / "test" / "t.png")

    layout = discover_layout(tmp_path, include_test=True)

    assert layout.kind == "images-masks"
    assert [s.name for s in layout.test_samples] == ["test/t"]
    # "val" is the seeded random part training holds out with the same fraction and seed.
    val = evaluation_samples(layout, "val", val_fraction=0.4, seed=7)
    expected = split_samples([s.name for s in layout.samples], None, val_fraction=0.4, seed=7)
    assert tuple(s.name for s in val) == expected.val


def test_a_missing_split_names_the_parts_there_are(tmp_path: Path) -> None:
    for name in ("a", "b", "c", "d", "e"):
        _png(tmp_path / "images" / f"{name}.png")
        _png(tmp_path / "masks" / f"{name}.png")
    layout = discover_layout(tmp_path, include_test=True)

    with pytest.raises(DatasetLayoutError) as caught:
        evaluation_samples(layout, "test", val_fraction=0.2, seed=0)
    message = str(caught.value)
    assert "no test split" in message and "images/test + masks/test" in message
    assert "val (1 pair, a random 20% held out with seed 0" in message
    assert "all (5 pairs)" in message
    assert "choose split 'val' or 'all'" in message
    with pytest.raises(DatasetLayoutError, match="choose one of test, val, all"):
        evaluation_samples(layout, "holdout", val_fraction=0.2, seed=0)


def test_voc_test_list(tmp_path: Path) -> None:
    for name in ("a", "b", "c", "t1", "t2"):
        _png(tmp_path / "JPEGImages" / f"{name}.jpg", np.zeros((2, 2, 3), np.uint8))
    for name in ("a", "b", "c", "t1"):
        _voc_mask(tmp_path / "SegmentationClass" / f"{name}.png")
    sets = tmp_path / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("a\nb\n")
    (sets / "val.txt").write_text("c\n")
    (sets / "test.txt").write_text("t1\nt2\n")

    layout = discover_layout(tmp_path, include_test=True)

    assert [s.name for s in layout.samples] == ["a", "b", "c"]
    assert [s.name for s in layout.test_samples] == ["t1"], "t2 has no mask"
    assert [s.name for s in evaluation_samples(layout, "all", val_fraction=0.2, seed=0)] == [
        "a", "b", "c", "t1",
    ]  # fmt: skip

    (sets / "test.txt").write_text("t2\n")
    no_masks = discover_layout(tmp_path, include_test=True)
    with pytest.raises(DatasetLayoutError, match=r"test\.txt lists no name with both"):
        evaluation_samples(no_masks, "test", val_fraction=0.2, seed=0)


@pytest.mark.parametrize("wrapper", ["", "VOCdevkit"])
def test_voc_layout_with_split_files(tmp_path: Path, wrapper: str) -> None:
    voc = tmp_path / "VOC2012"
    for name in ("2007_000032", "2007_000039", "2007_000063", "2008_000001"):
        _png(voc / "JPEGImages" / f"{name}.jpg", np.zeros((2, 2, 3), np.uint8))
    for name in ("2007_000032", "2007_000039", "2007_000063", "orphan"):
        _voc_mask(voc / "SegmentationClass" / f"{name}.png")
    sets = voc / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("2007_000032\n2007_000039\n")
    (sets / "val.txt").write_text("2007_000063\n")
    root = tmp_path
    if wrapper:
        root = tmp_path / wrapper
        root.mkdir()
        voc.rename(root / "VOC2012")

    layout = discover_layout(root)

    assert layout.kind == "voc"
    assert layout.root.name == "VOC2012"
    assert layout.split == {"train": ("2007_000032", "2007_000039"), "val": ("2007_000063",)}
    assert len(layout.samples) == 3
    assert layout.default_ignore_value == 255
    assert layout.class_names == VOC_CLASS_NAMES
    assert len(VOC_CLASS_NAMES) == 21
    assert layout.unmatched_masks == ("SegmentationClass/orphan.png",)
    assert layout.unmatched_images == ()


def test_voc_trainval_fallback(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        _png(tmp_path / "JPEGImages" / f"{name}.jpg", np.zeros((2, 2, 3), np.uint8))
        _voc_mask(tmp_path / "SegmentationClass" / f"{name}.png")
    sets = tmp_path / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "trainval.txt").write_text("a\nb\nmissing\n")

    layout = discover_layout(tmp_path, layout="voc")

    assert layout.split is None
    assert [s.name for s in layout.samples] == ["a", "b"]
    assert layout.unmatched_images == ("missing (listed, no image)",)


def test_class_folders(tmp_path: Path) -> None:
    for name in ("img1", "img2", "img3"):
        _png(tmp_path / "images" / f"{name}.png")
    _png(tmp_path / "masks" / "nucleus" / "img1.png")
    _png(tmp_path / "masks" / "nucleus" / "img2.png")
    _png(tmp_path / "masks" / "cell" / "img2.png")
    _png(tmp_path / "masks" / "cell" / "ghost.png")

    layout = discover_layout(tmp_path)

    assert layout.kind == "class-folders"
    assert layout.class_names == ("background", "cell", "nucleus")
    by_name = {s.name: s for s in layout.samples}
    assert set(by_name) == {"img1", "img2"}
    assert by_name["img1"].masks == (None, tmp_path / "masks" / "nucleus" / "img1.png")
    assert by_name["img2"].masks[0] == tmp_path / "masks" / "cell" / "img2.png"
    assert layout.unmatched_images == ("images/img3.png",)
    assert layout.unmatched_masks == ("masks/cell/ghost.png",)


def test_class_folders_follow_the_classes_file(tmp_path: Path) -> None:
    _png(tmp_path / "images" / "a.png")
    _png(tmp_path / "masks" / "zebra" / "a.png")
    _png(tmp_path / "masks" / "ant" / "a.png")
    write_classes_file(tmp_path, ["background", "zebra", "ant"])

    layout = discover_layout(tmp_path, layout="class-folders")

    assert layout.class_names == ("background", "zebra", "ant")
    assert layout.samples[0].masks == (
        tmp_path / "masks" / "zebra" / "a.png",
        tmp_path / "masks" / "ant" / "a.png",
    )
    write_classes_file(tmp_path, ["background", "zebra"])
    with pytest.raises(DatasetLayoutError, match="ant"):
        discover_layout(tmp_path)


def test_classes_files(tmp_path: Path) -> None:
    write_classes_file(
        tmp_path, ["background", "road"], values=[0, (128, 64, 128)], colors=[(0, 0, 0), (1, 2, 3)]
    )
    classes = read_classes_file(tmp_path)
    assert classes is not None
    assert classes.names == ("background", "road")
    assert classes.values == (0, (128, 64, 128))
    assert classes.colors == ((0, 0, 0), (1, 2, 3))

    (tmp_path / "classes.json").unlink()
    (tmp_path / "classes.txt").write_text("background\n\ncat\ndog\n")
    classes = read_classes_file(tmp_path)
    assert classes is not None
    assert classes.names == ("background", "cat", "dog")
    assert classes.values is None


def test_classes_file_values_reach_the_layout(tmp_path: Path) -> None:
    _png(tmp_path / "images" / "a.png")
    _png(tmp_path / "masks" / "a.png")
    write_classes_file(tmp_path, ["sky", "ground"], values=[10, 20])
    layout = discover_layout(tmp_path)
    assert layout.class_names == ("sky", "ground")
    assert layout.class_values == (10, 20)


@pytest.mark.parametrize(
    "content",
    ["{not json", '{"classes": []}', '{"classes": [{"value": 1}]}', '{"classes": ["a", "a"]}'],
)
def test_malformed_classes_json_is_a_layout_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "classes.json").write_text(content)
    with pytest.raises(DatasetLayoutError, match=r"classes\.json"):
        read_classes_file(tmp_path)


def test_unknown_folder_names_what_was_found_and_what_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "pictures").mkdir()
    (tmp_path / "readme.md").write_text("x")

    with pytest.raises(DatasetLayoutError) as caught:
        discover_layout(tmp_path)

    message = str(caught.value)
    assert "pictures/" in message
    assert "readme.md" in message
    for accepted in ("images-masks", "images/", "masks/", "JPEGImages/", "class-folders"):
        assert accepted in message


def test_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        discover_layout(tmp_path / "missing")
    with pytest.raises(DatasetLayoutError, match="allowed: auto, images-masks"):
        discover_layout(tmp_path, layout="coco")
    _png(tmp_path / "images" / "a.png")
    _png(tmp_path / "masks" / "b.png")
    with pytest.raises(DatasetLayoutError, match="no image has a matching mask"):
        discover_layout(tmp_path)
    with pytest.raises(DatasetLayoutError, match="not a Pascal VOC folder"):
        discover_layout(tmp_path, layout="voc")


def test_random_split_sizes_and_determinism() -> None:
    names = [f"s{i:02d}" for i in range(10)]
    split = split_samples(names, None, val_fraction=0.2, seed=3)
    again = split_samples(list(reversed(names)), None, val_fraction=0.2, seed=3)
    other = [split_samples(names, None, val_fraction=0.2, seed=seed).val for seed in range(5)]

    assert len(split.train) == 8
    assert len(split.val) == 2
    assert split == again
    assert len(set(other)) > 1
    assert set(split.train).isdisjoint(split.val)


@pytest.mark.parametrize(("count", "fraction", "val"), [(2, 0.2, 1), (3, 0.2, 1), (3, 0.9, 2)])
def test_small_sets_keep_one_sample_each_side(count: int, fraction: float, val: int) -> None:
    split = split_samples([str(i) for i in range(count)], None, val_fraction=fraction, seed=0)
    assert len(split.val) == val
    assert len(split.train) == count - val


def test_layout_split_wins_unless_a_side_is_empty() -> None:
    names = ["a", "b", "c", "d"]
    fixed = split_samples(
        names, {"train": ("a", "b", "c"), "val": ("d",)}, val_fraction=0.5, seed=0
    )
    assert (fixed.train, fixed.val, fixed.source) == (("a", "b", "c"), ("d",), "layout")

    fallback = split_samples(names, {"train": tuple(names), "val": ()}, val_fraction=0.5, seed=0)
    assert fallback.source == "random"
    assert len(fallback.val) == 2
    assert fallback.note is not None
    assert "0 val" in fallback.note


def test_write_classes_file_json_shape(tmp_path: Path) -> None:
    path = write_classes_file(
        tmp_path / "new", ["background", "car"], colors=[(0, 0, 0), (9, 8, 7)]
    )
    assert json.loads(path.read_text()) == {
        "classes": [
            {"name": "background", "value": 0, "color": [0, 0, 0]},
            {"name": "car", "value": 1, "color": [9, 8, 7]},
        ]
    }
