"""What hints do with the shipped v1 network: they pull the colour towards the truth
where they are given, and stay on their side of an edge."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rechroma.color import rgb_to_lab
from rechroma.evaluation.evaluate import sample_truth_hints
from rechroma.inference.colorizer import DEFAULT_WEIGHTS, Colorizer, render_shape
from rechroma.inference.hints import Hint


@pytest.fixture(scope="module")
def hint_colorizer() -> Colorizer:
    shipped = Colorizer.load(DEFAULT_WEIGHTS, threads=2)
    assert shipped.takes_hints
    return shipped


def _true_ab(photo: Image.Image, shape: tuple[int, int]) -> torch.Tensor:
    small = photo.convert("RGB").resize(shape[::-1], Image.Resampling.BILINEAR)
    rgb = torch.from_numpy(np.asarray(small, dtype=np.float32) / 255).permute(2, 0, 1)
    return rgb_to_lab(rgb)[1:]


@pytest.mark.slow
def test_hints_from_the_truth_lower_the_error(hint_colorizer, photos_val: Path) -> None:
    """Ten hints per photo from its ground truth, on 30 photos: where the hints are given
    (their squares at render size) the chroma error falls by a fifth or more, and over the
    whole photo it does not rise. (How far a hint spreads is the model card's table.)"""
    near_plain, near_hinted, all_plain, all_hinted = [], [], [], []
    for index, path in enumerate(sorted(photos_val.glob("*.JPEG"))[:30]):
        photo = Image.open(path).convert("RGB")
        hints = sample_truth_hints(photo, 10, np.random.default_rng(index))
        plain = hint_colorizer.predict(photo).ab
        hinted = hint_colorizer.predict(photo, hints=hints).ab
        truth = _true_ab(photo, tuple(plain.shape[-2:]))
        near = torch.zeros(plain.shape[-2:], dtype=torch.bool)
        scale = plain.shape[-1] / photo.width
        for hint in hints:
            col, row = int(hint.x * scale), int(hint.y * scale)
            near[max(0, row - 1) : row + 2, max(0, col - 1) : col + 2] = True
        for out, error in ((plain, (near_plain, all_plain)), (hinted, (near_hinted, all_hinted))):
            distance = (out - truth).norm(dim=0)
            error[0].append(distance[near].mean().item())
            error[1].append(distance.mean().item())
    near_gain = 1 - np.mean(near_hinted) / np.mean(near_plain)
    print(
        f"\nchroma error at the hints {np.mean(near_plain):.2f} -> {np.mean(near_hinted):.2f}"
        f" ({near_gain:.0%} lower); whole photo {np.mean(all_plain):.2f} -> "
        f"{np.mean(all_hinted):.2f}"
    )
    assert near_gain > 0.2
    assert np.mean(all_hinted) <= np.mean(all_plain)


def test_a_hint_colours_its_side_of_an_edge_not_the_other(hint_colorizer) -> None:
    """Two flat regions, dark and light, split by a sharp vertical edge. A red hint in
    the dark one, close to the edge: the dark side next to it reddens, the light side at
    the same distance from the hint barely changes."""
    gray = np.full((192, 256), 70, dtype=np.uint8)
    gray[:, 128:] = 200
    rng = np.random.default_rng(0)
    photo = Image.fromarray(np.clip(gray + rng.normal(0, 3, gray.shape), 0, 255).astype(np.uint8))
    size = hint_colorizer.render_size
    small_h, small_w = render_shape(192, 256, size)
    edge = small_w // 2
    hint = Hint(128 - 10 * 256 / small_w, 96, "#c0302a", radius=3 * 256 / small_w)
    plain = hint_colorizer.predict(photo).ab
    hinted = hint_colorizer.predict(photo, hints=[hint]).ab
    change = (hinted - plain).norm(dim=0)  # chroma change, Lab units
    rows = slice(small_h // 2 - 6, small_h // 2 + 7)
    # Both bands are 5 to 10 pixels from the hint's square: one before the edge, one past it.
    same_side = change[rows, edge - 6 : edge - 2].mean().item()
    other_side = change[rows, edge + 2 : edge + 6].mean().item()
    redder = (hinted - plain)[0, rows, edge - 14 : edge - 6].mean().item()  # a* rises
    print(f"\na* {redder:+.1f} at the hint; change {same_side:.1f} before, {other_side:.1f} past")
    assert redder > 5
    assert other_side < 0.5 * same_side
    assert torch.isfinite(hinted).all()
