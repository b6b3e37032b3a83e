"""Colour from a reference photo: its colours, matched to the photo, become hints.

A reference is a colour photo of the same things: the same house, the same uniform, a
still of the same shot. Both photos are read as gray by the colorizer's own encoder (an
ImageNet EfficientNet-Lite0, fine-tuned to colour): gray against gray, so a colour
reference and a black-and-white photo meet in one domain. Each cell of a grid at
stride 8 is described by the encoder's features at strides 8 and 16 (normalised), and
a photo's cell takes a reference's colour only where the match is confident:

- mutual nearest neighbours (the reference's cell also picks this cell, or one beside it);
- a ratio test: the best match clearly beats the best one outside its neighbourhood;
- agreement in lightness (each photo's lightness standardised, so exposure may differ).

A match's colour is the median a*, b* of the reference's cell (a softmax average would
make it pale). Matches are thinned to at most `max_hints`, spread over the photo, the
most confident first, and handed to the network's hint channels and the hint spread like
a person's pins: the photo keeps its own lightness. Several references pool their
matches, the most confident per cell winning; each reference is read once
(`Reference`), for a whole folder or film.

`global_transfer` is the fallback where few matches are found: the automatic colour's
a*, b* moved to the reference's mean and spread (Reinhard's colour transfer, in Lab).
"""

from __future__ import annotations

import dataclasses
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from rechroma.color import normalize_l, rgb_to_lab
from rechroma.errors import InvalidOptionError
from rechroma.images import DEFAULT_MAX_PIXELS, PHOTO_SUFFIXES, open_colour_photo
from rechroma.inference.hints import MAX_HINTS, Hint

if TYPE_CHECKING:
    from rechroma.inference.colorizer import Colorizer

logger = logging.getLogger(__name__)

# Both photos are matched with their short side at this size: cells of 8 px are then
# small enough to follow objects and few enough (about 1,600) to compare all pairs.
MATCH_SIZE = 256
CELL = 8  # px at the match size: the encoder's stride-8 grid
# A long, narrow photo is matched at most this long, so that comparing every pair of
# cells stays within tens of megabytes.
MATCH_MAX_LONG = 768
# Lowe's ratio test on feature distances: the best match must be this much nearer than
# the best one outside its 3x3 neighbourhood.
RATIO = 0.92
# Standardised lightness (z-scores of each photo's own L*) a match may differ by.
LIGHTNESS_TOLERANCE = 0.8
# A cell this close to gray in the reference says nothing about colour... except that it
# is gray: such matches are kept (a white wall stays white), but below this chroma a
# match's colour is taken as exactly neutral.
NEUTRAL_CHROMA = 3.0
# A match is kept when at least this many other candidates within `SUPPORT_REACH` cells
# of it in the photo match cells as close by in the reference.
SUPPORT_REACH = 2
MIN_SUPPORT = 2
DEFAULT_MAX_HINTS = 96
# Matches whose colours lie within this many a*, b* units spread as one group.
GROUP_TOLERANCE = 6.0
# Fewer confident matches than this are taken for chance (an unrelated reference finds a
# few): no hints are made, and with the fallback "global" the global transfer is used.
MIN_MATCHES = 8
# A reference whose median chroma is below this is gray: it has no colours to give.
GRAY_REFERENCE_CHROMA = 2.0


class ReferencePhotoError(InvalidOptionError):
    """A reference that cannot be used: unreadable, gray, or too large."""


@dataclass(frozen=True)
class Reference:
    """A reference photo as the matcher reads it: computed once, used for any photo."""

    name: str
    descriptors: torch.Tensor  # (N, C) unit vectors, one per cell
    lightness: torch.Tensor  # (N,) each cell's mean L*, standardised over the photo
    ab: torch.Tensor  # (N, 2) each cell's median a*, b*
    grid: tuple[int, int]  # cells (rows, columns)
    mean_ab: torch.Tensor  # (2,) the whole reference's mean a*, b*
    std_ab: torch.Tensor  # (2,) and their spread


@dataclass(frozen=True)
class Match:
    """A photo cell that took a reference's colour."""

    row: int
    col: int
    ab: torch.Tensor  # (2,) a*, b*
    confidence: float  # the cosine similarity of the match (for --consistent, its votes)


@dataclass(frozen=True)
class Cells:
    """A photo's cells at the match size: descriptors and standardised lightness."""

    descriptors: torch.Tensor  # (N, C)
    lightness: torch.Tensor  # (N,)
    grid: tuple[int, int]
    size: tuple[int, int]  # the match size, (width, height)


def match_size(width: int, height: int) -> tuple[int, int]:
    """`(width, height)` scaled to a short side of `MATCH_SIZE` (a long side of at most
    `MATCH_MAX_LONG`: a panorama's cells stay few), each a multiple of `CELL`."""
    scale = min(MATCH_SIZE / min(width, height), MATCH_MAX_LONG / max(width, height))
    return (
        max(CELL, round(width * scale / CELL) * CELL),
        max(CELL, round(height * scale / CELL) * CELL),
    )


@torch.inference_mode()
def describe(colorizer: Colorizer, luma: Image.Image) -> Cells:
    """The cells of a photo's luma (mode "L", any size), as the matcher compares them."""
    from rechroma.inference.colorizer import gray_lightness_table

    model = colorizer.model
    if not hasattr(model, "features"):
        raise InvalidOptionError(
            f"model {colorizer.info.model_name!r} cannot match a reference (it takes no hints)"
        )
    size = match_size(*luma.size)
    small = luma.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
    levels = torch.frombuffer(bytearray(small.tobytes()), dtype=torch.uint8).long()
    lightness = gray_lightness_table()[levels].view(1, 1, size[1], size[0])
    features = model.features(normalize_l(lightness).to(colorizer.device))
    rows, cols = size[1] // CELL, size[0] // CELL
    # Strides 8 and 16 of the encoder: the first sees texture and parts, the second
    # objects. Each is normalised, so neither outweighs the other by its scale.
    fine = F.normalize(features[2].float()[:, :, :rows, :cols], dim=1)
    coarse = F.interpolate(features[3].float(), scale_factor=2, mode="bilinear")
    coarse = F.normalize(coarse[:, :, :rows, :cols], dim=1)
    descriptors = F.normalize(torch.cat([fine, coarse], dim=1), dim=1)[0].flatten(1).T.cpu()
    cell_lightness = F.avg_pool2d(lightness, CELL)[0, 0].flatten()
    return Cells(descriptors, _standardise(cell_lightness), (rows, cols), size)


def load_reference(
    colorizer: Colorizer,
    source: str | Path | bytes | Image.Image | np.ndarray,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Reference:
    """Read a reference photo (a path, bytes, a PIL image or an RGB array) for matching.

    Raises `ReferencePhotoError` with a one-line reason when it cannot be read, is too large
    or is gray (it has no colours to give).
    """
    label = name or (str(source) if isinstance(source, str | Path) else "reference")
    rgb = _reference_image(source, label, max_pixels)
    cells = describe(colorizer, rgb.convert("L"))
    small = rgb.resize(cells.size, Image.Resampling.BILINEAR, reducing_gap=3.0)
    ab = _colour_of(small, label)  # (2, h, w)
    rows, cols = cells.grid
    # Each cell's median a*, b*: the colour of most of it, not a mix of its parts.
    blocks = ab[:, : rows * CELL, : cols * CELL].reshape(2, rows, CELL, cols, CELL)
    cell_ab = blocks.permute(1, 3, 0, 2, 4).reshape(rows * cols, 2, CELL * CELL).median(-1).values
    neutral = cell_ab.norm(dim=1) < NEUTRAL_CHROMA
    cell_ab[neutral] = 0.0
    flat = ab.flatten(1)
    return Reference(
        name=label,
        descriptors=cells.descriptors,
        lightness=cells.lightness,
        ab=cell_ab,
        grid=cells.grid,
        mean_ab=flat.mean(1),
        std_ab=flat.std(1),
    )


def _reference_image(
    source: str | Path | bytes | Image.Image | np.ndarray, label: str, max_pixels: int
) -> Image.Image:
    if isinstance(source, Image.Image):
        if source.width * source.height > max_pixels:
            raise ReferencePhotoError(f"{label}: {source.width}x{source.height} is too large")
        return source.convert("RGB")
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[2] not in (3, 4):
            raise ReferencePhotoError(f"{label}: an array of shape {source.shape} is not RGB")
        array = source[..., :3]
        if np.issubdtype(array.dtype, np.floating):
            array = np.clip(array * 255.0 + 0.5, 0, 255)
        return _reference_image(Image.fromarray(array.astype(np.uint8)), label, max_pixels)
    if isinstance(source, bytes | bytearray | memoryview | str | Path):
        from rechroma.errors import ImageReadError

        data = bytes(source) if isinstance(source, bytes | bytearray | memoryview) else source
        try:
            return open_colour_photo(data, max_pixels, name=label)
        except ImageReadError as exc:
            raise ReferencePhotoError(str(exc)) from exc
    raise TypeError(
        f"a reference is a path, bytes, a PIL image or a NumPy array, not {type(source).__name__}"
    )


def match_cells(photo: Cells, references: Sequence[Reference], ratio: float = RATIO) -> list[Match]:
    """The photo's cells that take a reference's colour, each with its best match."""
    best: dict[int, Match] = {}
    for reference in references:
        for match in _match_one(photo, reference, ratio):
            index = match.row * photo.grid[1] + match.col
            if index not in best or match.confidence > best[index].confidence:
                best[index] = match
    return list(best.values())


def _match_one(photo: Cells, reference: Reference, ratio: float) -> list[Match]:
    similarity = photo.descriptors @ reference.descriptors.T  # (N photo, M reference)
    top, chosen = similarity.max(dim=1)
    # The runner-up outside the chosen cell's 3x3 neighbourhood: its neighbours look
    # alike, which is no ambiguity.
    rows, cols = reference.grid
    near = _neighbourhood(chosen, rows, cols)
    masked = similarity.masked_fill(near, -2.0)
    second = masked.max(dim=1).values
    distance = torch.sqrt((2 - 2 * top).clamp_min(0))
    runner_up = torch.sqrt((2 - 2 * second).clamp_min(1e-12))
    unique = distance < ratio * runner_up
    # Mutual: the reference cell's own best photo cell is this one or beside it.
    back = similarity.argmax(dim=0)[chosen]
    photo_cols = photo.grid[1]
    here = torch.arange(similarity.shape[0])
    mutual = ((back // photo_cols - here // photo_cols).abs() <= 1) & (
        (back % photo_cols - here % photo_cols).abs() <= 1
    )
    alike = (photo.lightness - reference.lightness[chosen]).abs() < LIGHTNESS_TOLERANCE
    candidates = (unique & mutual & alike).nonzero().flatten()
    keep = candidates[_supported(candidates, chosen[candidates], photo_cols, cols)].tolist()
    return [
        Match(
            row=index // photo_cols,
            col=index % photo_cols,
            ab=reference.ab[chosen[index]],
            confidence=float(top[index]),
        )
        for index in keep
    ]


def _supported(
    photo_cells: torch.Tensor, reference_cells: torch.Tensor, photo_cols: int, cols: int
) -> torch.Tensor:
    """Which candidate matches another nearby candidate agrees with: one at most
    `SUPPORT_REACH` cells away in the photo whose match lies as near in the reference (a
    scene's parts keep their neighbours; a chance match has none)."""
    if len(photo_cells) < 2:
        return torch.zeros(len(photo_cells), dtype=torch.bool)
    rows, cols_ = photo_cells // photo_cols, photo_cells % photo_cols
    ref_rows, ref_cols = reference_cells // cols, reference_cells % cols
    apart = torch.maximum((rows[:, None] - rows[None]).abs(), (cols_[:, None] - cols_[None]).abs())
    ref_apart = torch.maximum(
        (ref_rows[:, None] - ref_rows[None]).abs(), (ref_cols[:, None] - ref_cols[None]).abs()
    )
    near = (apart > 0) & (apart <= SUPPORT_REACH)
    agrees = near & (ref_apart <= 2 * apart + 1)
    return agrees.sum(dim=1) >= MIN_SUPPORT


def _neighbourhood(chosen: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """(N, rows * cols) True at the 3x3 cells around each chosen cell."""
    grid_row = torch.arange(rows * cols) // cols
    grid_col = torch.arange(rows * cols) % cols
    return ((grid_row[None] - (chosen // cols)[:, None]).abs() <= 1) & (
        (grid_col[None] - (chosen % cols)[:, None]).abs() <= 1
    )


def thin(matches: Sequence[Match], max_hints: int, spacing: int = 2) -> list[Match]:
    """At most `max_hints` matches, the most confident first, no two within `spacing`
    cells of each other: spread over the photo rather than piled on one wall."""
    kept: list[Match] = []
    for match in sorted(matches, key=lambda m: -m.confidence):
        if len(kept) == max_hints:
            break
        if all(max(abs(match.row - k.row), abs(match.col - k.col)) >= spacing for k in kept):
            kept.append(match)
    return kept


def matches_to_hints(matches: Sequence[Match], cells: Cells, size: tuple[int, int]) -> list[Hint]:
    """Hints at the centres of the matched cells, in pixels of a `size` photo, a cell
    across."""
    from rechroma.color import lab_to_rgb

    if not matches:
        return []
    width, height = size
    scale_x, scale_y = width / cells.size[0], height / cells.size[1]
    # The hint's colour carries only its a*, b*; at L* 60 nearly every a*, b* a photo
    # has lies inside sRGB, so the colour read back is the one matched.
    ab = torch.stack([m.ab for m in matches], dim=1)  # (2, N)
    lab = torch.cat([torch.full((1, ab.shape[1]), 60.0), ab], dim=0)[:, :, None]
    rgb = (lab_to_rgb(lab, clip=True)[:, :, 0].T * 255 + 0.5).clamp(0, 255).byte().tolist()
    radius = 0.5 * CELL * min(scale_x, scale_y)
    hints = []
    for match, (red, green, blue) in zip(matches, rgb, strict=True):
        x = min((match.col + 0.5) * CELL * scale_x, width - 1)
        y = min((match.row + 0.5) * CELL * scale_y, height - 1)
        hints.append(Hint(x, y, f"#{red:02x}{green:02x}{blue:02x}", radius))
    return hints


def reference_hints(
    colorizer: Colorizer,
    luma: Image.Image,
    references: Sequence[Reference],
    max_hints: int = DEFAULT_MAX_HINTS,
) -> list[Hint]:
    """The confident matches of `references` in a photo (its full-size luma), as hints."""
    if not 1 <= max_hints <= MAX_HINTS:
        raise InvalidOptionError(f"max hints {max_hints} is outside 1..{MAX_HINTS}")
    cells = describe(colorizer, luma)
    matches = match_cells(cells, references)
    logger.debug("%d confident matches from %d references", len(matches), len(references))
    # A handful of matches is what chance gives an unrelated reference: none are taken.
    if len(matches) < MIN_MATCHES:
        return []
    return in_colour_groups(matches_to_hints(thin(matches, max_hints), cells, luma.size))


def in_colour_groups(hints: Sequence[Hint]) -> list[Hint]:
    """`hints`, each with the group of its colour (`colour_groups`) set."""
    groups = colour_groups(hints)
    return [dataclasses.replace(hint, group=g) for hint, g in zip(hints, groups, strict=True)]


def colour_groups(hints: Sequence[Hint], tolerance: float | None = None) -> list[int]:
    """For each hint, a group of hints of about its colour (within `tolerance` a*, b* of
    the group's first): a group spreads as one (`spread_hints`), so a reference's many
    matches cost what a few colours do. At most `MAX_HINTS` groups, as hints have."""
    if not hints:
        return []
    from rechroma.color import rgb_to_lab

    tolerance = GROUP_TOLERANCE if tolerance is None else tolerance
    rgb = torch.tensor([hint.rgb() for hint in hints]).T[:, :, None]
    ab = rgb_to_lab(rgb)[1:, :, 0].T  # (N, 2)
    firsts: list[torch.Tensor] = []
    groups = []
    for colour in ab:
        for index, first in enumerate(firsts):
            if float((colour - first).norm()) <= tolerance:
                groups.append(index)
                break
        else:
            groups.append(len(firsts))
            firsts.append(colour)
    return groups


def global_transfer(ab: torch.Tensor, references: Sequence[Reference]) -> torch.Tensor:
    """`(2, h, w)` a*, b* moved to the references' mean and spread (Reinhard et al.'s
    transfer, on the chroma alone: the photo keeps its lightness)."""
    target_mean = torch.stack([r.mean_ab for r in references]).mean(0)
    target_std = torch.stack([r.std_ab for r in references]).mean(0)
    flat = ab.flatten(1)
    mean, std = flat.mean(1), flat.std(1).clamp_min(1.0)
    return (ab - mean[:, None, None]) / std[:, None, None] * target_std[:, None, None] + (
        target_mean[:, None, None]
    )


FALLBACKS = ("none", "global")


@dataclass(frozen=True)
class ReferenceSet:
    """References read once, and how strongly their colours apply to every photo."""

    references: tuple[Reference, ...]
    strength: float = 1.0  # 0: the automatic colour; 1: the reference's in full
    # Where too few confident matches are found: "none" keeps the automatic colour,
    # "global" moves it to the references' colour statistics (`global_transfer`).
    fallback: str = "none"
    max_hints: int = DEFAULT_MAX_HINTS

    def __post_init__(self) -> None:
        blend_strength(self.strength)
        if self.fallback not in FALLBACKS:
            raise InvalidOptionError(
                f"reference fallback {self.fallback!r} is not one of {FALLBACKS}"
            )
        if not 1 <= self.max_hints <= MAX_HINTS:
            raise InvalidOptionError(f"max hints {self.max_hints} is outside 1..{MAX_HINTS}")

    def hints_for(self, colorizer: Colorizer, luma: Image.Image) -> list[Hint]:
        """The references' confident matches in a photo (its full-size luma), as hints
        in colour groups."""
        return reference_hints(colorizer, luma, self.references, self.max_hints)


ReferenceSource = str | Path | bytes | Image.Image | np.ndarray


def load_references(
    colorizer: Colorizer,
    sources: ReferenceSource | Sequence[ReferenceSource],
    strength: float = 1.0,
    fallback: str = "none",
    max_hints: int = DEFAULT_MAX_HINTS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ReferenceSet:
    """Read references for matching: one source or several, a folder standing for every
    photo in it (sorted by name). Raises `ReferencePhotoError` for one that cannot be used."""
    items = [sources] if isinstance(sources, ReferenceSource) else list(sources)
    expanded = _with_folders_opened(items)
    if not expanded:
        raise ReferencePhotoError("no reference photo given")
    references = tuple(load_reference(colorizer, item, max_pixels=max_pixels) for item in expanded)
    return ReferenceSet(references, strength, fallback, max_hints)


def _with_folders_opened(sources: Sequence[ReferenceSource]) -> list[ReferenceSource]:
    """`sources`, each folder replaced by the photos in it (sorted by name); a folder
    without photos is refused."""
    expanded: list[ReferenceSource] = []
    for item in sources:
        if isinstance(item, str | Path) and Path(item).is_dir():
            photos = sorted(p for p in Path(item).iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
            if not photos:
                raise ReferencePhotoError(f"{item}: the reference folder holds no photos")
            expanded.extend(photos)
        else:
            expanded.append(item)
    return expanded


@dataclass(frozen=True)
class ReferenceOptions:
    """References named by path, for a batch: each worker reads them once."""

    paths: tuple[Path, ...]
    strength: float = 1.0
    fallback: str = "none"

    def load(self, colorizer: Colorizer) -> ReferenceSet:
        """The references read for `colorizer` (once per colorizer and options)."""
        loaded = _loaded.setdefault(colorizer, {})
        if self not in loaded:
            loaded[self] = load_references(colorizer, self.paths, self.strength, self.fallback)
        return loaded[self]


# References already read, per colorizer: a folder's workers read them once each.
_loaded: weakref.WeakKeyDictionary[Colorizer, dict[ReferenceOptions, ReferenceSet]] = (
    weakref.WeakKeyDictionary()
)


def check_reference_files(paths: Sequence[Path], max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse, before any photo is coloured, a reference that cannot be read or is gray."""
    for photo in _with_folders_opened(paths):
        rgb = _reference_image(photo, str(photo), max_pixels)
        rgb.thumbnail((MATCH_SIZE, MATCH_SIZE))
        _colour_of(rgb, str(photo))


def _colour_of(rgb: Image.Image, label: str) -> torch.Tensor:
    """`(2, h, w)` a*, b* of an RGB image; `ReferencePhotoError` when it is gray."""
    pixels = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
    ab = rgb_to_lab(pixels)[1:]
    if float(ab.norm(dim=0).median()) < GRAY_REFERENCE_CHROMA:
        raise ReferencePhotoError(f"{label}: the reference is gray; it has no colours to give")
    return ab


def _standardise(values: torch.Tensor) -> torch.Tensor:
    return (values - values.mean()) / values.std().clamp_min(1e-3)


def blend_strength(strength: float) -> float:
    """`strength` checked: 0 is the automatic colour, 1 the reference's in full."""
    if not 0.0 <= strength <= 1.0:  # NaN too: it compares false
        raise InvalidOptionError(f"reference strength {strength} is outside 0..1")
    return strength
