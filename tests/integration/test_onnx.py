"""ONNX export, checked against PyTorch with ONNX Runtime on a size it was not traced at."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime")

from rechroma.inference.onnx_export import check_onnx, export_onnx  # noqa: E402


def test_export_matches_pytorch_at_other_sizes(tiny_weights, tmp_path) -> None:
    path = export_onnx(tiny_weights, tmp_path / "model.onnx")
    for shape in [(1, 1, 64, 64), (3, 1, 96, 160)]:
        check = check_onnx(path, tiny_weights, shape)
        assert check.max_abs_diff < 1e-4


def test_export_command_reports_its_check(tiny_weights, tmp_path) -> None:
    out = tmp_path / "deploy" / "rechroma.onnx"
    done = subprocess.run(
        [sys.executable, "-m", "rechroma", "export-onnx", str(out), "--weights", str(tiny_weights)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    report = json.loads(done.stdout)
    assert report["onnx"] == str(out) and out.stat().st_size > 10_000
    assert report["check"]["max_abs_diff"] < 1e-4


def test_lite0_unet_exports_and_matches_pytorch(tiny_hint_weights, tmp_path) -> None:
    """The v1 network (with its hint inputs at zero) exports and agrees with PyTorch."""
    path = export_onnx(tiny_hint_weights, tmp_path / "v1.onnx")
    for shape in [(1, 1, 64, 96), (2, 1, 128, 64)]:
        assert check_onnx(path, tiny_hint_weights, shape).max_abs_diff < 1e-4


def _load(weights, runtime: str, **kwargs):
    from rechroma.inference.colorizer import Colorizer

    return Colorizer.load(weights, render_size=64, threads=1, runtime=runtime, **kwargs)


def test_onnx_runtime_colours_as_pytorch_does_at_any_size(tiny_hint_weights) -> None:
    """The default runtime on a CPU is ONNX Runtime, and its colour is PyTorch's: sizes
    that are not multiples of the network's stride are padded as the module pads them."""
    from rechroma.inference.hints import Hint

    fast, reference = _load(tiny_hint_weights, "auto"), _load(tiny_hint_weights, "torch")
    assert (fast.runtime, reference.runtime) == ("onnx", "torch")
    rng = np.random.default_rng(3)
    for width, height in [(64, 64), (97, 61), (300, 41)]:
        photo = Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8))
        got, expected = fast.predict(photo).ab, reference.predict(photo).ab
        assert got.shape == expected.shape
        assert (got - expected).abs().max() < 1e-2  # Lab units: invisible
        # Hints need the module's hint inputs: the same PyTorch answer on both.
        hints = [Hint(x=width / 2, y=height / 2, color="#c04020")]
        assert torch.equal(
            fast.predict(photo, hints=hints).ab, reference.predict(photo, hints=hints).ab
        )


def test_the_graph_is_exported_once_and_again_when_damaged(tiny_weights, tmp_path) -> None:
    from rechroma.inference.colorizer import Colorizer

    first = _load(tiny_weights, "onnx")
    graph = first.network.path
    assert graph.is_file()
    before = graph.stat().st_mtime_ns
    again = _load(tiny_weights, "onnx")
    assert again.network.path == graph and graph.stat().st_mtime_ns == before
    graph.write_bytes(b"not a graph")  # a kill mid-copy, a full disk, a bad sector
    repaired = Colorizer.load(tiny_weights, render_size=64, threads=1, runtime="onnx")
    photo = Image.linear_gradient("L").resize((80, 60))
    assert torch.equal(repaired.predict(photo).ab, first.predict(photo).ab)
    assert not list(graph.parent.glob(".export-*"))  # no half-written graph left behind


def test_without_a_usable_cache_auto_stays_on_pytorch(tiny_weights, tmp_path, monkeypatch) -> None:
    from rechroma.errors import InvalidOptionError

    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("RECHROMA_CACHE", str(blocked))
    assert _load(tiny_weights, "auto").runtime == "torch"
    with pytest.raises(InvalidOptionError, match="runtime 'onnx' is not available"):
        _load(tiny_weights, "onnx")


def test_onnx_runtime_is_for_the_cpu(tiny_weights) -> None:
    from rechroma.errors import InvalidOptionError
    from rechroma.inference.runtime import choose_runtime

    assert choose_runtime("auto", torch.device("cuda")) == "torch"
    with pytest.raises(InvalidOptionError, match="on the CPU"):
        choose_runtime("onnx", torch.device("cuda"))
    with pytest.raises(InvalidOptionError, match="not one of"):
        _load(tiny_weights, "tensorrt")


def test_the_command_line_offers_every_runtime() -> None:
    from rechroma.cli.options import RUNTIMES as CLI_RUNTIMES
    from rechroma.inference.runtime import RUNTIMES

    assert CLI_RUNTIMES == RUNTIMES
