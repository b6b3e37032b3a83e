"""Colour hints from a person: "this point of the photo was this colour".

A hint is a point in pixels of the original photo (after EXIF rotation), an sRGB colour
and an optional radius. Only the colour's chroma (its a*, b*) is a hint: the photo
keeps its own lightness there, so a light blue hint on a dark coat gives a dark blue.

The JSON form (what the website exports and the command line reads):

    {"hints": [{"x": 412, "y": 300, "color": "#2b4c9a", "radius": 6}]}

`radius` (pixels of the original) is optional; a bare list of hints is accepted too.
A colour is `#rrggbb`, `#rgb` or a CSS colour name (`navy`, `darkred`); it is kept as
`#rrggbb`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import ImageColor

from rechroma.errors import InvalidOptionError

if TYPE_CHECKING:
    import torch

MAX_HINTS = 256
_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
_SHORT_HEX = re.compile(r"^#?([0-9a-fA-F]{3})$")
# Training marked squares of 1-9 pixels at render size; a click gets a 3x3 square.
DEFAULT_PATCH_RADIUS = 1


class HintError(InvalidOptionError):
    """A hint that cannot be used: outside the photo, a bad colour, malformed JSON."""


def normalize_color(text: str) -> str:
    """`#rrggbb` for a hex colour (`#2b4c9a`, `2b4c9a`, `#abc`) or a CSS colour name."""
    if not isinstance(text, str):
        raise HintError(f"hint colour {text!r} is not a colour like #2b4c9a or navy")
    stripped = text.strip()
    if match := _HEX.match(stripped):
        return "#" + match.group(1).lower()
    if match := _SHORT_HEX.match(stripped):
        return "#" + "".join(2 * c for c in match.group(1).lower())
    # Pillow knows the CSS colour names; its rgb()/hsl() forms are not hint colours.
    if stripped.isalpha():
        try:
            red, green, blue = ImageColor.getrgb(stripped.lower())[:3]
            return f"#{red:02x}{green:02x}{blue:02x}"
        except ValueError:
            pass
    raise HintError(f"hint colour {text!r} is not a colour like #2b4c9a or navy")


@dataclass(frozen=True)
class Hint:
    """One known colour: at (x, y) in pixels of the original photo.

    `color` is any form `normalize_color` reads, and is kept as `#rrggbb`.
    """

    x: float
    y: float
    color: str
    radius: float | None = None  # pixels of the original; a small square when None
    # Hints of one group (a reference's matches of about one colour) spread as one
    # (`hint_spread`); None: on its own, as a person's pin.
    group: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "color", normalize_color(self.color))

    def rgb(self) -> tuple[float, float, float]:
        """The colour as sRGB in [0, 1]."""
        value = self.color[1:]
        return tuple(int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


HintLike = Hint | Sequence[object] | Mapping[str, object]


def as_hints(items: Iterable[HintLike] | None) -> tuple[Hint, ...]:
    """Hints given as `Hint`s, `(x, y, colour)` / `(x, y, colour, radius)` tuples or dicts
    with x, y, color (or colour) and radius, as the library's `hints=` takes them."""
    hints = []
    for index, item in enumerate(items or ()):
        if isinstance(item, Hint):
            hints.append(item)
        elif isinstance(item, Mapping):
            known = {"colour": "color"}
            fields = {known.get(k, k): v for k, v in item.items()}
            hints.extend(hints_from_json([fields]))
        elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) in (3, 4):
            x, y, color, *radius = item
            fields = {"x": x, "y": y, "color": color}
            if radius:
                fields["radius"] = radius[0]
            hints.extend(hints_from_json([fields]))
        else:
            raise HintError(f"hint {index}: {item!r} is not (x, y, colour), a dict or a Hint")
    if len(hints) > MAX_HINTS:
        raise HintError(f"{len(hints)} hints; at most {MAX_HINTS} per photo")
    return tuple(hints)


def parse_hint(text: str) -> Hint:
    """`X,Y,COLOUR` or `X,Y,COLOUR,RADIUS` (the command line's --hint); COLOUR is
    `#rrggbb` or a CSS colour name."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (3, 4):
        raise HintError(f"hint {text!r} is not X,Y,COLOUR or X,Y,COLOUR,RADIUS")
    try:
        x, y = _finite(float(parts[0])), _finite(float(parts[1]))
        radius = _finite(float(parts[3])) if len(parts) == 4 else None
    except ValueError:
        raise HintError(f"hint {text!r}: X, Y and RADIUS must be numbers") from None
    try:
        return Hint(x, y, parts[2], radius)
    except HintError as exc:
        raise HintError(f"hint {text!r}: {exc}") from None


def hints_from_json(data: str | bytes | object) -> list[Hint]:
    """Hints from the JSON form (text, or already parsed); raises `HintError` when malformed."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data, parse_constant=_no_constants)
        except RecursionError:
            raise HintError("hints JSON is nested too deeply") from None
        except (ValueError, UnicodeDecodeError) as exc:  # also ints over Python's digit limit
            raise HintError(f"hints are not valid JSON: {exc}") from None
    items = data.get("hints") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise HintError('hints JSON must be {"hints": [...]} or a list of hints')
    if len(items) > MAX_HINTS:
        raise HintError(f"{len(items)} hints; at most {MAX_HINTS} per photo")
    hints = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not {"x", "y", "color"} <= item.keys():
            raise HintError(f"hint {index}: needs x, y and color, got {item!r}")
        x, y, radius = item["x"], item["y"], item.get("radius")
        numbers = (x, y) if radius is None else (x, y, radius)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
            raise HintError(f"hint {index}: x, y and radius must be numbers, got {item!r}")
        group = item.get("group")
        if group is not None and (
            not isinstance(group, int) or isinstance(group, bool) or not 0 <= group < MAX_HINTS
        ):
            raise HintError(f"hint {index}: group must be an integer 0..{MAX_HINTS - 1}")
        try:
            x, y = _finite(x), _finite(y)
            radius = None if radius is None else _finite(radius)
        except ValueError:
            raise HintError(f"hint {index}: x, y and radius must be finite numbers") from None
        try:
            hints.append(Hint(x, y, item["color"], radius, group))
        except HintError as exc:
            raise HintError(f"hint {index}: {exc}") from None
    return hints


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not a number a hint can have")


def _finite(value: float) -> float:
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise ValueError(value) from None
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def hints_to_json(hints: Sequence[Hint]) -> str:
    """The JSON form of `hints` (what `hints_from_json` reads)."""
    items = []
    for hint in hints:
        item: dict[str, object] = {"x": hint.x, "y": hint.y, "color": hint.color}
        if hint.radius is not None:
            item["radius"] = hint.radius
        if hint.group is not None:
            item["group"] = hint.group
        items.append(item)
    return json.dumps({"hints": items}, indent=2)


def read_hints_file(path: Path) -> list[Hint]:
    """Hints from a JSON file; a missing or malformed file is a `HintError` naming it."""
    try:
        text = path.read_bytes()  # json detects UTF-8/16/32; anything else is a HintError
    except OSError as exc:
        raise HintError(f"cannot read hints file {path}: {exc.strerror or exc}") from None
    try:
        return hints_from_json(text)
    except HintError as exc:
        raise HintError(f"{path}: {exc}") from None


def validate_hints(hints: Sequence[Hint], width: int, height: int) -> None:
    """Refuse hints outside a `width` x `height` photo, with bad colours, or too many."""
    if len(hints) > MAX_HINTS:
        raise HintError(f"{len(hints)} hints; at most {MAX_HINTS} per photo")
    for hint in hints:
        if not (0 <= hint.x < width and 0 <= hint.y < height):
            raise HintError(
                f"hint at ({hint.x:g}, {hint.y:g}) is outside the {width}x{height} photo"
            )
        if hint.radius is not None and not 0 <= hint.radius <= max(width, height):
            raise HintError(f"hint radius {hint.radius:g} is outside 0..{max(width, height)}")


def hint_channels(
    hints: Sequence[Hint], size: tuple[int, int], shape: tuple[int, int]
) -> torch.Tensor:
    """The network's hint input for `hints` on a photo of `size` rendered at `shape`.

    Args:
        hints: validated hints, in pixels of the full-size photo.
        size: the photo's full-size `(width, height)`.
        shape: the render size `(height, width)`.

    Returns:
        `(3, h, w)`: hint a and b (normalized, the colour's own chroma) and the mask.
    """
    import torch

    from rechroma.color import HINT_CHANNELS

    channels = torch.zeros(HINT_CHANNELS, *shape)
    for (top, bottom, left, right), ab in hint_boxes(hints, size, shape):
        channels[:2, top:bottom, left:right] = ab[:, None, None]
        channels[2, top:bottom, left:right] = 1.0
    return channels


def hint_boxes(
    hints: Sequence[Hint], size: tuple[int, int], shape: tuple[int, int]
) -> Iterator[tuple[tuple[int, int, int, int], torch.Tensor]]:
    """Each hint's square at render size, `(top, bottom, left, right)`, and its normalized ab.

    Args: as `hint_channels`.
    """
    if not hints:
        return
    # PyTorch and kornia load here, not with the module: reading and checking hints
    # files (a folder run's planning) needs neither.
    import torch

    from rechroma.color import normalize_ab, rgb_to_lab

    width, height = size
    small_h, small_w = shape
    rgb = torch.tensor([hint.rgb() for hint in hints]).T[:, :, None]  # (3, N, 1)
    ab = normalize_ab(rgb_to_lab(rgb)[1:, :, 0])  # (2, N)
    scale_x, scale_y = small_w / width, small_h / height
    for index, hint in enumerate(hints):
        col = min(int(hint.x * scale_x), small_w - 1)
        row = min(int(hint.y * scale_y), small_h - 1)
        radius = DEFAULT_PATCH_RADIUS
        if hint.radius is not None:
            radius = max(0, round(hint.radius * min(scale_x, scale_y)))
        top, left = max(0, row - radius), max(0, col - radius)
        bottom, right = min(small_h, row + radius + 1), min(small_w, col + radius + 1)
        yield (top, bottom, left, right), ab[:, index]
