"""The two-line library: `from rechroma import colorize; out = colorize(x)`.

`x` is a path, encoded bytes, a PIL image or a NumPy array, and the answer is of the
same kind, as rembg's `remove` does it. Every kind goes through the very code a file
does: EXIF orientation applied, transparency kept, 16-bit and palette images read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import overload

import numpy as np
from PIL import Image

from rechroma.errors import InvalidOptionError, UnsupportedImageError
from rechroma.images import (
    answer_format,
    encode_photo,
    open_photo,
)
from rechroma.inference.colorizer import Colorizer
from rechroma.inference.hints import Hint, HintLike, as_hints
from rechroma.inference.reference import ReferenceSet, ReferenceSource, load_references
from rechroma.paths import default_output


@overload
def colorize(image: str | os.PathLike, **options: object) -> Path: ...
@overload
def colorize(image: bytes, **options: object) -> bytes: ...
@overload
def colorize(image: Image.Image, **options: object) -> Image.Image: ...
@overload
def colorize(image: np.ndarray, **options: object) -> np.ndarray: ...


def colorize(
    image: str | os.PathLike | bytes | Image.Image | np.ndarray,
    *,
    vividness: float = 1.0,
    hints: Sequence[HintLike] = (),
    render_size: int | None = None,
    colorizer: Colorizer | None = None,
    output: str | os.PathLike | None = None,
    quality: int | None = None,
    reference: ReferenceSource | Sequence[ReferenceSource] | ReferenceSet | None = None,
    reference_strength: float = 1.0,
) -> Path | bytes | Image.Image | np.ndarray:
    """Colorize one photo and answer in the kind it came as.

    Args:
        image: a path to a photo; its encoded bytes; a PIL image; or an array of shape
            (H, W), (H, W, 3) or (H, W, 4), uint8, uint16 or float in [0, 1].
        vividness: chroma multiplier, 0 (gray) to 4; 1 as the model predicts.
        hints: known colours at points of the photo: `(x, y, colour)` or `(x, y, colour,
            radius)` tuples, dicts with those keys, or `rechroma.inference.hints.Hint`s; a
            colour is "#rrggbb" or a CSS name ("navy").
        render_size: short side at which the network sees the photo (the model's default).
        colorizer: a loaded model to reuse; loaded fresh (the shipped one) when None, so
            pass `Colorizer.load()` when colouring many photos.
        reference: a colour photo of the same things (a path, a folder of them, bytes, a
            PIL image or an RGB array, or a list of those): its colours, matched to the
            photo, guide the colouring; the photo keeps its lightness. For many photos,
            read the references once with `rechroma.inference.reference.load_references`
            and pass what it returns.
        reference_strength: 0 (the automatic colour) to 1 (the reference's in full).
        output: for a path, where to write (format from its extension); default
            `<name>-colour<ext>` beside the input. Never the input itself.
        quality: JPEG/WebP quality of encoded answers (95).

    Returns:
        For a path, the output's path. For bytes, the colour photo encoded as the input
        was (JPEG stays JPEG, anything else becomes PNG, which keeps transparency),
        with its metadata. For a PIL image, an RGB image (RGBA when the input had
        alpha). For an array, uint8 (float32 in [0, 1] for float input) of shape
        (H, W, 3), or (H, W, 4) with alpha.
    """
    hints = as_hints(hints)  # a malformed hint fails before the model loads
    colorizer = colorizer or Colorizer.load()
    if reference is not None and not isinstance(reference, ReferenceSet):
        reference = load_references(colorizer, reference, strength=reference_strength)
    if isinstance(image, str | os.PathLike):
        dst = Path(output) if output is not None else default_output(Path(image))
        return _colorize_path(
            Path(image), dst, colorizer, vividness, hints, render_size, quality, reference
        )
    if output is not None:
        raise InvalidOptionError("output= is for path input; other kinds are answered in kind")
    if isinstance(image, bytes | bytearray | memoryview):
        photo = open_photo(bytes(image), name="bytes")
        format_name = answer_format(photo)
        result = colorizer.colorize_photo(
            photo, render_size, vividness, hints=hints, format_name=format_name, reference=reference
        )
        options = {"quality": quality or 95} if format_name == "JPEG" else {}
        return encode_photo(photo, result, format_name, **options)
    if isinstance(image, Image.Image):
        return colorizer.colorize(image, render_size, vividness, hints=hints, reference=reference)
    if isinstance(image, np.ndarray):
        result = colorizer.colorize(
            _image_of_array(image), render_size, vividness, hints=hints, reference=reference
        )
        pixels = np.asarray(result)
        if np.issubdtype(image.dtype, np.floating):
            return pixels.astype(np.float32) / 255.0
        return pixels
    raise TypeError(
        f"colorize takes a path, bytes, a PIL image or a NumPy array, not {type(image).__name__}"
    )


def _colorize_path(
    src: Path,
    dst: Path,
    colorizer: Colorizer,
    vividness: float,
    hints: Sequence[Hint],
    render_size: int | None,
    quality: int | None,
    reference: ReferenceSet | None,
) -> Path:
    if dst.exists() and dst.resolve() == src.resolve():
        raise InvalidOptionError(f"{dst}: the output would overwrite the input")
    return colorizer.colorize_file(
        src,
        dst,
        render_size,
        quality=quality,
        vividness=vividness,
        hints=hints,
        reference=reference,
    )


def _image_of_array(array: np.ndarray) -> Image.Image:
    """A PIL image of an (H, W), (H, W, 3) or (H, W, 4) array of uint8, uint16 or floats."""
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise UnsupportedImageError(
            f"array of shape {array.shape}: expected (H, W), (H, W, 3) or (H, W, 4)"
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if np.issubdtype(array.dtype, np.floating):
        array = np.clip(np.nan_to_num(array) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif array.dtype == np.uint16:
        if array.ndim == 2:
            return Image.fromarray(np.ascontiguousarray(array))  # mode "I;16"
        array = (array >> 8).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise UnsupportedImageError(
            f"array of dtype {array.dtype}: expected uint8, uint16 or float"
        )
    return Image.fromarray(np.ascontiguousarray(array))
