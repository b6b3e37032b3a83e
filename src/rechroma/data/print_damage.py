"""Print damage drawn on clean gray photos, with its exact mask: what a defect detector learns.

Scanned prints carry scratches (long thin curves, bright where the emulsion is gone,
dark where dirt sits in them), dust and specks, hairs, networks of cracked emulsion
(branching thin bright lines, as on the portraits in BOPBTL's test set) and fold lines;
and, as real prints show them (issue #41), cracks whose width wanders along them with
ragged edges, chips of emulsion flaking off, worn borders and torn corners.
Each is drawn into an opacity map at the photo's scale (sizes are given for a 1-megapixel
photo and grow with the square root of its pixel count), softened as a scanner's optics
soften it, and laid over the photo in its own tone. The mask is where the opacity is
high enough to see: what a repair should fill, and nothing else.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, UnidentifiedImageError

from rechroma.data.shards import ShardDataset, center_crop, decode_rgb, random_resized_crop

logger = logging.getLogger(__name__)

# Opacity over which a pixel counts as damaged in the mask.
MASK_OPACITY = 0.25


@dataclass(frozen=True)
class DamageConfig:
    """How much of each kind of damage a photo gets: counts are drawn uniformly from
    `(low, high)`; each kind appears on a photo with its `*_prob`."""

    scratch_prob: float = 0.7
    scratches: tuple[int, int] = (1, 6)
    scratch_width: tuple[float, float] = (1.0, 5.0)  # px at 1 MP
    dust_prob: float = 0.8
    dust: tuple[int, int] = (5, 60)
    dust_size: tuple[float, float] = (1.0, 8.0)  # px at 1 MP
    hair_prob: float = 0.3
    hairs: tuple[int, int] = (1, 3)
    crack_prob: float = 0.35
    cracks: tuple[int, int] = (1, 4)  # networks
    crack_width: tuple[float, float] = (1.0, 3.0)  # px at 1 MP, halved by the 2nd branching
    fold_prob: float = 0.15
    # Creases: a print bent without breaking shows a line of relief, lit on one side and
    # shadowed on the other (the diagonal crack of the cracked portrait in docs/). Off by
    # default, so that evaluation damage stays what the bars were set on.
    crease_prob: float = 0.0
    creases: tuple[int, int] = (1, 2)
    # Share of defects drawn faint (opacity 0.3-0.6): worn scratches and creases on real
    # prints are often barely lighter than the photo. Off by default, as above.
    faint_share: float = 0.0
    # Real prints' damage (issue #41), all off by default so that the seeded evaluation
    # damage stays what the bars were set on. Emulsion cracks as on real prints: networks
    # whose width wanders along each crack (1-8 px at 1 MP), bright paper showing through
    # with ragged edges, chips flaking off along them.
    emulsion_prob: float = 0.0
    emulsion_cracks: tuple[int, int] = (1, 3)  # networks
    emulsion_width: tuple[float, float] = (1.0, 8.0)  # px at 1 MP, along each crack
    # Flakes: patches of emulsion gone, ragged blobs of 6-40 px at 1 MP.
    flake_prob: float = 0.0
    flakes: tuple[int, int] = (1, 8)
    flake_size: tuple[float, float] = (6.0, 40.0)
    # A worn border: paper showing along one to four edges, ragged inwards, and torn
    # corners.
    edge_prob: float = 0.0
    # The scanner's blur, in px at 1 MP.
    blur: tuple[float, float] = (0.3, 1.0)
    # Share of defects that are dark (dirt, ink) rather than bright (missing emulsion).
    dark_share: float = 0.35


@dataclass(frozen=True)
class Damaged:
    """A damaged photo and where its damage is."""

    image: np.ndarray  # (H, W) uint8: the damaged gray photo
    mask: np.ndarray  # (H, W) bool: True where damage was drawn
    opacity: np.ndarray  # (H, W) float32 in [0, 1]: how strongly


def damage_photo(
    gray: np.ndarray,
    rng: np.random.Generator,
    cfg: DamageConfig = DamageConfig(),
    scale: float | None = None,
) -> Damaged:
    """Draw print damage on `gray` ((H, W) uint8); seeded by `rng`, never in place.

    `scale` sizes the defects (1 for a 1-megapixel photo); by default the photo's own,
    the square root of its megapixels. A training crop passes the scale of the photo it
    stands for, so that its defects are as wide as they would be there.
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"damage_photo takes an (H, W) uint8 photo, got {gray.shape} {gray.dtype}")
    height, width = gray.shape
    scale = math.sqrt(height * width / 1e6) if scale is None else scale
    bright = Image.new("L", (width, height), 0)  # opacity of bright defects, 0..255
    dark = Image.new("L", (width, height), 0)
    layers = (ImageDraw.Draw(bright), ImageDraw.Draw(dark))

    def layer() -> ImageDraw.ImageDraw:
        return layers[1] if rng.random() < cfg.dark_share else layers[0]

    if rng.random() < cfg.scratch_prob:
        for _ in range(int(rng.integers(cfg.scratches[0], cfg.scratches[1] + 1))):
            _scratch(layer(), width, height, scale, rng, cfg)
    if rng.random() < cfg.dust_prob:
        for _ in range(int(rng.integers(cfg.dust[0], cfg.dust[1] + 1))):
            _speck(layer(), width, height, scale, rng, cfg)
    if rng.random() < cfg.hair_prob:
        for _ in range(int(rng.integers(cfg.hairs[0], cfg.hairs[1] + 1))):
            _hair(layers[1] if rng.random() < 0.7 else layers[0], width, height, scale, rng)
    if rng.random() < cfg.crack_prob:
        for _ in range(int(rng.integers(cfg.cracks[0], cfg.cracks[1] + 1))):
            _crack_network(layers[0], width, height, scale, rng, cfg)
    if rng.random() < cfg.fold_prob:
        _fold(layers[0], width, height, scale, rng)
    # Drawn only when asked for, so the seeded damage of the default config stays the same.
    if cfg.crease_prob and rng.random() < cfg.crease_prob:
        for _ in range(int(rng.integers(cfg.creases[0], cfg.creases[1] + 1))):
            _crease(layers, width, height, scale, rng)
    if cfg.emulsion_prob and rng.random() < cfg.emulsion_prob:
        for _ in range(int(rng.integers(cfg.emulsion_cracks[0], cfg.emulsion_cracks[1] + 1))):
            _emulsion_cracks(layers[0], width, height, scale, rng, cfg)
    if cfg.flake_prob and rng.random() < cfg.flake_prob:
        for _ in range(int(rng.integers(cfg.flakes[0], cfg.flakes[1] + 1))):
            size = float(rng.uniform(*cfg.flake_size)) * scale
            centre = (float(rng.uniform(0, width)), float(rng.uniform(0, height)))
            _flake(layers[0], centre, size, rng)
    if cfg.edge_prob and rng.random() < cfg.edge_prob:
        _worn_edges(layers[0], width, height, scale, rng)

    sigma = float(rng.uniform(*cfg.blur)) * max(scale, 0.25)
    soften = ImageFilter.GaussianBlur(sigma)
    bright_a = np.asarray(bright.filter(soften), dtype=np.float32) / 255.0
    dark_a = np.asarray(dark.filter(soften), dtype=np.float32) / 255.0
    # Each defect has its own tone: bright ones near white, dark ones near black.
    photo = gray.astype(np.float32)
    bright_tone = float(rng.uniform(205, 250))
    dark_tone = float(rng.uniform(10, 60))
    out = photo * (1 - bright_a) + bright_tone * bright_a
    out = out * (1 - dark_a) + dark_tone * dark_a
    opacity = np.maximum(bright_a, dark_a)
    # A defect is only damage where it changes the photo: a bright speck on white is not.
    visible = np.abs(out - photo) >= 6.0
    mask = (opacity >= MASK_OPACITY) & visible
    return Damaged(np.clip(out + 0.5, 0, 255).astype(np.uint8), mask, opacity)


def _curve(
    start: tuple[float, float],
    angle: float,
    length: float,
    steps: int,
    bend: float,
    rng: np.random.Generator,
) -> list[tuple[float, float]]:
    """A gently bending path: a random walk of the heading."""
    x, y = start
    points = [(x, y)]
    step = length / steps
    for _ in range(steps):
        angle += float(rng.normal(0, bend))
        x, y = x + step * math.cos(angle), y + step * math.sin(angle)
        points.append((x, y))
    return points


def _opacity(rng: np.random.Generator, low: float = 0.6, faint_share: float = 0.0) -> int:
    if faint_share and rng.random() < faint_share:
        return int(rng.uniform(0.3, low) * 255)
    return int(rng.uniform(low, 1.0) * 255)


def _scratch(
    draw: ImageDraw.ImageDraw,
    width: int,
    height: int,
    scale: float,
    rng: np.random.Generator,
    cfg: DamageConfig,
) -> None:
    """A long thin curve across much of the photo, 1-5 px wide at 1 MP."""
    diagonal = math.hypot(width, height)
    start = (float(rng.uniform(0, width)), float(rng.uniform(0, height)))
    # Scratches run mostly along the film's travel: near vertical or near horizontal.
    base = float(rng.choice([math.pi / 2, 0.0])) + float(rng.normal(0, 0.35))
    points = _curve(start, base, float(rng.uniform(0.2, 0.9)) * diagonal, 24, 0.04, rng)
    line_width = max(1, round(float(rng.uniform(*cfg.scratch_width)) * scale))
    draw.line(points, fill=_opacity(rng, 0.6, cfg.faint_share), width=line_width, joint="curve")


def _speck(
    draw: ImageDraw.ImageDraw,
    width: int,
    height: int,
    scale: float,
    rng: np.random.Generator,
    cfg: DamageConfig,
) -> None:
    """A dust speck: a small irregular blob, 1-8 px at 1 MP."""
    size = max(1.0, float(rng.uniform(*cfg.dust_size)) * scale)
    x, y = float(rng.uniform(0, width)), float(rng.uniform(0, height))
    fill = _opacity(rng, 0.7)
    for _ in range(int(rng.integers(1, 4))):  # overlapping ellipses: not perfect discs
        rx = size / 2 * float(rng.uniform(0.5, 1.0))
        ry = size / 2 * float(rng.uniform(0.5, 1.0))
        cx, cy = x + float(rng.normal(0, size / 4)), y + float(rng.normal(0, size / 4))
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill)


def _hair(
    draw: ImageDraw.ImageDraw, width: int, height: int, scale: float, rng: np.random.Generator
) -> None:
    """A hair or fibre: thin, curly, 40-250 px long at 1 MP."""
    start = (float(rng.uniform(0, width)), float(rng.uniform(0, height)))
    length = float(rng.uniform(40, 250)) * scale
    points = _curve(start, float(rng.uniform(0, 2 * math.pi)), length, 40, 0.25, rng)
    draw.line(points, fill=_opacity(rng, 0.7), width=max(1, round(scale)), joint="curve")


def _crack_network(
    draw: ImageDraw.ImageDraw,
    width: int,
    height: int,
    scale: float,
    rng: np.random.Generator,
    cfg: DamageConfig,
) -> None:
    """Cracked emulsion: a thin jagged line that branches, and branches again."""
    for points, depth in _crack_tree(
        width, height, rng, (0.08, 0.3), 40, 12, 0.35, (0.4, 1.3), (0.3, 0.6)
    ):
        root_width = float(rng.uniform(*cfg.crack_width))
        line_width = max(1, round(root_width * scale / (1 + depth * 0.5)))
        draw.line(points, fill=_opacity(rng, 0.7, cfg.faint_share), width=line_width)


def _crack_tree(
    width: int,
    height: int,
    rng: np.random.Generator,
    reach: tuple[float, float],
    limit: int,
    steps: int,
    bend: float,
    turn: tuple[float, float],
    shrink: tuple[float, float],
) -> Iterator[tuple[list[tuple[float, float]], int]]:
    """The segments of a branching crack, `(points, depth)`, at most `limit` of them: a
    jagged path from a random point, `reach` of the diagonal long, and up to two branches
    from each, turned by `turn` and shortened by `shrink`, three deep. The caller draws
    each segment before its branches are drawn, so its random numbers come in between."""
    diagonal = math.hypot(width, height)
    stack = [
        (
            (float(rng.uniform(0, width)), float(rng.uniform(0, height))),
            float(rng.uniform(0, 2 * math.pi)),
            float(rng.uniform(*reach)) * diagonal,
            0,
        )
    ]
    segments = 0
    while stack and segments < limit:
        start, angle, length, depth = stack.pop()
        points = _curve(start, angle, length, steps, bend, rng)
        yield points, depth
        segments += 1
        if depth < 3:
            for _ in range(int(rng.integers(0, 3))):
                branch = points[int(rng.integers(1, len(points)))]
                heading = angle + float(rng.choice([-1, 1])) * float(rng.uniform(*turn))
                stack.append((branch, heading, length * float(rng.uniform(*shrink)), depth + 1))


def _ragged_line(
    draw: ImageDraw.ImageDraw,
    points: list[tuple[float, float]],
    widths: list[float],
    fill: int,
    rng: np.random.Generator,
) -> None:
    """A line whose width changes from point to point and whose edges are ragged: each
    stretch a quadrilateral between the points' jittered edges, joined by round ends."""
    for (x0, y0), (x1, y1), w0, w1 in zip(points, points[1:], widths, widths[1:], strict=False):
        length = math.hypot(x1 - x0, y1 - y0) or 1.0
        nx, ny = -(y1 - y0) / length, (x1 - x0) / length  # the normal
        jitter = rng.uniform(0.6, 1.2, 4)
        draw.polygon(
            [
                (x0 + nx * w0 / 2 * jitter[0], y0 + ny * w0 / 2 * jitter[0]),
                (x1 + nx * w1 / 2 * jitter[1], y1 + ny * w1 / 2 * jitter[1]),
                (x1 - nx * w1 / 2 * jitter[2], y1 - ny * w1 / 2 * jitter[2]),
                (x0 - nx * w0 / 2 * jitter[3], y0 - ny * w0 / 2 * jitter[3]),
            ],
            fill=fill,
        )
        radius = w1 / 2
        draw.ellipse((x1 - radius, y1 - radius, x1 + radius, y1 + radius), fill=fill)


def _emulsion_cracks(
    draw: ImageDraw.ImageDraw,
    width: int,
    height: int,
    scale: float,
    rng: np.random.Generator,
    cfg: DamageConfig,
) -> None:
    """Cracked emulsion as on real prints: a jagged branching network whose width wanders
    along each crack, with ragged edges and chips flaking off beside it."""
    low, high = cfg.emulsion_width
    tree = _crack_tree(width, height, rng, (0.06, 0.25), 30, 16, 0.3, (0.5, 1.4), (0.25, 0.6))
    for points, depth in tree:
        # The width wanders: a random walk in log space, held inside the range.
        level = float(rng.uniform(math.log(low), math.log(high))) - 0.4 * depth
        widths = []
        for _ in points:
            level = min(math.log(high), max(math.log(low), level + float(rng.normal(0, 0.25))))
            widths.append(max(1.0, math.exp(level) * scale))
        fill = _opacity(rng, 0.75, cfg.faint_share)
        _ragged_line(draw, points, widths, fill, rng)
        for _ in range(int(rng.poisson(1.0))):  # chips flaking off along the crack
            index = int(rng.integers(0, len(points)))
            _flake(draw, points[index], widths[index] * float(rng.uniform(1.5, 3.5)), rng, fill)


def _flake(
    draw: ImageDraw.ImageDraw,
    centre: tuple[float, float],
    size: float,
    rng: np.random.Generator,
    fill: int | None = None,
) -> None:
    """A chip of emulsion gone: a ragged blob about `size` px across."""
    corners = int(rng.integers(7, 14))
    angles = np.sort(rng.uniform(0, 2 * math.pi, corners))
    radii = size / 2 * rng.uniform(0.4, 1.0, corners)
    stretch = float(rng.uniform(0.4, 1.0))  # chips are often longer than wide
    turn = float(rng.uniform(0, math.pi))
    x, y = centre
    outline = []
    for angle, radius in zip(angles, radii, strict=True):
        dx, dy = radius * math.cos(angle), radius * math.sin(angle) * stretch
        outline.append(
            (
                x + dx * math.cos(turn) - dy * math.sin(turn),
                y + dx * math.sin(turn) + dy * math.cos(turn),
            )
        )
    draw.polygon(outline, fill=_opacity(rng, 0.8) if fill is None else fill)


def _worn_edges(
    draw: ImageDraw.ImageDraw, width: int, height: int, scale: float, rng: np.random.Generator
) -> None:
    """A worn border: paper showing along one to four edges, its inner edge ragged, at
    most 3% of the side deep, and sometimes a torn corner."""
    fill = _opacity(rng, 0.8)
    for edge in rng.permutation(4)[: int(rng.integers(1, 5))]:
        along = width if edge in (0, 1) else height
        steps = max(8, int(along / max(4.0, 6 * scale)))
        depth = float(rng.uniform(1.5, 12.0)) * scale
        inner = np.clip(
            np.cumsum(rng.normal(0, depth / 4, steps + 1)) + depth * rng.uniform(0.2, 1.0), 0, None
        )
        inner = np.minimum(inner, 0.03 * (height if edge in (0, 1) else width) + 2)
        offsets = np.linspace(0, along, steps + 1)
        if edge == 0:  # top
            outline = [(0.0, 0.0), *zip(offsets, inner, strict=True), (float(width), 0.0)]
        elif edge == 1:  # bottom
            outline = [(0.0, float(height)), *zip(offsets, height - inner, strict=True)]
            outline.append((float(width), float(height)))
        elif edge == 2:  # left
            outline = [(0.0, 0.0), *zip(inner, offsets, strict=True), (0.0, float(height))]
        else:  # right
            outline = [(float(width), 0.0), *zip(width - inner, offsets, strict=True)]
            outline.append((float(width), float(height)))
        draw.polygon([(float(a), float(b)) for a, b in outline], fill=fill)
    if rng.random() < 0.4:  # a torn corner
        corner_x = float(rng.choice([0, width]))
        corner_y = float(rng.choice([0, height]))
        reach = float(rng.uniform(15, 80)) * scale
        sign_x = 1 if corner_x == 0 else -1
        sign_y = 1 if corner_y == 0 else -1
        draw.polygon(
            [
                (corner_x, corner_y),
                (corner_x + sign_x * reach * float(rng.uniform(0.6, 1.4)), corner_y),
                (corner_x + sign_x * reach * 0.3, corner_y + sign_y * reach * 0.3),
                (corner_x, corner_y + sign_y * reach * float(rng.uniform(0.6, 1.4))),
            ],
            fill=fill,
        )


def _crease(
    layers: tuple[ImageDraw.ImageDraw, ImageDraw.ImageDraw],
    width: int,
    height: int,
    scale: float,
    rng: np.random.Generator,
) -> None:
    """A crease: a long, nearly straight line of relief, a bright edge beside a dark one,
    1-3 px each at 1 MP, at any angle, often only part of the way across."""
    diagonal = math.hypot(width, height)
    start = (float(rng.uniform(0, width)), float(rng.uniform(0, height)))
    angle = float(rng.uniform(0, 2 * math.pi))
    points = _curve(start, angle, float(rng.uniform(0.25, 1.0)) * diagonal, 16, 0.02, rng)
    line_width = max(1, round(float(rng.uniform(1.0, 3.0)) * scale))
    # The shadow lies beside the lit edge, across the line's heading.
    dx, dy = -math.sin(angle) * line_width, math.cos(angle) * line_width
    shadow = [(x + dx, y + dy) for x, y in points]
    bright, dark = layers
    bright.line(points, fill=_opacity(rng, 0.3), width=line_width, joint="curve")
    dark.line(shadow, fill=_opacity(rng, 0.3), width=line_width, joint="curve")


def _fold(
    draw: ImageDraw.ImageDraw, width: int, height: int, scale: float, rng: np.random.Generator
) -> None:
    """A fold line: nearly straight across the whole print, a little wider, fainter."""
    if rng.random() < 0.5:
        x = float(rng.uniform(0.2, 0.8)) * width
        points = [(x + float(rng.normal(0, 3 * scale)), 0.0), (x, float(height))]
    else:
        y = float(rng.uniform(0.2, 0.8)) * height
        points = [(0.0, y + float(rng.normal(0, 3 * scale))), (float(width), y)]
    line_width = max(2, round(float(rng.uniform(2.0, 6.0)) * scale))
    draw.line(points, fill=_opacity(rng, 0.4), width=line_width)


@dataclass(frozen=True)
class ScanConfig:
    """What a scan adds to a damaged training print that is no damage, and at what scale
    its damage is drawn."""

    # Megapixels of the photo a crop stands for (drawn per crop): its defects' width.
    scales: tuple[float, float] = (0.25, 1.2)
    # Share of crops with film grain in the print, under the damage.
    grain: float = 0.4
    # Share of crops with the scanner's noise over print and damage alike: real scans'
    # defects are as noisy as the photo around them, not clean strokes on grain.
    sensor_noise: float = 0.0
    sensor_noise_std: tuple[float, float] = (2.0, 8.0)  # levels of 255
    # Share of damaged crops saved as JPEG (quality 40-95) before the detector sees them:
    # block artefacts and ringing are what scans come as, and are no damage.
    jpeg: float = 0.5


@dataclass
class DamagedShards(ShardDataset):
    """`(damaged gray, mask)` training pairs from the photos of tar shards.

    Each photo becomes a random gray crop of `crop_size`, damaged as part of a photo of
    `scan.scales` (drawn per crop) megapixels' defect scale, with what a scan adds
    (`ScanConfig`: grain, sensor noise, JPEG) learnt as no damage. Yields `(1, S, S)` gray
    in [-1, 1] and `(1, S, S)` mask in {0, 1}. Evaluation mode is seeded per photo, so a
    validation set is fixed.
    """

    damage: DamageConfig = field(default_factory=DamageConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)

    def _samples(
        self, members: Iterable[tuple[str, bytes]], rng: np.random.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for index, (key, data) in enumerate(members):
            try:
                image = decode_rgb(data)
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                logger.warning("skipping undecodable sample %s: %s", key, exc)
                continue
            local = rng if self.train else np.random.default_rng([self.seed, index])
            if self.train:
                image = random_resized_crop(image, self.crop_size, self.min_crop_scale, local)
            else:
                image = center_crop(image, self.crop_size)
            gray = np.asarray(image.convert("L"))
            scan = self.scan
            if local.random() < scan.grain:
                gray = add_noise(gray, float(local.uniform(2, 8)), local)
            damaged = damage_photo(gray, local, self.damage, float(local.uniform(*scan.scales)))
            pixels = damaged.image
            # Drawn only when asked for, so the seeded crops of older configs stay the same.
            if scan.sensor_noise and local.random() < scan.sensor_noise:
                pixels = add_noise(pixels, float(local.uniform(*scan.sensor_noise_std)), local)
            if local.random() < scan.jpeg:
                buffer = io.BytesIO()
                Image.fromarray(pixels).save(buffer, "JPEG", quality=int(local.integers(40, 96)))
                pixels = np.asarray(Image.open(buffer))
            x = torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1.0)[None]
            yield x, torch.from_numpy(damaged.mask.astype(np.float32))[None]


def add_noise(gray: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """`gray` (uint8) with Gaussian noise of `std` levels."""
    noise = rng.normal(0, std, gray.shape)
    return np.clip(gray + noise + 0.5, 0, 255).astype(np.uint8)
