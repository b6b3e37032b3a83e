"""One set of colours across a folder: the same things keep one colour (`--consistent`).

A first pass colours every photo on its own, small. Each photo is then matched, as a
reference photo would be (`rechroma.inference.reference`), against the first-pass
colours of the folder's photos most like it, one by one: each photo where a cell's
thing recurs casts a vote for the colour it gave it, and the photo's own colour is one
vote more. Where most votes agree (within `DISAGREE` a*, b* units) on a colour other
than the photo's own, that colour becomes a hint. The second pass is the
ordinary colouring with those hints: a coat that came out blue in one photo and brown in
three others is brown in all four.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from PIL import Image

from rechroma.color import rgb_to_lab
from rechroma.inference.hints import Hint
from rechroma.inference.reference import (
    CELL,
    DEFAULT_MAX_HINTS,
    MIN_MATCHES,
    Match,
    Reference,
    ReferencePhotoError,
    describe,
    in_colour_groups,
    load_reference,
    match_cells,
    matches_to_hints,
    thin,
)

if TYPE_CHECKING:
    from rechroma.inference.colorizer import Colorizer

logger = logging.getLogger(__name__)

# A photo is matched against this many of the folder's photos, those most like it (the
# mean of their cells' descriptors): matching every pair would grow with the square.
PEERS = 8
# A consensus colour becomes a hint where the photo's own differs from it by this much.
DISAGREE = 12.0
# The first pass colours each photo with its short side at this size.
FIRST_PASS_SIZE = 256


def consistent_hints(
    colorizer: Colorizer,
    photos: Sequence[tuple[Image.Image, tuple[int, int]]],
    progress: Callable[[int], None] | None = None,
) -> list[list[Hint]]:
    """For each photo, given as its luma (any size; `first_pass_copy` makes a small one)
    and its full `(width, height)`, the hints that bring it to the folder's consensus, in
    pixels of the full size. `progress(1)` is called after each step of each photo."""
    small = [luma for luma, _ in photos]
    coloured = [colorizer.colorize(luma) for luma in small]
    references: list[Reference | None] = []
    for index, image in enumerate(coloured):
        try:
            references.append(load_reference(colorizer, image, name=f"photo {index}"))
        except ReferencePhotoError as exc:  # a gray first pass has no colour to share
            logger.debug("photo %d gives no colours to the others: %s", index, exc)
            references.append(None)
        if progress:
            progress(1)
    summaries = [
        None if r is None else torch.nn.functional.normalize(r.descriptors.mean(0), dim=0)
        for r in references
    ]
    answers = []
    for index, (_, size) in enumerate(photos):
        peers = _peers(index, summaries)
        hints: list[Hint] = []
        if peers:
            cells = describe(colorizer, small[index])
            own = _cell_ab(coloured[index], cells.size)
            votes: dict[tuple[int, int], list[torch.Tensor]] = {}
            for peer in peers:
                for match in match_cells(cells, [references[peer]]):
                    votes.setdefault((match.row, match.col), []).append(match.ab)
            changes = [
                Match(row, col, colour, confidence=len(peer_votes))
                for (row, col), peer_votes in votes.items()
                if (colour := _majority([own[:, row, col], *peer_votes])) is not None
                and float((colour - own[:, row, col]).norm()) > DISAGREE
            ]
            if len(changes) >= MIN_MATCHES:
                hints = in_colour_groups(
                    matches_to_hints(thin(changes, DEFAULT_MAX_HINTS), cells, size)
                )
        answers.append(hints)
        if progress:
            progress(1)
    return answers


def _majority(votes: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """The mean of the largest set of votes within `DISAGREE` of one of them, when it is
    more than half of them (the photo's own colour is one vote); None otherwise."""
    stacked = torch.stack(votes)
    near = torch.cdist(stacked, stacked) <= DISAGREE
    support = near.sum(dim=1)
    best = int(support.argmax())
    if int(support[best]) * 2 <= len(votes):
        return None
    return stacked[near[best]].mean(dim=0)


def first_pass_copy(gray: Image.Image) -> Image.Image:
    """The small copy of a photo's luma the first pass colours."""
    scale = FIRST_PASS_SIZE / min(gray.size)
    if scale >= 1:
        return gray
    size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
    return gray.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)


def _peers(index: int, summaries: Sequence[torch.Tensor | None]) -> list[int]:
    """The folder's photos most like photo `index`, itself left out."""
    own = summaries[index]
    if own is None:
        return []
    scored = [
        (float(own @ other), other_index)
        for other_index, other in enumerate(summaries)
        if other is not None and other_index != index
    ]
    return [other_index for _, other_index in sorted(scored, reverse=True)[:PEERS]]


def _cell_ab(image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """`(2, rows, cols)` the mean a*, b* of each cell of `image` at the match size."""
    import numpy as np

    pixels = np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR))
    lab = rgb_to_lab(torch.from_numpy(pixels.astype("float32") / 255).permute(2, 0, 1))
    return torch.nn.functional.avg_pool2d(lab[None, 1:], CELL)[0]
