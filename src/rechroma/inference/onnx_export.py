"""Export the generator to ONNX, for runtimes other than PyTorch, and check it.

The graph takes `(N, 1, H, W)` L in [-1, 1] with H and W multiples of the model's
stride (16 for the shipped U-Net) and returns `(N, 2, H, W)` ab in [-1, 1]: pad other
sizes by repeating edge pixels first and crop the output, as `UNet.forward` does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rechroma.errors import RechromaError
from rechroma.models.checkpoint import load_generator

# A size that is a multiple of every stride we build; H and W are dynamic in the graph.
EXPORT_SHAPE = (1, 1, 192, 256)
OPSET = 17


class OnnxUnavailable(RechromaError):
    """The `onnx` package (needed to write ONNX files) is not installed."""


@dataclass(frozen=True)
class OnnxCheck:
    """How closely ONNX Runtime reproduces PyTorch on an input the export never saw."""

    shape: tuple[int, ...]
    max_abs_diff: float


def export_onnx(weights: Path, out: Path) -> Path:
    """Write the generator in `weights` to `out` as ONNX (opset 17, dynamic H and W)."""
    try:
        import onnx  # noqa: F401  (torch's exporter needs it; fail with our message first)
    except ImportError as exc:
        raise OnnxUnavailable("ONNX export needs the onnx package: pip install onnx") from exc
    model, _ = load_generator(weights)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The tracer warns about the pad-to-stride branch; the export size needs no
        # padding, so the graph has none and takes multiples of the stride.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            model,
            (torch.zeros(EXPORT_SHAPE),),
            str(out),
            dynamo=False,
            opset_version=OPSET,
            input_names=["lightness"],
            output_names=["ab"],
            dynamic_axes={"lightness": {0: "batch", 2: "height", 3: "width"}, "ab": {0: "batch"}},
        )
    return out


def check_onnx(
    onnx_path: Path, weights: Path, shape: tuple[int, ...] = (2, 1, 128, 320)
) -> OnnxCheck:
    """Run the ONNX file with ONNX Runtime and PyTorch on the same random input.

    Raises `ModuleNotFoundError` when onnxruntime is not installed.
    """
    import onnxruntime

    model, _ = load_generator(weights)
    rng = np.random.default_rng(0)
    l_norm = rng.uniform(-1, 1, shape).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(l_norm)).numpy()
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["ab"], {"lightness": l_norm})
    return OnnxCheck(shape=shape, max_abs_diff=float(np.abs(got - expected).max()))
