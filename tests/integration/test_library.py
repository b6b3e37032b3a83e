"""`from rechroma import colorize`: four kinds in, the same kind out, upright, alpha kept."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import rechroma
from rechroma.errors import InvalidOptionError
from rechroma.inference.colorizer import Colorizer
from rechroma.inference.hints import HintError

ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def shipped() -> Colorizer:
    return Colorizer.load(threads=1)


def _turned(real_photo) -> Image.Image:
    """The photo stored sideways with EXIF orientation 6 (turn 90 degrees to view it)."""
    upright = Image.open(real_photo).convert("RGB").resize((160, 120))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera writes
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", exif=exif.tobytes(), quality=95)
    return Image.open(io.BytesIO(buffer.getvalue()))


def test_import_rechroma_alone_does_not_load_torch() -> None:
    code = "import sys, rechroma; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_path_in_path_out(real_photo, tmp_path, shipped) -> None:
    src = tmp_path / "scan.jpg"
    src.write_bytes(real_photo.read_bytes())
    out = rechroma.colorize(src, colorizer=shipped)
    assert out == tmp_path / "scan-colour.jpg" and Image.open(out).size == Image.open(src).size
    chosen = rechroma.colorize(str(src), output=tmp_path / "x.png", colorizer=shipped)
    assert Image.open(chosen).format == "PNG"
    with pytest.raises(InvalidOptionError):
        rechroma.colorize(src, output=src, colorizer=shipped)


def test_bytes_in_bytes_out_upright_with_metadata(real_photo, shipped) -> None:
    turned = _turned(real_photo)
    buffer = io.BytesIO()
    turned.save(buffer, "JPEG", exif=turned.getexif().tobytes())
    out = rechroma.colorize(buffer.getvalue(), colorizer=shipped)
    assert isinstance(out, bytes)
    image = Image.open(io.BytesIO(out))
    assert image.format == "JPEG" and image.size == (160, 120)  # upright
    assert "rechroma" in image.getexif().get(0x0131, "")


def test_pil_in_pil_out_upright_and_alpha_kept(real_photo, shipped) -> None:
    turned = _turned(real_photo)
    out = rechroma.colorize(turned, colorizer=shipped)
    assert isinstance(out, Image.Image) and out.size == (160, 120) and out.mode == "RGB"
    assert turned.size == (120, 160)  # the caller's image is left as it was
    rgba = Image.open(real_photo).convert("RGBA").resize((64, 48))
    alpha = np.zeros((48, 64), dtype=np.uint8)
    alpha[:, 32:] = 255
    rgba.putalpha(Image.fromarray(alpha))
    out = rechroma.colorize(rgba, colorizer=shipped)
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[:, :, 3], alpha)


@pytest.mark.parametrize(
    ("dtype", "channels"),
    [(np.uint8, None), (np.uint8, 3), (np.uint8, 4), (np.uint16, None), (np.float32, 3)],
)
def test_array_in_array_out(real_photo, shipped, dtype, channels) -> None:
    gray = np.asarray(Image.open(real_photo).convert("L").resize((96, 64)))
    if dtype == np.uint16:
        array = gray.astype(np.uint16) * 257
    elif dtype == np.float32:
        array = np.repeat(gray[:, :, None], 3, axis=2).astype(np.float32) / 255
    elif channels:
        array = np.repeat(gray[:, :, None], channels, axis=2)
    else:
        array = gray
    out = rechroma.colorize(array, colorizer=shipped)
    assert isinstance(out, np.ndarray)
    assert out.shape == (64, 96, 4 if channels == 4 else 3)
    assert out.dtype == (np.float32 if dtype == np.float32 else np.uint8)
    spread = np.asarray(out, dtype=np.float32)[:, :, :3].std(axis=2).mean()
    assert spread > (0.004 if dtype == np.float32 else 1.0)  # it has colour


def test_hints_as_tuples_dicts_and_css_names(real_photo, shipped) -> None:
    gray = Image.open(real_photo).convert("L").resize((160, 120))
    as_tuple = rechroma.colorize(gray, hints=[(40, 60, "#ff0000")], colorizer=shipped)
    as_dict = rechroma.colorize(
        gray, hints=[{"x": 40, "y": 60, "colour": "red"}], colorizer=shipped
    )
    plain = rechroma.colorize(gray, colorizer=shipped)
    assert np.array_equal(np.asarray(as_tuple), np.asarray(as_dict))
    assert not np.array_equal(np.asarray(as_tuple), np.asarray(plain))
    with pytest.raises(HintError, match="not a colour"):
        rechroma.colorize(gray, hints=[(40, 60, "reddish")], colorizer=shipped)
    with pytest.raises(HintError, match="outside the 160x120 photo"):
        rechroma.colorize(gray, hints=[(400, 60, "red")], colorizer=shipped)


def test_unknown_kind_and_bad_shape_are_clear(shipped) -> None:
    with pytest.raises(TypeError, match="path, bytes, a PIL image or a NumPy array"):
        rechroma.colorize(12, colorizer=shipped)
    from rechroma.errors import UnsupportedImageError

    with pytest.raises(UnsupportedImageError, match="shape"):
        rechroma.colorize(np.zeros((4, 4, 2), np.uint8), colorizer=shipped)


def test_cuda_on_a_machine_without_it_says_so() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(InvalidOptionError, match="CUDA is not available"):
        Colorizer.load(device="cuda")
