"""Every kind of file people bring, each made here as a real file and colorized for real.

Good files come back as colour images of the same size with alpha, DPI and EXIF kept;
bad files raise a typed `rechroma` error with a clear message and never crash.
"""

import io
import struct

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from bad_files import png_header_only
from rechroma.color import rgb_to_lab
from rechroma.errors import ImageReadError, ImageTooLargeError, RechromaError, UnsupportedImageError
from rechroma.images import open_photo
from rechroma.inference.colorizer import Colorizer


@pytest.fixture(scope="module")
def scan(real_photo) -> Image.Image:
    """A real photo's luma, 150x100."""
    return Image.open(real_photo).convert("L").resize((150, 100))


def roundtrip(colorizer: Colorizer, src, tmp_path, suffix: str = ".png") -> Image.Image:
    out = colorizer.colorize_file(src, tmp_path / f"out{suffix}")
    result = Image.open(out)
    result.load()
    return result


def lightness(image: Image.Image) -> np.ndarray:
    """CIE L* of an image, in [0, 100]."""
    rgb = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255)
    return rgb_to_lab(rgb.permute(2, 0, 1))[0].numpy()


def assert_luma_close(result: Image.Image, expected: Image.Image, tolerance: float = 2) -> None:
    """The output keeps the input's tones: its lightness L* is the input's."""
    assert np.abs(lightness(result) - lightness(expected)).mean() < tolerance


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_8bit_gray(colorizer, scan, tmp_path, suffix) -> None:
    scan.save(tmp_path / f"in{suffix}")
    result = roundtrip(colorizer, tmp_path / f"in{suffix}", tmp_path, suffix)
    assert result.mode == "RGB" and result.size == scan.size
    assert_luma_close(result, scan)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_gray_uses_its_full_range(colorizer, scan, tmp_path, suffix) -> None:
    deep = np.asarray(scan, dtype=np.uint16) * 257 + 100  # 16-bit values, not 8-bit ones
    Image.fromarray(deep).save(tmp_path / f"in{suffix}")
    assert Image.open(tmp_path / f"in{suffix}").mode.startswith("I")
    result = roundtrip(colorizer, tmp_path / f"in{suffix}", tmp_path)
    assert_luma_close(result, scan)


def test_colour_input_and_cmyk_jpeg(colorizer, real_photo, scan, tmp_path) -> None:
    colour = Image.open(real_photo).convert("RGB").resize(scan.size)
    colour.save(tmp_path / "colour.jpg")
    colour.convert("CMYK").save(tmp_path / "cmyk.jpg")
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    for name in ("colour.jpg", "cmyk.jpg"):
        result = roundtrip(colorizer, tmp_path / name, tmp_path)
        assert result.size == scan.size
        assert_luma_close(result, colour.convert("L"), tolerance=8)


def test_icc_profiles_are_applied_and_broken_ones_ignored(colorizer, real_photo, tmp_path) -> None:
    colour = Image.open(real_photo).convert("RGB").resize((120, 80))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    colour.save(tmp_path / "profiled.jpg", icc_profile=srgb)
    colour.save(tmp_path / "badprofile.jpg", icc_profile=b"not an ICC profile at all")
    plain = open_photo(tmp_path / "profiled.jpg").gray
    assert_luma_close(plain, colour.convert("L"), tolerance=3)
    for name in ("profiled.jpg", "badprofile.jpg"):
        result = roundtrip(colorizer, tmp_path / name, tmp_path, ".jpg")
        assert result.size == colour.size
        assert "icc_profile" not in result.info  # the output is plain sRGB


def test_palette_png_and_transparent_gif_keep_alpha(colorizer, scan, tmp_path) -> None:
    scan.convert("P").save(tmp_path / "palette.png")
    assert roundtrip(colorizer, tmp_path / "palette.png", tmp_path).mode == "RGB"

    pixels = np.asarray(scan).copy()
    pixels[:20, :30] = 0  # a corner of the one transparent gray level
    Image.fromarray(pixels).save(tmp_path / "clear.gif", transparency=0, optimize=False)
    result = roundtrip(colorizer, tmp_path / "clear.gif", tmp_path)
    assert result.mode == "RGBA"
    alpha = np.asarray(result)[..., 3]
    assert (alpha[:20, :30] == 0).all() and alpha[20:].min() == 255


def test_animated_gif_uses_its_first_frame(colorizer, scan, tmp_path) -> None:
    frames = [scan.convert("P"), Image.new("L", scan.size, 255).convert("P")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    result = roundtrip(colorizer, tmp_path / "anim.gif", tmp_path)
    assert_luma_close(result, Image.open(tmp_path / "anim.gif").convert("L"))


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_kept_exactly(colorizer, scan, tmp_path, mode) -> None:
    image = scan.convert(mode)
    alpha = Image.linear_gradient("L").resize(scan.size)
    image.putalpha(alpha)
    image.save(tmp_path / "alpha.png")
    result = roundtrip(colorizer, tmp_path / "alpha.png", tmp_path)
    assert result.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(result)[..., 3], np.asarray(alpha))


@pytest.mark.parametrize("size", [(1, 1), (20000, 50), (50, 20000), (3, 700)])
def test_extreme_shapes(colorizer, tmp_path, size) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, size[::-1], dtype=np.uint8)).save(tmp_path / "in.png")
    result = roundtrip(colorizer, tmp_path / "in.png", tmp_path)
    assert result.size == size and result.mode == "RGB"


def test_sixty_megapixel_tiff(colorizer, scan, tmp_path) -> None:
    width, height = 10_000, 6_000
    tile = np.asarray(scan.resize((1000, 600)))
    Image.fromarray(np.tile(tile, (10, 10))).save(tmp_path / "big.tif", compression="tiff_lzw")
    out = colorizer.colorize_file(tmp_path / "big.tif", tmp_path / "big-colour.tif")
    with Image.open(out) as result:
        assert result.size == (width, height) and result.mode == "RGB"
        corner = result.crop((4000, 3000, 4600, 3600))
    assert_luma_close(corner, Image.fromarray(tile[:600, :600]))


def heic_header() -> bytes:
    """The start of an iPhone HEIC file: an ISO base media 'ftyp' box, brand heic."""
    return struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00mif1heic" + b"\x00" * 64


@pytest.mark.parametrize(
    ("name", "content", "error", "message"),
    [
        ("empty.jpg", b"", ImageReadError, "empty file"),
        ("random.png", np.random.default_rng(1).bytes(5000), UnsupportedImageError, "not an image"),
        ("letter.jpg", b"Dear Aunt Mary,\n" * 40, UnsupportedImageError, "not an image"),
        ("bomb.png", png_header_only(40_000, 40_000), ImageTooLargeError, "too many pixels"),
        ("photo.heic", heic_header(), UnsupportedImageError, "HEIC"),
    ],
)
def test_bad_files_raise_typed_errors(colorizer, tmp_path, name, content, error, message) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(error, match=message):
        colorizer.colorize_file(tmp_path / name, tmp_path / "out.png")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_truncated_files_raise_typed_errors(colorizer, scan, tmp_path, keep) -> None:
    for suffix in (".png", ".jpg", ".tif"):
        buffer = io.BytesIO()
        scan.save(buffer, format={".png": "PNG", ".jpg": "JPEG", ".tif": "TIFF"}[suffix])
        data = buffer.getvalue()
        (tmp_path / f"cut{suffix}").write_bytes(data[: int(len(data) * keep)])
        with pytest.raises(RechromaError):
            colorizer.colorize_file(tmp_path / f"cut{suffix}", tmp_path / "out.png")
