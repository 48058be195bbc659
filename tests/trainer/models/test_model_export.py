"""Every model exports to ONNX (dynamic N, H, W) and TorchScript with unchanged logits."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest
import torch
from torch import Tensor, nn

from trainer.models.registry import MODEL_BUILDERS, build_model_by_name

TINY_OPTIONS: dict[str, dict[str, Any]] = {
    "unet": {"base_channels": 8, "depth": 3},
    "unet++": {"base_channels": 8, "depth": 3, "deep_supervision": True},
    "vgg16-unet": {"base_channels": 8},
    "resnet18-unet": {"base_channels": 8, "encoder_width": 8},
    "resnet34-unet": {"base_channels": 8, "encoder_width": 8},
    "resnet50-unet": {"base_channels": 8, "encoder_width": 8},
}
# Two sizes that are not multiples of any stride, with different batch sizes.
INPUTS = ((1, 37, 53), (2, 20, 71))


def eval_model(name: str, upsampling: str) -> nn.Module:
    torch.manual_seed(0)
    model = build_model_by_name(
        name, in_channels=3, out_channels=2, upsampling=upsampling, **TINY_OPTIONS[name]
    )
    return model.eval()


def inputs() -> list[Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(n, 3, h, w, generator=generator) for n, h, w in INPUTS]


@pytest.mark.parametrize("upsampling", ["bilinear", "transpose"])
@pytest.mark.parametrize("name", sorted(MODEL_BUILDERS))
def test_onnx_export_with_dynamic_axes(tmp_path: Path, name: str, upsampling: str) -> None:
    model = eval_model(name, upsampling)
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of dynamo; it is still the
        # one that handles dynamic axes without extra dependencies.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (inputs()[0],),
            str(path),
            opset_version=17,
            dynamo=False,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={
                "image": {0: "batch", 2: "height", 3: "width"},
                "logits": {0: "batch", 2: "height", 3: "width"},
            },
        )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    for x in inputs():
        with torch.no_grad():
            expected = model(x).numpy()
        (actual,) = session.run(["logits"], {"image": x.numpy()})
        assert actual.shape == expected.shape == (x.shape[0], 2, *x.shape[2:])
        assert np.abs(actual - expected).max() < 1e-4


@pytest.mark.parametrize("upsampling", ["bilinear", "transpose"])
@pytest.mark.parametrize("name", sorted(MODEL_BUILDERS))
def test_torchscript_trace_keeps_sizes_dynamic(name: str, upsampling: str) -> None:
    model = eval_model(name, upsampling)
    first, second = inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.trace is deprecated
        traced = torch.jit.trace(model, first)  # type: ignore[no-untyped-call]

    for x in (first, second):
        with torch.no_grad():
            torch.testing.assert_close(traced(x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODEL_BUILDERS))
def test_torch_compile_captures_one_graph_with_dynamic_sizes(name: str) -> None:
    model = eval_model(name, "bilinear")
    graphs: list[torch.fx.GraphModule] = []

    def eager_backend(graph: torch.fx.GraphModule, example_inputs: list[Tensor]) -> Any:
        graphs.append(graph)
        return graph.forward

    compiled = torch.compile(model, backend=eager_backend, fullgraph=True, dynamic=True)
    # torch specialises any size of 1, which would compile a second graph: batches of 2 and 3,
    # and sizes that stay above 1 down to the deepest stage (stride 32), none a multiple of it.
    generator = torch.Generator().manual_seed(0)
    for n, h, w in ((2, 37, 53), (3, 45, 71)):
        x = torch.randn(n, 3, h, w, generator=generator)
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), model(x))
    assert len(graphs) == 1, f"{len(graphs)} graphs compiled for two input sizes"
