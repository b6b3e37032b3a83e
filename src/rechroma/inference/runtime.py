"""The colour network on ONNX Runtime: the same graph as PyTorch's, faster on a CPU.

On this project's 2-core CPU ONNX Runtime runs the Lite0 U-Net at render size 128 in
about two thirds of PyTorch's time (26 against 41 ms), a 1 MP JPEG end to end in 47
against 61 ms, and with another process holding a core its network slows by 40%
where PyTorch's slows fivefold (docs/BENCHMARKS.md); its answer agrees with PyTorch's
to 0.001 ab units. Two things make it pay inside the pipeline, not only alone:
its threads do not spin after a call (spinning threads took the cores from the PyTorch
and NumPy work that follows and the gain vanished), and the graph is exported once per
weights file and cached, so a command line run pays the export (about 2 s) only the
first time.

The graph takes L alone: a photo with colour hints runs on PyTorch, which has the hint
inputs and the spreading around them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rechroma.errors import InvalidOptionError
from rechroma.paths import default_cache_dir

logger = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "onnx")
# Bumped when the exported graph would change for the same weights (opset, export code).
GRAPH_VERSION = 1


class OnnxNetwork:
    """A generator's ONNX graph in an ONNX Runtime session; called like the module."""

    def __init__(self, path: Path, stride: int, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle threads that spin hold a core the rest of the photo needs (see above).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.path = path
        self.stride = stride

    def __call__(self, l_norm: torch.Tensor) -> torch.Tensor:
        """`(B, 1, H, W)` L in [-1, 1] -> `(B, 2, H, W)` ab in [-1, 1], any H and W."""
        height, width = l_norm.shape[-2:]
        pad_h, pad_w = -height % self.stride, -width % self.stride
        if pad_h or pad_w:
            # The same edge replication the PyTorch module applies inside its forward:
            # the graph was traced at a size that needed none, so it has no such branch.
            l_norm = F.pad(l_norm, (0, pad_w, 0, pad_h), mode="replicate")
        (ab,) = self.session.run(["ab"], {"lightness": np.ascontiguousarray(l_norm.numpy())})
        return torch.from_numpy(ab)[..., :height, :width]


def graph_path(weights_sha256: str, cache_dir: Path | None = None) -> Path:
    """Where the graph exported from the weights with this SHA-256 is cached: one file per
    weights file, PyTorch version (its exporter writes the graph) and graph version."""
    key = f"{weights_sha256}-{torch.__version__}-{GRAPH_VERSION}"
    name = f"generator-{hashlib.sha256(key.encode()).hexdigest()[:20]}.onnx"
    return (cache_dir or default_cache_dir()) / "onnx" / name


def onnx_network(
    model: torch.nn.Module,
    weights: Path,
    weights_sha256: str,
    threads: int,
    cache_dir: Path | None = None,
) -> OnnxNetwork:
    """The network of `weights` on ONNX Runtime, exported into the cache on first use.

    Raises `ImportError` when onnx or onnxruntime is missing and `OSError` when the cache
    cannot be written; the caller decides whether PyTorch will do instead.
    """
    import onnxruntime  # noqa: F401  (fail before minutes of export, not after)

    from rechroma.inference.onnx_export import export_onnx

    stride = int(getattr(model, "stride", 1))
    path = graph_path(weights_sha256, cache_dir)
    if path.is_file():
        try:
            return OnnxNetwork(path, stride, threads)
        except Exception as exc:  # a truncated or damaged cache file: export it again
            logger.warning("the cached ONNX graph %s is unusable (%s); exporting again", path, exc)
    path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("exporting the network to ONNX once, cached in %s", path)
    # Written beside its final name and renamed into place, so a concurrent process or
    # a kill mid-export never leaves a half-written graph under that name.
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=".export-", suffix=".onnx")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            # The exporter's notes on shape inference are for its developers, not users.
            warnings.simplefilter("ignore", UserWarning)
            export_onnx(weights, Path(partial))
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)
    return OnnxNetwork(path, stride, threads)


def choose_runtime(runtime: str, device: torch.device) -> str:
    """Check `runtime` ("auto", "torch" or "onnx") against the device it would run on."""
    if runtime not in RUNTIMES:
        raise InvalidOptionError(f"runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
    if runtime == "onnx" and device.type != "cpu":
        raise InvalidOptionError(f"runtime 'onnx' runs on the CPU, not on {device.type!r}")
    if runtime == "auto":
        return "onnx" if device.type == "cpu" else "torch"
    return runtime
