from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.trainer.factories import binary_demo_dataset, tiny_config
from trainer.data.demo import make_demo_dataset
from trainer.export import ExportError, export_model
from trainer.loop import fit
from trainer.predict import PredictError, PredictOptions, predict_paths


@pytest.fixture(scope="module")
def demo_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    dataset = make_demo_dataset(root / "data", count=24, size=48, seed=2).root
    fit(tiny_config(dataset, epochs=2), out_dir=root / "run")
    return root / "run" / "best.pt"


def _recode_dataset(source: Path, target: Path, colours: dict[int, tuple[int, int, int]]) -> None:
    """Copy a demo dataset, writing its index masks as RGB colour masks."""
    (target / "images").mkdir(parents=True)
    (target / "masks").mkdir()
    for image in sorted((source / "images").iterdir()):
        index = np.array(Image.open(source / "masks" / image.name))
        rgb = np.zeros((*index.shape, 3), dtype=np.uint8)
        for value, colour in colours.items():
            rgb[index == value] = colour
        Image.fromarray(rgb).save(target / "masks" / image.name)
        (target / "images" / image.name).write_bytes(image.read_bytes())


def test_predict_writes_masks_at_the_original_size(demo_checkpoint: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs" / "nested"
    inputs.mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)).save(inputs / "odd.png")
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(inputs / "grey.png")
    options = PredictOptions(batch_size=2, probabilities=True, overlays=True, flip_tta=True)
    summary = predict_paths(demo_checkpoint, [tmp_path / "inputs"], tmp_path / "out", options)

    assert len(summary.masks) == 2
    odd = np.array(Image.open(tmp_path / "out" / "nested" / "odd.png"))
    assert odd.shape == (37, 53)
    assert set(np.unique(odd)) <= {0, 1, 2, 3}
    probabilities = np.load(tmp_path / "out" / "nested" / "odd_prob.npy")
    assert probabilities.shape == (4, 37, 53)
    assert np.allclose(probabilities.astype(np.float32).sum(axis=0), 1.0, atol=1e-2)
    with Image.open(tmp_path / "out" / "nested" / "odd_overlay.png") as overlay:
        assert overlay.size == (53, 37) and overlay.mode == "RGB"


def test_predict_writes_back_the_rgb_palette_of_the_training_masks(tmp_path: Path) -> None:
    colours = {0: (0, 0, 0), 1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 0, 255)}
    demo = make_demo_dataset(tmp_path / "demo", count=16, size=48, seed=4).root
    _recode_dataset(demo, tmp_path / "rgb", colours)
    fit(tiny_config(tmp_path / "rgb", epochs=1), out_dir=tmp_path / "run")

    predict_paths(tmp_path / "run" / "best.pt", [tmp_path / "rgb" / "images"], tmp_path / "out")
    written = np.array(Image.open(next((tmp_path / "out").iterdir())).convert("RGB"))
    found = {tuple(int(c) for c in colour) for colour in written.reshape(-1, 3)}
    assert found <= set(colours.values())


def test_predict_writes_back_0_255_binary_masks(tmp_path: Path) -> None:
    binary = binary_demo_dataset(tmp_path, seed=5)
    fit(tiny_config(binary, epochs=2, loss="bce+dice"), out_dir=tmp_path / "run")

    predict_paths(tmp_path / "run" / "best.pt", [binary / "images"], tmp_path / "out")
    values = set()
    for path in (tmp_path / "out").iterdir():
        values |= set(np.unique(np.array(Image.open(path))).tolist())
    assert values <= {0, 255}
    assert 255 in values


def test_predict_rejects_wrong_inputs(demo_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(PredictError, match="does not exist"):
        predict_paths(demo_checkpoint, [tmp_path / "missing.png"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PredictError, match="no images found"):
        predict_paths(demo_checkpoint, [tmp_path / "empty"], tmp_path / "out")
    np.save(tmp_path / "five.npy", np.zeros((16, 16, 5), dtype=np.float32))
    with pytest.raises(PredictError, match="5 channel"):
        predict_paths(demo_checkpoint, [tmp_path / "five.npy"], tmp_path / "out")


@pytest.mark.parametrize("export_format", ["onnx", "torchscript"])
def test_export_matches_pytorch(demo_checkpoint: Path, tmp_path: Path, export_format: str) -> None:
    out = tmp_path / f"model.{export_format}"
    result = export_model(demo_checkpoint, export_format, out, size=(48, 48))
    assert out.exists()
    assert len(result.max_abs_diff) == 2
    assert max(result.max_abs_diff.values()) < 1e-3


def test_export_rejects_unknown_formats(demo_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="onnx, torchscript"):
        export_model(demo_checkpoint, "tflite", tmp_path / "model.tflite")


def test_cli_train_predict_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from segtrack.cli import main

    demo_data = ["demo-data", str(tmp_path / "data"), "--count", "12", "--size", "32"]
    assert main([*demo_data, "--test-count", "0"]) == 0
    config = tmp_path / "config.yaml"
    config.write_text(
        f"dataset: {tmp_path / 'data'}\nbase_channels: 8\ndepth: 2\nepochs: 1\n"
        "num_workers: 0\naugment: none\n",
        encoding="utf-8",
    )
    run = tmp_path / "run"
    assert main(["train", str(config), "--set", "batch_size=4", "--out", str(run)]) == 0
    assert {"metrics.csv", "best.pt", "last.pt", "config.json"} <= {p.name for p in run.iterdir()}
    assert json.loads((run / "config.json").read_text(encoding="utf-8"))["batch_size"] == 4

    assert main(["train", "--resume", str(run / "last.pt"), "--set", "epochs=2"]) == 0
    with (run / "metrics.csv").open(encoding="utf-8") as handle:
        assert len(handle.readlines()) == 3

    out = tmp_path / "masks"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(run / "best.pt"),
                "--out",
                str(out),
                str(tmp_path / "data" / "images"),
            ]
        )
        == 0
    )
    assert len(list(out.iterdir())) == 12
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(run / "best.pt"),
                "--format",
                "onnx",
                "--out",
                str(tmp_path / "m.onnx"),
            ]
        )
        == 0
    )
    capsys.readouterr()


def test_cli_reports_user_errors_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from segtrack.cli import main

    config = tmp_path / "bad.yaml"
    config.write_text("dataset: x\nmodel: resnet\n", encoding="utf-8")
    assert main(["train", str(config)]) == 2
    assert "model: got 'resnet'" in capsys.readouterr().err

    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(tmp_path / "none.pt"),
                "--out",
                str(tmp_path),
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err

    (tmp_path / "images").mkdir()
    assert main(["inspect-data", str(tmp_path)]) == 1
    assert "error" in capsys.readouterr().out.lower()
