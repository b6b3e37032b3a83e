"""ONNX export, checked against PyTorch with ONNX Runtime on a size it was not traced at."""

import json
import subprocess
import sys

import pytest

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
