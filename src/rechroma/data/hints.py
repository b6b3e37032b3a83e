"""Colour hints sampled from the true colours, as a user's clicks would give them.

A hint is a small square of the photo whose colour is known: the network gets three
extra channels, hint a and hint b (normalized like its ab output) and a 0/1 mask. In
training (and in `rechroma eval --hints N`) hints are taken from the truth, the way
Zhang et al. 2017 simulate a user: a few points, each the mean true ab over a 1-9 px
square around it.
"""

from __future__ import annotations

import numpy as np
import torch

from rechroma.color import HINT_CHANNELS


def place_hint(hints: torch.Tensor, ab: torch.Tensor, top: int, left: int, size: int) -> None:
    """Mark the `size` x `size` square at (top, left) of one image with the mean of `ab` there.

    Args:
        hints: `(3, H, W)` hint channels of one image, written in place.
        ab: `(2, H, W)` the colours to average.
    """
    bottom, right = top + size, left + size
    mean = ab[:, top:bottom, left:right].mean(dim=(1, 2))
    hints[:2, top:bottom, left:right] = mean[:, None, None]
    hints[2, top:bottom, left:right] = 1.0


def sample_hints(
    ab: torch.Tensor,
    rng: np.random.Generator,
    probability: float = 0.5,
    mean_points: float = 7.0,
    max_patch: int = 9,
    points: int | None = None,
) -> torch.Tensor:
    """Hint channels for a batch, sampled from its true colours.

    Args:
        ab: `(B, 2, H, W)` true ab, normalized.
        rng: the source of randomness (seeded by the caller, so runs repeat).
        probability: share of images that get any hints; the others get none.
        mean_points: mean of the geometric number of points an image with hints gets.
        max_patch: squares are 1..max_patch pixels wide (at most the image's size).
        points: exactly this many points per image instead (evaluation); ignores
            `probability` and `mean_points`.

    Returns:
        `(B, 3, H, W)`: hint a, hint b, mask; zero where there is no hint.
    """
    batch, _, height, width = ab.shape
    hints = ab.new_zeros(batch, HINT_CHANNELS, height, width)
    largest = max(1, min(max_patch, height, width))
    for index in range(batch):
        if points is not None:
            count = points
        elif rng.random() >= probability:
            continue
        else:
            count = int(rng.geometric(1.0 / mean_points))
        for _ in range(count):
            size = int(rng.integers(1, largest + 1))
            top = int(rng.integers(0, height - size + 1))
            left = int(rng.integers(0, width - size + 1))
            place_hint(hints[index], ab[index], top, left, size)
    return hints
