"""Temporal stabilisation: motion from phase correlation, the blend, scene cuts."""

import itertools

import pytest
import torch
from torch.nn import functional as F

from rechroma.inference.temporal import (
    ChromaStabilizer,
    blend_chroma,
    phase_shift,
    shift_image,
)


def textured(height: int = 96, width: int = 128, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 1, height, width, generator=generator)
    return F.avg_pool2d(noise, 5, 1, 2)[0] * 100  # (1, h, w), like L* in 0..100


@pytest.mark.parametrize("shift", [(0.0, 0.0), (3.0, -7.0), (-5.5, 2.25), (10.0, 12.0)])
def test_phase_correlation_finds_the_camera_shift(shift) -> None:
    scene = textured(140, 180)
    moved = shift_image(scene, shift)
    # Compare away from the borders, which the shift filled with zeros.
    dy, dx = phase_shift(scene[0, 16:-16, 16:-16], moved[0, 16:-16, 16:-16])
    assert dy == pytest.approx(shift[0], abs=0.5) and dx == pytest.approx(shift[1], abs=0.5)


def test_shift_image_moves_content_and_leaves_uncovered_pixels_empty() -> None:
    image = torch.arange(20.0).view(1, 4, 5)
    moved = shift_image(image, (1.0, 2.0))
    assert torch.allclose(moved[0, 1:, 2:], image[0, :-1, :-2])
    assert moved[0, 0].abs().sum() == 0 and moved[0, :, :2].abs().sum() == 0


def test_blend_keeps_the_chroma_that_averaging_two_hues_would_lose() -> None:
    red = torch.tensor([40.0, 20.0]).view(2, 1, 1)
    green = torch.tensor([-40.0, 20.0]).view(2, 1, 1)
    blended = blend_chroma(red, green, torch.full((1, 1, 1), 0.5))
    assert float(blended.norm()) == pytest.approx(float(red.norm()), rel=1e-4)  # a mean: 20
    same = blend_chroma(red, red, torch.full((1, 1, 1), 0.7))
    assert torch.allclose(same, red)


def test_still_scene_flicker_falls_and_colour_stays() -> None:
    torch.manual_seed(0)
    lightness = textured()
    truth = torch.stack([torch.full((96, 128), 30.0), torch.full((96, 128), -10.0)])
    stabilizer = ChromaStabilizer(0.8)
    raw, steady = [], []
    for _ in range(30):
        prediction = truth + torch.randn(2, 96, 128) * 6  # the net's guess wobbles
        raw.append(prediction)
        steady.append(stabilizer(lightness, prediction))

    def flicker_of(frames: list[torch.Tensor]) -> torch.Tensor:
        steps = [(b - a).norm(dim=0).mean() for a, b in itertools.pairwise(frames)]
        return torch.stack(steps).mean()

    flicker_raw, flicker = flicker_of(raw), flicker_of(steady)
    assert flicker < 0.35 * flicker_raw
    chroma = torch.stack([s.norm(dim=0).mean() for s in steady[5:]]).mean()
    assert chroma > 0.9 * truth.norm(dim=0).mean()


def test_colour_follows_a_pan() -> None:
    scene = textured(120, 200)
    stabilizer = ChromaStabilizer(0.9)
    # Chroma painted on the scene: a red left half, a blue right half, moving with it.
    paint = torch.zeros(2, 120, 200)
    paint[0, :, :100], paint[1, :, 100:] = 40.0, -40.0
    for step in range(6):
        shift = (0.0, 2.0 * step)
        lightness, ab = shift_image(scene, shift), shift_image(paint, shift)
        out = stabilizer(lightness, ab)
    # Where the carried colour was trusted, it landed where the paint is now (not smeared).
    inner = (slice(None), slice(10, -10), slice(30, 190))
    assert (out[inner] - ab[inner]).abs().mean() < 3.0
    assert stabilizer.cuts == 0


def test_a_scene_cut_starts_over_and_strength_zero_is_per_frame() -> None:
    stabilizer = ChromaStabilizer(0.8)
    first, second = textured(seed=1), textured(seed=2) * 0.3 + 60
    red = torch.stack([torch.full((96, 128), 40.0), torch.zeros(96, 128)])
    stabilizer(first, red)
    out = stabilizer(second, -red)
    assert stabilizer.cuts == 1 and torch.equal(out, -red)
    off = ChromaStabilizer(0.0)
    off(first, red)
    assert torch.equal(off(first, -red), -red)
    with pytest.raises(ValueError):
        ChromaStabilizer(1.0)


def test_carry_moves_the_colour_along_a_pan_and_refuses_cuts_and_motion() -> None:
    scene = textured(120, 200)
    paint = torch.zeros(2, 120, 200)
    paint[0, :, :100], paint[1, :, 100:] = 40.0, -40.0
    stabilizer = ChromaStabilizer(0.8)
    assert stabilizer.carry(scene) is None  # nothing to carry yet
    stabilizer(scene, paint)
    carried = stabilizer.carry(shift_image(scene, (0.0, 1.5)))
    assert carried is not None and stabilizer.carried == stabilizer.carried_in_a_row == 1
    inner = (slice(None), slice(5, -5), slice(10, 190))
    assert (carried - shift_image(paint, (0.0, 1.5)))[inner].abs().mean() < 1.0
    # A cut, and a thing that moves on a still background: the network must run.
    assert stabilizer.carry(textured(120, 200, seed=5)) is None
    moved = scene.clone()
    moved[:, 40:80, 60:100] = scene[:, 40:80, 90:130]
    assert stabilizer.carry(shift_image(moved, (0.0, 1.5))) is None
    stabilizer(scene, paint)
    assert stabilizer.carried_in_a_row == 0
    assert ChromaStabilizer(0.0).carry(scene) is None
