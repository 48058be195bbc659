"""The synthetic demo dataset: deterministic, complete and clean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainer.data.classes_file import read_classes_file
from trainer.data.demo import DEMO_CLASS_NAMES, DEMO_TEST_COUNT, make_demo_dataset
from trainer.data.image_files import read_image, read_mask
from trainer.data.inspection import inspect_dataset
from trainer.data.layout import discover_layout
from trainer.data.split import evaluation_samples


def _files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    make_demo_dataset(tmp_path / "one", count=6, size=32, seed=7)
    make_demo_dataset(tmp_path / "two", count=6, size=32, seed=7)
    make_demo_dataset(tmp_path / "three", count=6, size=32, seed=8)

    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert len(one) == 6 * 2 + 1
    assert one == two
    assert one != _files(tmp_path / "three")


def test_all_classes_present_and_inspection_is_clean(tmp_path: Path) -> None:
    demo = make_demo_dataset(tmp_path, count=12, size=48)

    report = inspect_dataset(demo.root)

    assert demo.count == 12
    assert demo.class_names == DEMO_CLASS_NAMES == ("background", "circle", "square", "triangle")
    assert report.ok, report.errors
    assert report.num_classes == 4
    assert report.class_names == list(DEMO_CLASS_NAMES)
    assert all(item["pixel_share"] > 0.01 for item in report.classes)
    image = read_image(tmp_path / "images" / "demo_0000.png")
    mask = read_mask(tmp_path / "masks" / "demo_0000.png")
    assert image.shape == (48, 48, 3)
    assert image.dtype == np.uint8
    assert mask.shape == (48, 48)
    assert set(np.unique(mask).tolist()) <= {0, 1, 2, 3}
    classes = read_classes_file(tmp_path)
    assert classes is not None
    assert classes.colors is not None
    assert len(set(classes.colors)) == 4


def test_shapes_have_their_own_colour_family(tmp_path: Path) -> None:
    make_demo_dataset(tmp_path, count=9, size=64)
    means: dict[int, list[np.ndarray]] = {kind: [] for kind in (1, 2, 3)}
    for index in range(9):
        image = read_image(tmp_path / "images" / f"demo_{index:04d}.png").astype(float)
        mask = read_mask(tmp_path / "masks" / f"demo_{index:04d}.png")
        for kind, values in means.items():
            if (mask == kind).any():
                values.append(image[mask == kind].mean(axis=0))
    dominant = {kind: int(np.argmax(np.mean(values, axis=0))) for kind, values in means.items()}
    assert dominant == {1: 0, 2: 1, 3: 2}  # circles red, squares green, triangles blue


def test_a_test_split_is_held_out_of_training(tmp_path: Path) -> None:
    make_demo_dataset(tmp_path, count=6, size=32, test_count=3)

    layout = discover_layout(tmp_path, include_test=True)

    assert [sample.name for sample in layout.samples] == [f"demo_{i:04d}" for i in range(6)]
    test = evaluation_samples(layout, "test", val_fraction=0.2, seed=0)
    assert [sample.name for sample in test] == [f"test/demo_{i:04d}" for i in range(6, 9)]
    assert inspect_dataset(tmp_path).ok
    held_out = read_mask(tmp_path / "masks" / "test" / "demo_0006.png")
    assert held_out.shape == (32, 32)


def test_rejects_tiny_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="size"):
        make_demo_dataset(tmp_path, size=8)


def test_the_demo_data_command_holds_out_a_test_split_like_segtrack_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from segtrack.cli import main

    args = ["--count", "3", "--size", "16"]
    assert main(["demo-data", str(tmp_path / "default"), *args]) == 0
    assert f"and {DEMO_TEST_COUNT} test pairs under images/test" in capsys.readouterr().out
    default = tmp_path / "default"
    assert len(list((default / "images").glob("*.png"))) == 3
    assert len(list((default / "images" / "test").glob("*.png"))) == DEMO_TEST_COUNT
    assert len(list((default / "masks" / "test").glob("*.png"))) == DEMO_TEST_COUNT

    assert main(["demo-data", str(tmp_path / "two"), *args, "--test-count", "2"]) == 0
    assert len(list((tmp_path / "two" / "masks" / "test").glob("*.png"))) == 2
    assert main(["demo-data", str(tmp_path / "none"), *args, "--test-count", "0"]) == 0
    assert not (tmp_path / "none" / "images" / "test").exists()
    capsys.readouterr()
    assert main(["demo-data", str(tmp_path / "bad"), *args, "--test-count", "-1"]) == 2
    assert "test_count >= 0" in capsys.readouterr().err
