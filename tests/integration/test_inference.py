"""The Colorizer on real files of the kinds people bring."""

import io

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from rechroma.errors import ImageReadError, ImageTooLargeError, UnsupportedImageError
from rechroma.images import (
    EXIF_DESCRIPTION,
    EXIF_ORIENTATION,
    JpegPlanes,
    encode_photo,
    open_photo,
    photo_from_image,
)
from rechroma.inference.colorizer import render_shape


@pytest.fixture(scope="module")
def gray(real_photo) -> Image.Image:
    return Image.open(real_photo).convert("L").resize((120, 90))


def test_render_shape_keeps_aspect_and_caps_panoramas() -> None:
    assert render_shape(3000, 4000, 256) == (256, 341)
    assert render_shape(50, 20000, 256) == (3, 1024)
    assert render_shape(1, 1, 256) == (256, 256)


@pytest.mark.parametrize(
    "mode",
    ["L", "RGB", "RGBA", "LA", "P", "CMYK", "I;16", "1"],
)
def test_every_mode_gives_rgb_of_the_same_size(colorizer, gray, tmp_path, mode) -> None:
    if mode == "I;16":
        image = Image.fromarray(np.asarray(gray, dtype=np.uint16) * 257)
    else:
        image = gray.convert(mode)
    src = tmp_path / ("in.tif" if mode in ("CMYK", "I;16") else "in.png")
    image.save(src)
    out = colorizer.colorize_file(src, tmp_path / "out.png")
    result = Image.open(out)
    assert result.size == gray.size
    assert result.mode == ("RGBA" if mode in ("RGBA", "LA") else "RGB")


def test_sixteen_bit_is_scaled_not_clipped(gray, tmp_path) -> None:
    path = tmp_path / "deep.png"
    Image.fromarray(np.asarray(gray, dtype=np.uint16) * 257).save(path)
    photo = open_photo(path)
    assert np.abs(np.asarray(photo.gray, dtype=int) - np.asarray(gray)).max() <= 1


def test_exif_rotation_is_applied_and_marked(colorizer, gray, tmp_path) -> None:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # stored sideways: turn 90 degrees clockwise to view
    src = tmp_path / "phone.jpg"
    gray.convert("RGB").save(src, exif=exif.tobytes(), dpi=(300, 300))
    out = colorizer.colorize_file(src, tmp_path / "out.jpg")
    result = Image.open(out)
    assert result.size == (gray.height, gray.width)
    assert EXIF_ORIENTATION not in result.getexif()
    assert "rechroma" in result.getexif()[EXIF_DESCRIPTION]
    assert result.info["dpi"] == pytest.approx((300, 300))


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", ImageReadError),
        (b"GIF89a but not really", ImageReadError),
        (np.random.default_rng(0).bytes(4096), UnsupportedImageError),
    ],
)
def test_broken_bytes_raise_typed_errors(content, error) -> None:
    with pytest.raises(error):
        open_photo(content)


def test_pixel_limit_is_enforced_before_decoding(tmp_path) -> None:
    path = tmp_path / "wide.png"
    Image.new("L", (3000, 2000)).save(path)
    with pytest.raises(ImageTooLargeError, match="megapixels"):
        open_photo(path, max_pixels=1_000_000)


def test_unknown_output_extension_fails_before_work(colorizer, real_photo, tmp_path) -> None:
    with pytest.raises(UnsupportedImageError, match=".xyz"):
        colorizer.colorize_file(real_photo, tmp_path / "out.xyz")


def test_colour_input_is_treated_as_its_lightness(colorizer, real_photo) -> None:
    colour = Image.open(real_photo).convert("RGB").resize((96, 64))
    from_colour = colorizer.colorize(colour)
    from_gray = colorizer.colorize(colour.convert("L").convert("RGB"))
    diff = np.abs(np.asarray(from_colour, dtype=int) - np.asarray(from_gray, dtype=int))
    assert diff.mean() < 3  # same lightness in, same colours out (Pillow's L is not Lab L)


def test_readme_python_example_with_string_paths(colorizer, gray, tmp_path) -> None:
    gray.save(tmp_path / "scan.tif")
    out = colorizer.colorize_file(str(tmp_path / "scan.tif"), str(tmp_path / "scan-colour.tif"))
    assert Image.open(out).size == gray.size


@pytest.mark.parametrize("suffix", [".tif", ".png", ".jpg", ".webp"])
def test_every_output_format_reads_back_with_metadata(colorizer, gray, tmp_path, suffix) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Kodak"  # Make, in IFD0
    exif.get_ifd(0x8769)[0x9003] = "1952:07:14 10:00:00"  # DateTimeOriginal, in the Exif IFD
    src = tmp_path / "scan.jpg"
    gray.convert("RGB").save(src, exif=exif)
    out = colorizer.colorize_file(src, tmp_path / f"out{suffix}")
    result = Image.open(out)
    result.load()
    assert result.size == gray.size
    kept = result.getexif()
    assert kept[0x010F] == "Kodak" and "rechroma" in kept[EXIF_DESCRIPTION]
    if suffix != ".tif":  # TIFF keeps the first IFD only
        assert kept.get_ifd(0x8769)[0x9003] == "1952:07:14 10:00:00"


def test_in_memory_bytes_work_like_files(colorizer, gray) -> None:
    buffer = io.BytesIO()
    gray.save(buffer, format="PNG")
    photo = open_photo(buffer.getvalue())
    assert colorizer.colorize(photo).size == gray.size


def test_a_jpeg_is_written_from_planes_at_the_size_jpeg_stores_them(
    colorizer, real_photo, tmp_path
) -> None:
    """A JPEG answer comes from full-size Y' and half-size Cb, Cr (4:2:0, what the encoder
    keeps of RGB anyway): the PNG answer's image within the JPEG's own loss, no further
    from it than Pillow's encoding of that PNG, with the DPI and EXIF kept."""
    src = tmp_path / "scan.jpg"
    Image.open(real_photo).convert("L").save(src, dpi=(300, 300))
    lossless = Image.open(colorizer.colorize_file(src, tmp_path / "out.png")).convert("RGB")
    result = Image.open(colorizer.colorize_file(src, tmp_path / "out.jpg"))
    assert JpegImagePlugin.get_sampling(result) == 2  # 4:2:0
    assert result.info["dpi"] == pytest.approx((300, 300))
    assert "rechroma" in result.getexif()[EXIF_DESCRIPTION]
    buffer = io.BytesIO()
    lossless.save(buffer, format="JPEG", quality=95)
    truth = np.asarray(lossless, dtype=np.float64)
    ours = np.abs(np.asarray(result.convert("RGB"), dtype=np.float64) - truth)
    pillows = np.abs(np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float64) - truth)
    assert ours.mean() < pillows.mean() + 0.2
    assert np.percentile(ours, 99.9) <= np.percentile(pillows, 99.9) + 2


def test_jpeg_planes_go_to_other_formats_and_oversized_exif_is_left_out(
    colorizer, gray, caplog
) -> None:
    photo = photo_from_image(gray)
    planes = colorizer.colorize_photo(photo, format_name="JPEG")
    assert isinstance(planes, JpegPlanes) and planes.size == gray.size
    as_png = Image.open(io.BytesIO(encode_photo(photo, planes, "PNG")))
    assert as_png.mode == "RGB" and as_png.size == gray.size
    photo.exif[0x9286] = "x" * 70_000  # UserComment, from a PNG: more than a JPEG holds
    result = Image.open(io.BytesIO(encode_photo(photo, planes, "JPEG", quality=90)))
    assert result.size == gray.size
    assert "rechroma" in result.getexif()[EXIF_DESCRIPTION]
    assert "does not fit a JPEG" in caplog.text
