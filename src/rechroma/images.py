"""Reading photos of any common kind into RGB, and writing results with their metadata."""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

from rechroma import __version__
from rechroma.errors import (
    ImageReadError,
    ImageTooLargeError,
    OutputWriteError,
    UnsupportedImageError,
)
from rechroma.timing import timed

logger = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 100_000_000
# ISO base media "ftyp" brands of HEIC/HEIF/AVIF files, which Pillow cannot open alone.
HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"})
EXIF_ORIENTATION = ExifTags.Base.Orientation
EXIF_SOFTWARE = ExifTags.Base.Software
EXIF_DESCRIPTION = ExifTags.Base.ImageDescription
# 16-bit and 32-bit grayscale, scaled to 8 bits by `_to_8bit_gray`.
DEEP_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
AI_NOTE = "Colorized automatically by rechroma (AI); the colours are a guess."
IFD_POINTERS = frozenset({ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo, ExifTags.IFD.Interop})
# TIFF tags that describe how the input's pixels were stored. A TIFF's "EXIF" is its
# whole first IFD, so these must not be copied: they describe the input's layout.
STORAGE_TAGS = frozenset(
    getattr(ExifTags.Base, name)
    for name in (
        "ImageWidth",
        "ImageLength",
        "BitsPerSample",
        "Compression",
        "PhotometricInterpretation",
        "StripOffsets",
        "SamplesPerPixel",
        "RowsPerStrip",
        "StripByteCounts",
        "XResolution",
        "YResolution",
        "PlanarConfiguration",
        "ResolutionUnit",
        "Predictor",
        "ColorMap",
        "TileWidth",
        "TileLength",
        "TileOffsets",
        "TileByteCounts",
        "ExtraSamples",
        "SampleFormat",
        "JPEGTables",
        "InterColorProfile",
        "Orientation",
    )
)

# What a folder walk picks up as photos.
PHOTO_SUFFIXES = (
    *(".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"),
    *(".heic", ".heif", ".avif"),  # iPhones' and modern cameras' formats, via pillow-heif
)
# Inputs in formats we read but do not write get this output format in a folder.
PHOTO_OUTPUT_FOR = {".heic": ".jpg", ".heif": ".jpg", ".avif": ".jpg"}
# What a folder walk picks up as video clips (`rechroma.inference.video`).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm")
# Clips in containers we read but do not write (AVI) come out as MP4.
VIDEO_OUTPUT_FOR = {".avi": ".mp4"}

# Output format per file extension, with the options we write it with.
FORMATS: dict[str, tuple[str, dict[str, object]]] = {
    ".jpg": ("JPEG", {"quality": 95}),
    ".jpeg": ("JPEG", {"quality": 95}),
    ".png": ("PNG", {"compress_level": 6}),
    ".webp": ("WEBP", {"quality": 95}),
    ".tif": ("TIFF", {"compression": "tiff_deflate"}),
    ".tiff": ("TIFF", {"compression": "tiff_deflate"}),
}

# The largest side each format can store (libwebp's and libjpeg's own limits).
MAX_SIDE = {"WEBP": 16383, "JPEG": 65500}
# The most bytes one JPEG marker segment holds after its length field (EXIF's APP1).
MAX_JPEG_SEGMENT = 65533


@dataclass
class Photo:
    """A decoded, upright photo with what should survive into the output."""

    gray: Image.Image  # mode "L": the photo's luma, EXIF orientation applied
    alpha: Image.Image | None = None  # mode "L", when the input had transparency
    dpi: tuple[float, float] | None = None
    exif: Image.Exif = field(default_factory=Image.Exif)
    source_format: str | None = None


@dataclass(frozen=True)
class JpegPlanes:
    """A colour photo as JPEG stores it: full-size Y and Cb, Cr at half size each way
    (4:2:0, JFIF's full-range YCbCr), each a C-contiguous uint8 array."""

    y: np.ndarray  # (H, W)
    cb: np.ndarray  # ((H + 1) // 2, (W + 1) // 2)
    cr: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """`(width, height)`, as Pillow gives an image's."""
        return self.y.shape[1], self.y.shape[0]

    def to_image(self) -> Image.Image:
        """An RGB Pillow image, the chroma brought to full size as a JPEG decoder would."""
        luma = Image.fromarray(self.y)
        chroma = [
            Image.fromarray(plane).resize(luma.size, Image.Resampling.BILINEAR)
            for plane in (self.cb, self.cr)
        ]
        return Image.merge("YCbCr", [luma, *chroma]).convert("RGB")


def open_photo(
    source: str | Path | bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str | None = None,
    timings: dict[str, float] | None = None,
) -> Photo:
    """Decode a file or bytes into a `Photo`.

    Colour input is accepted and reduced to its luma. 16-bit and float grayscale is
    scaled to 8 bits; CMYK, palette and ICC-profiled images are converted to sRGB first;
    EXIF rotation is applied. Raises `ImageReadError` (or a subclass) with a message a
    person can act on, starting with `name` (the path, or "upload" for bytes). `timings`,
    when given, gets the seconds of "decode", "exif" and "luma" added.
    """
    image = _open_checked(source, max_pixels, name, timings, luma_only=True)
    return _to_photo(image, timings)


def open_colour_photo(
    source: str | Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS, name: str | None = None
) -> Image.Image:
    """Decode a file or bytes into an upright sRGB image, mode "RGB" (a reference photo,
    whose colours are read). The same checks and messages as `open_photo`; transparency
    is dropped, an ICC profile converted."""
    image = _open_checked(source, max_pixels, name, None, luma_only=False)
    _readable_exif(image)
    _make_upright(image)
    icc_profile = image.info.get("icc_profile")
    if image.mode in DEEP_GRAY_MODES:
        return _to_8bit_gray(image).convert("RGB")
    if image.mode not in ("RGB", "CMYK"):
        image = image.convert("RGBA" if "transparency" in image.info else image.mode)
        image = image.convert("RGB")
    if icc_profile:
        return _to_srgb(image, icc_profile)
    return image.convert("RGB")


def _open_checked(
    source: str | Path | bytes,
    max_pixels: int,
    name: str | None,
    timings: dict[str, float] | None,
    luma_only: bool,
) -> Image.Image:
    """Open and decode `source`, refusing what cannot be a photo with a reason that
    starts with `name`; with `luma_only`, a JPEG decodes its luma alone."""
    name = name or ("upload" if isinstance(source, bytes) else str(source))
    _register_heif_decoder()
    if isinstance(source, bytes):
        if not source:
            raise ImageReadError(f"{name}: empty file")
        handle: io.BytesIO | Path = io.BytesIO(source)
    else:
        handle = Path(source)
        if not handle.exists():
            raise ImageReadError(f"{name}: no such file")
        if handle.is_dir():
            raise ImageReadError(f"{name}: is a folder, not an image")
        if handle.stat().st_size == 0:
            raise ImageReadError(f"{name}: empty file")
    try:
        with timed(timings, "decode"), warnings.catch_warnings():
            # We enforce our own pixel limit below, with a clearer message; Pillow's
            # warning (from 89 MP) would only confuse under it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(handle)
            pixels = image.width * image.height
            if pixels > max_pixels:
                raise ImageTooLargeError(
                    f"{name}: {image.width}x{image.height} is {pixels / 1e6:.0f} megapixels, "
                    f"over the limit of {max_pixels / 1e6:.0f}"
                )
            if luma_only:
                _decode_luma_only(image)
            image.load()
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{name}: too many pixels ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedImageError(_unidentified_message(name, handle)) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{name}: truncated or corrupt image ({exc})") from exc
    return image


@functools.cache
def _register_heif_decoder() -> bool:
    """Open HEIC/HEIF photos (what iPhones take) when the optional pillow-heif is present."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


def _decode_luma_only(image: Image.Image) -> None:
    """Ask libjpeg for the Y channel alone when that is all we will use.

    A colour JPEG without an ICC profile is YCbCr inside; its luma is exactly what
    `luma_of` would compute, and skipping chroma decoding saves a third of the time.
    """
    if image.format == "JPEG" and image.mode == "RGB" and not image.info.get("icc_profile"):
        image.draft("L", image.size)


def _unidentified_message(name: str, handle: io.BytesIO | Path) -> str:
    head = handle.getvalue()[:32] if isinstance(handle, io.BytesIO) else _head(handle)
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        if _register_heif_decoder():
            return f"{name}: HEIC/HEIF photo that cannot be decoded (truncated or corrupt)"
        return (
            f"{name}: HEIC/HEIF photo, and no HEIF decoder is installed "
            "(pip install pillow-heif, or export the photo as JPEG)"
        )
    return (
        f"{name}: not an image rechroma can read (it reads JPEG, PNG, TIFF, WebP, GIF, BMP "
        "and HEIC photos), or a damaged one"
    )


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(32)


def photo_from_image(image: Image.Image) -> Photo:
    """A `Photo` of an image already in memory, upright, with its alpha and metadata kept:
    exactly what `open_photo` makes of the same image read from a file.

    The caller's image is never changed: it is copied first when it must be turned.
    """
    try:
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # damaged EXIF: `_to_photo` drops it, and may change `info`
        orientation = None
    return _to_photo(image if orientation == 1 else image.copy())


def _to_photo(image: Image.Image, timings: dict[str, float] | None = None) -> Photo:
    source_format = image.format
    with timed(timings, "exif"):
        exif = _readable_exif(image)
        _make_upright(image)
    dpi = image.info.get("dpi")
    icc_profile = image.info.get("icc_profile")
    with timed(timings, "luma"):
        alpha = None
        # Transparency is an alpha band (RGBA, LA, PA) or, in GIF and PNG, one colour or
        # gray level marked transparent in the file's info.
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            alpha = rgba.getchannel("A")
            image = rgba.convert("RGB")
        if icc_profile and image.mode in ("RGB", "CMYK"):
            image = _to_srgb(image, icc_profile)
        gray = luma_of(image)
    for tag in STORAGE_TAGS & set(exif):
        del exif[tag]
    return Photo(
        gray=gray,
        alpha=alpha,
        dpi=tuple(float(v) for v in dpi) if dpi else None,  # type: ignore[arg-type]
        exif=exif,
        source_format=source_format,
    )


def _readable_exif(image: Image.Image) -> Image.Exif:
    """The image's EXIF, or an empty one when it is damaged: metadata must not cost a photo.

    Damaged blocks often parse but fail when written back (a string tag holding a float, a
    count that does not fit), so the block is written once here to prove it.
    """
    try:
        exif = image.getexif()
        exif.tobytes()
    except Exception as exc:  # Pillow raises a dozen kinds on damaged EXIF
        logger.warning("dropping unreadable EXIF metadata (%s: %s)", type(exc).__name__, exc)
        image.info.pop("exif", None)
        return Image.Exif()
    return exif


def _make_upright(image: Image.Image) -> None:
    """Apply the EXIF orientation in place (no copy when the photo is upright already)."""
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception as exc:  # a damaged orientation tag: keep the pixels as stored
        logger.warning("ignoring an unreadable EXIF orientation (%s)", exc)


def upright_size(path: Path) -> tuple[int, int] | None:
    """A photo's `(width, height)` as it will be coloured (EXIF rotation applied), read from
    its header alone; None when the header cannot be read (decoding will say why)."""
    _register_heif_decoder()
    try:
        with warnings.catch_warnings(), Image.open(path) as image:
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            width, height = image.size
            orientation = _readable_exif(image).get(EXIF_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    # Orientations 5-8 turn the photo a quarter.
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def luma_of(image: Image.Image) -> Image.Image:
    """The image's luma as mode "L" (ITU-R 601, the Y of JPEG's YCbCr); a copy-free no-op
    for gray input."""
    if image.mode == "L":
        return image
    if image.mode in DEEP_GRAY_MODES:
        return _to_8bit_gray(image)
    if image.mode not in ("RGB", "1"):
        image = image.convert("RGB")  # CMYK, palette, alpha: via RGB, as Pillow defines them
    return image.convert("L")


def _to_srgb(image: Image.Image, icc_profile: bytes) -> Image.Image:
    """Convert through the embedded ICC profile (Adobe RGB, print CMYK, ...) to sRGB."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        return ImageCms.profileToProfile(
            image, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
        )
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        # A broken profile should not cost the photo: fall back to Pillow's plain maths.
        logger.warning("ignoring an unusable ICC profile (%s)", exc)
        return image.convert("RGB")


def _to_8bit_gray(image: Image.Image) -> Image.Image:
    """Scale 16-bit/32-bit grayscale to 8 bits by its nominal range (Pillow would clip)."""
    array = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
    if image.mode == "F":
        top = 1.0 if array.max() <= 1.0 else top
    scaled = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(scaled)


def answer_format(photo: Photo) -> str:
    """The Pillow format of an answer whose format nobody chose: a JPEG stays JPEG,
    anything else becomes PNG (lossless, and it keeps transparency)."""
    return "JPEG" if photo.source_format == "JPEG" else "PNG"


def output_format(path: Path) -> tuple[str, dict[str, object]]:
    """Pillow format name and save options for an output path, by extension."""
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise UnsupportedImageError(
            f"{path}: cannot write {path.suffix!r}; use one of {known}"
        ) from None


def check_fits_format(size: tuple[int, int], format_name: str, name: str) -> None:
    """Raise `UnsupportedImageError` when a `size` image cannot be stored as `format_name`."""
    limit = MAX_SIDE.get(format_name)
    if limit is not None and max(size) > limit:
        raise UnsupportedImageError(
            f"{name}: {size[0]}x{size[1]} is too large for {format_name}, which stops at "
            f"{limit} pixels a side; write PNG or TIFF instead"
        )


def encode_photo(
    photo: Photo, result: Image.Image | JpegPlanes, format_name: str, **options: object
) -> bytes:
    """Encode `result` (RGB, YCbCr or JPEG planes, the photo's size) with the photo's
    alpha, DPI and EXIF."""
    check_fits_format(result.size, format_name, "output")
    if isinstance(result, JpegPlanes):
        if format_name == "JPEG" and set(options) <= {"quality"}:
            return _encode_jpeg_planes(photo, result, int(options.get("quality", 75)))
        result = result.to_image()
    image = result
    if image.mode == "YCbCr" and format_name != "JPEG":
        image = image.convert("RGB")  # only JPEG stores YCbCr as is
    if photo.alpha is not None and format_name != "JPEG":
        if image is result:
            image = result.copy()  # putalpha changes an image in place
        image.putalpha(photo.alpha)
    exif = _output_exif(photo, format_name)
    save_options: dict[str, object] = dict(options)
    if format_name == "TIFF":
        # libtiff cannot write EXIF sub-IFD pointers; a TIFF keeps the first IFD's tags.
        first_ifd = Image.Exif()
        for tag, value in exif.items():
            if tag not in IFD_POINTERS:
                first_ifd[tag] = value
        save_options["exif"] = first_ifd
    else:
        save_options["exif"] = exif.tobytes()
    if photo.dpi:
        save_options["dpi"] = photo.dpi
    buffer = io.BytesIO()
    image.save(buffer, format=format_name, **save_options)
    return buffer.getvalue()


def _encode_jpeg_planes(photo: Photo, planes: JpegPlanes, quality: int) -> bytes:
    """A JPEG of the planes as they are, with the photo's EXIF and DPI.

    Pillow encodes only full-size images, so libjpeg-turbo's planar entry point is
    called through simplejpeg, which writes no metadata. JPEG metadata is a marker
    segment in a fixed place, so it is written here: the EXIF APP1 right after the
    JFIF APP0 (where Pillow puts it) and the DPI in APP0's density fields.
    """
    exif = _output_exif(photo, "JPEG").tobytes()
    data = simplejpeg.encode_jpeg_yuv_planes(planes.y, planes.cb, planes.cr, quality=quality)
    if data[2:4] != b"\xff\xe0" or data[6:11] != b"JFIF\x00":
        raise RuntimeError("the JPEG encoder wrote no JFIF header where one belongs")
    app0_end = 4 + struct.unpack(">H", data[4:6])[0]
    header = bytearray(data[:app0_end])
    if photo.dpi:
        density = [min(65535, max(1, round(value))) for value in photo.dpi]
        header[13:18] = struct.pack(">BHH", 1, *density)  # units: dots per inch
    app1 = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    return bytes(header) + app1 + data[app0_end:]


def _output_exif(photo: Photo, format_name: str) -> Image.Exif:
    """The photo's EXIF with rechroma named as the software that made the colours.

    A JPEG holds at most 64 KB of EXIF (one marker segment); a PNG's or TIFF's may be
    longer. Rather than lose the photo, such a block is left out of a JPEG, with a
    warning, and only rechroma's note goes in.
    """
    exif = photo.exif  # keeps its sub-IFDs (camera, date, GPS), which a copy would lose
    exif[EXIF_SOFTWARE] = f"rechroma {__version__}"
    exif[EXIF_DESCRIPTION] = AI_NOTE
    if format_name == "JPEG" and len(exif.tobytes()) > MAX_JPEG_SEGMENT:
        logger.warning(
            "the input's EXIF (%d bytes) does not fit a JPEG; writing it without",
            len(exif.tobytes()),
        )
        exif = Image.Exif()
        exif[EXIF_SOFTWARE] = f"rechroma {__version__}"
        exif[EXIF_DESCRIPTION] = AI_NOTE
    return exif


def save_photo(
    photo: Photo, result: Image.Image | JpegPlanes, path: Path, quality: int | None = None
) -> Path:
    """Write `result` to `path` in the format its extension names; atomic."""
    format_name, options = output_format(path)
    if quality is not None and "quality" in options:
        options = {**options, "quality": quality}
    data = encode_photo(photo, result, format_name, **options)
    write_atomically(path, data)
    return path


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` under a temporary name, then rename: `path` is whole or absent.

    A full disk or a read-only folder raises `OutputWriteError` and leaves nothing
    behind, neither a half file nor the temporary one.
    """
    tmp = path.with_name(f".{path.name}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # on a read-only disk even this may fail
            tmp.unlink(missing_ok=True)
        raise OutputWriteError(f"{path}: cannot write the output ({exc.strerror or exc})") from exc
