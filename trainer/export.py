"""`segtrack export`: ONNX or TorchScript files, each checked against the PyTorch model's output.

The exported graph takes normalised float input (N, C, H, W) and returns logits (N, K, H, W), with
batch, height and width left dynamic; the check runs two sizes (the training size and a second,
odd one) so a graph that froze a shape is caught here, not in production.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from trainer.predict import load_for_inference

logger = logging.getLogger(__name__)

ExportFormat = Literal["onnx", "torchscript"]
EXPORT_FORMATS: tuple[str, ...] = ("onnx", "torchscript")
DEFAULT_SIZE = (256, 256)
TOLERANCE = 1e-3
ONNX_OPSET = 17


class ExportError(RuntimeError):
    """An export that failed or whose output does not match PyTorch's."""


@dataclass(frozen=True)
class ExportResult:
    """The written file and how closely it matched PyTorch on each checked input size."""

    path: Path
    format: str
    max_abs_diff: dict[str, float]


def _check_sizes(height: int, width: int) -> list[tuple[int, int]]:
    # A second size that is not a multiple of any stride exercises the padding path.
    return [(height, width), (height + 24 + 3, width + 8 + 5)]


def _export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of the torch.export one, which
        # needs onnxscript; the legacy path handles dynamic spatial sizes of these models well.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={
                "image": {0: "batch", 2: "height", 3: "width"},
                "logits": {0: "batch", 2: "height", 3: "width"},
            },
        )


def _run_onnx(path: Path, inputs: torch.Tensor) -> np.ndarray:
    import onnxruntime  # noqa: PLC0415 - heavy, only needed to check an export

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(["logits"], {"image": inputs.numpy()})
    return np.asarray(output)


def _export_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        # TorchScript is deprecated upstream but still what many C++/mobile runtimes load.
        # Tracing warns about every shape-derived integer; the two-size check below is what
        # tells whether the traced graph stayed dynamic.
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example, check_trace=False)  # type: ignore[no-untyped-call]
        torch.jit.save(traced, str(path))


def _run_torchscript(path: Path, inputs: torch.Tensor) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    with torch.inference_mode():
        return np.asarray(loaded(inputs).numpy())


def export_model(
    checkpoint_path: Path,
    export_format: str,
    out: Path,
    *,
    size: tuple[int, int] | None = None,
) -> ExportResult:
    """Export the checkpoint's model to `out` and verify it; raises ExportError on mismatch."""
    if export_format not in EXPORT_FORMATS:
        raise ExportError(
            f"unknown export format {export_format!r}; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    checkpoint, model = load_for_inference(checkpoint_path, torch.device("cpu"))
    height, width = size or checkpoint.config.image_size or DEFAULT_SIZE
    example = torch.randn(1, checkpoint.in_channels, height, width)
    out.parent.mkdir(parents=True, exist_ok=True)
    exporter, runner = (
        (_export_onnx, _run_onnx)
        if export_format == "onnx"
        else (_export_torchscript, _run_torchscript)
    )
    try:
        exporter(model, example, out)
    except Exception as error:
        raise ExportError(f"exporting to {export_format} failed: {error}") from error

    differences: dict[str, float] = {}
    generator = torch.Generator().manual_seed(0)
    for check_height, check_width in _check_sizes(height, width):
        inputs = torch.randn(
            2, checkpoint.in_channels, check_height, check_width, generator=generator
        )
        with torch.inference_mode():
            expected = model(inputs).numpy()
        actual = runner(out, inputs)
        if actual.shape != expected.shape:
            raise ExportError(
                f"the {export_format} file returns shape {actual.shape} for input "
                f"{tuple(inputs.shape)}, PyTorch returns {expected.shape}"
            )
        differences[f"{check_height}x{check_width}"] = float(np.abs(actual - expected).max())
    worst = max(differences.values())
    if worst > TOLERANCE:
        raise ExportError(
            f"the {export_format} output differs from PyTorch by up to {worst:.2e} "
            f"(tolerance {TOLERANCE:.0e}) at sizes {differences}"
        )
    logger.info("exported %s to %s; max |difference| per size: %s", export_format, out, differences)
    return ExportResult(path=out, format=export_format, max_abs_diff=differences)
