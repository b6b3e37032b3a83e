"""Spreading hints over their regions: along flat regions, not across edges."""

import time

import torch

from rechroma.color import rgb_to_lab
from rechroma.inference.hint_spread import spread_hints
from rechroma.inference.hints import Hint

RED, BLUE = "#c0302a", "#2b4c9a"


def hint_ab(colour: str) -> torch.Tensor:
    rgb = torch.tensor(Hint(0, 0, colour).rgb()).view(3, 1, 1)
    return rgb_to_lab(rgb)[1:, 0, 0]


def two_regions(height: int = 96, width: int = 128) -> torch.Tensor:
    """L*: a dark left half and a light right half, split by a sharp edge."""
    lightness = torch.full((1, height, width), 30.0)
    lightness[..., width // 2 :] = 80.0
    return lightness


def test_no_hints_change_nothing() -> None:
    ab = torch.randn(2, 40, 50) * 20
    assert torch.equal(spread_hints(ab, torch.full((1, 40, 50), 50.0), [], (50, 40)), ab)


def test_a_hint_recolours_its_flat_region_and_not_across_the_edge() -> None:
    lightness = two_regions()
    ab = torch.zeros(2, 96, 128)
    # Photo coordinates at twice the render size.
    out = spread_hints(ab, lightness, [Hint(40, 96, RED)], (256, 192))
    target = hint_ab(RED).view(2, 1)
    near = out[:, 40:56, 16:24].reshape(2, -1)
    assert (near - target).norm(dim=0).mean() < 0.2 * target.norm()  # nearly the hint's colour
    across = out[:, 40:56, 68:76].norm(dim=0).mean()  # as far from the hint, past the edge
    same_side = out[:, 40:56, 36:44].norm(dim=0).mean()
    assert across < 0.2 * same_side


def test_two_hints_each_colour_their_own_side() -> None:
    lightness = two_regions()
    ab = torch.full((2, 96, 128), 5.0)
    out = spread_hints(ab, lightness, [Hint(40, 96, RED), Hint(216, 96, BLUE)], (256, 192))
    red, blue = hint_ab(RED), hint_ab(BLUE)
    left = out[:, 20:76, 8:56].mean(dim=(1, 2))
    right = out[:, 20:76, 72:120].mean(dim=(1, 2))
    assert (left - red).norm() < (left - blue).norm() and (right - blue).norm() < (
        right - red
    ).norm()


def test_far_from_every_hint_the_network_colour_stays() -> None:
    lightness = torch.full((1, 64, 512), 50.0)
    ab = torch.full((2, 64, 512), 10.0)
    out = spread_hints(ab, lightness, [Hint(4, 32, BLUE)], (512, 64))
    assert (out[:, :, -40:] - ab[:, :, -40:]).abs().max() < 1.0


def test_many_hints_spread_quickly() -> None:
    lightness = torch.rand(1, 160, 213) * 100
    ab = torch.zeros(2, 160, 213)
    hints = [Hint(x * 20 + 5, y * 20 + 5, RED) for x in range(10) for y in range(8)]
    start = time.perf_counter()
    out = spread_hints(ab, lightness, hints, (213, 160))
    print(f"\n80 hints spread in {1000 * (time.perf_counter() - start):.0f} ms")
    assert torch.isfinite(out).all()


def test_a_group_spreads_as_one_with_its_mean_colour_and_stays_on_its_side() -> None:
    lightness = two_regions()
    ab = torch.zeros(2, 96, 128)
    near_red = "#c8342c"
    grouped = [Hint(30, 60, RED, group=0), Hint(60, 140, near_red, group=0)]
    out = spread_hints(ab, lightness, grouped, (256, 192))
    mean = (hint_ab(RED) + hint_ab(near_red)) / 2
    left = out[:, 40:56, 16:40].reshape(2, -1).mean(dim=1)
    assert (left - mean).norm() < 0.15 * mean.norm()
    assert out[:, 40:56, 72:120].norm(dim=0).mean() < 0.2 * left.norm()
    # A pin beside a group keeps its own colour and its own spread.
    mixed = spread_hints(ab, lightness, [*grouped, Hint(216, 96, BLUE)], (256, 192))
    right = mixed[:, 20:76, 72:120].mean(dim=(1, 2))
    assert (right - hint_ab(BLUE)).norm() < (right - mean).norm()
