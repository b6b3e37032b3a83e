"""Spread a colour hint over the region it belongs to, stopping at edges.

The network takes hints as input, but one trained for a few hours on a CPU moves the
colour only near each hint. People expect a pin on a dress to recolour the dress. So
after the network, every pixel's colour is pulled towards the hints' colours: the weight
of hint i at a pixel falls with the *geodesic* distance between them, a path length in
which every step across a change of lightness costs extra (as in Levin et al. 2004,
"Colorization using Optimization", and the geodesic propagation of Criminisi et al.
2010). A path that crosses a strong edge is long, so the colour stays on its side of
it; far from every hint, the network's own colour is left alone.

Distances are found on a grid of at most 64 pixels on its short side, where a few dozen
relaxation steps cover the picture in milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.nn import functional as F

from rechroma.color import denormalize_ab
from rechroma.inference.hints import Hint, hint_boxes

# Extra path length, in grid pixels, for each L* unit of lightness change along a step
# beyond EDGE_THRESHOLD: shading and texture inside a region (changes of up to 1 L*
# between neighbouring cells) cost nothing, while crossing a 20 L* edge costs as much as
# walking 76 pixels of flat region. Against a plain cost of 1 per L* (reach 0.45), this
# keeps 9% more of a pin's colour on its own side of an edge at the same strength inside,
# and scores higher with 10 hints (benchmarks/hint_leak.py; docs/BENCHMARKS.md). These
# constants were tuned on training photos (places, faces), never on photos-val.
EDGE_COST = 4.0
EDGE_THRESHOLD = 1.0
# Geodesic distance, as a fraction of the grid's short side, at which a hint's weight has
# fallen to 1/e.
REACH = 0.7
# Weight below which the network's colour wins: far from every hint, little changes.
FLOOR = 0.15
# The same for grouped hints (a reference's matches): a group's one weight stands for
# several hints' summed ones, so the network's colour yields sooner. Chosen with
# `rechroma eval --reference` on 24-40 photos of the held-out places shard (train-002),
# never photos-val: of 0.15, 0.05, 0.03 and 0.01, the lowest scored best in the
# counterfactual and frames modes and changed nothing in the unrelated one.
GROUPED_FLOOR = 0.01
# The grid on which distances are computed: this many pixels on its short side at most.
GRID_SHORT_SIDE = 64


@torch.inference_mode()
def spread_hints(
    ab: torch.Tensor,
    lightness: torch.Tensor,
    hints: Sequence[Hint],
    size: tuple[int, int],
) -> torch.Tensor:
    """The network's ab, pulled towards the hints' colours over the regions they belong to.

    Args:
        ab: `(2, h, w)` the network's ab at render size, Lab units.
        lightness: `(1, h, w)` L* at render size, in [0, 100].
        hints: validated hints, in pixels of the full-size photo.
        size: the photo's full-size `(width, height)`.

    Hints of one `group` (a reference's matches of about one colour, say on one wall)
    share one distance map and their mean colour, so many hints cost what a few do; a
    hint without a group spreads on its own.

    Returns:
        `(2, h, w)` ab, Lab units.
    """
    if not hints:
        return ab
    height, width = ab.shape[-2:]
    grouped = any(hint.group is not None for hint in hints)
    groups = [(0, h.group) if h.group is not None else (1, i) for i, h in enumerate(hints)]
    order = {group: index for index, group in enumerate(dict.fromkeys(groups))}
    seeds = torch.zeros(len(order), height, width)
    targets = torch.zeros(len(order), 2)  # each group's colours, summed
    counts = torch.zeros(len(order))
    for group, ((top, bottom, left, right), hint_ab) in zip(
        groups, hint_boxes(hints, size, (height, width)), strict=True
    ):
        index = order[group]
        seeds[index, top:bottom, left:right] = 1.0
        targets[index] += denormalize_ab(hint_ab)
        counts[index] += 1
    weights = _geodesic_weights(lightness[0], seeds)  # (G, h, w)
    total = weights.sum(dim=0, keepdim=True)
    # The hints' colours, each pixel weighting them by closeness; and how far to go
    # towards that colour: all the way at a hint, not at all far from every hint.
    hinted = torch.einsum("ghw,gc->chw", weights, targets / counts[:, None])
    hinted = hinted / total.clamp_min(1e-6)
    # A group stands for many hints, whose weights would have added up where they lie
    # close together: its pull is as strong as theirs would be.
    floor = GROUPED_FLOOR if grouped else FLOOR
    return torch.lerp(ab, hinted, total / (total + floor))


def _geodesic_weights(lightness: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """`exp(-(d / reach)^2)` of each seed's geodesic distance, at render size.

    Args:
        lightness: `(h, w)` L*.
        seeds: `(N, h, w)`, 1 where each hint (or group of hints) is.
    """
    height, width = lightness.shape
    scale = min(1.0, GRID_SHORT_SIDE / min(height, width))
    grid = (max(2, round(height * scale)), max(2, round(width * scale)))
    small_l = F.interpolate(lightness[None, None], size=grid, mode="area")[0, 0]
    # A seed anywhere in a grid cell marks the cell.
    small_seeds = F.adaptive_max_pool2d(seeds[:, None], grid)[:, 0]
    distance = torch.where(small_seeds > 0, 0.0, math.inf)
    steps = _step_costs(small_l)
    # Each relaxation lets paths grow by one cell in every direction; the weight is
    # negligible beyond 2.5 reaches, so paths longer than that need not be found.
    reach = REACH * min(grid)
    for _ in range(math.ceil(2.5 * reach)):
        updated = distance.clone()
        for offset, neighbour in _neighbours(distance):
            torch.minimum(updated, neighbour + steps[offset], out=updated)
        if torch.equal(updated, distance):
            break
        distance = updated
    weights = torch.exp(-((distance / reach) ** 2))
    return F.interpolate(
        weights[:, None], size=(height, width), mode="bilinear", align_corners=False
    )[:, 0]


def _step_costs(lightness: torch.Tensor) -> dict[tuple[int, int], torch.Tensor]:
    """Cost of reaching each cell from its neighbour at offset (dy, dx): the step's
    length plus `EDGE_COST` per L* unit between the two cells beyond `EDGE_THRESHOLD`."""
    return {
        (dy, dx): math.hypot(dy, dx)
        + EDGE_COST * ((lightness - neighbour[0]).abs() - EDGE_THRESHOLD).clamp_min(0)
        for (dy, dx), neighbour in _neighbours(lightness[None])
    }


def _neighbours(values: torch.Tensor) -> Iterator[tuple[tuple[int, int], torch.Tensor]]:
    """For each of the 8 offsets (dy, dx): every cell's neighbour at (y - dy, x - dx), as
    a view of `values` (`(..., h, w)`) padded with infinity, so outside is never a step."""
    rows, cols = values.shape[-2:]
    padded = F.pad(values, (1, 1, 1, 1), value=math.inf)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                yield (dy, dx), padded[..., 1 - dy : 1 - dy + rows, 1 - dx : 1 - dx + cols]
