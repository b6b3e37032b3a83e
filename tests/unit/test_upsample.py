"""Guided chroma upsampling: the maths against kornia and PyTorch, and edges kept."""

import numpy as np
import pytest
import torch
from kornia.filters import guided_blur
from PIL import Image
from torch.nn import functional as F

from rechroma.inference import upsample
from rechroma.inference.upsample import (
    chroma_targets,
    guided_coefficients,
    upsample_apply,
    ycbcr_image,
)


def test_coefficients_reproduce_kornias_guided_filter() -> None:
    torch.manual_seed(0)
    guide = torch.rand(1, 24, 32)
    target = torch.rand(2, 24, 32) * 50
    slope, offset = guided_coefficients(guide, target, radius=2, eps=1e-3)
    expected = guided_blur(
        guide[None], target[None], kernel_size=5, eps=1e-3, border_type="replicate"
    )[0]
    torch.testing.assert_close(slope * guide + offset, expected, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize(
    ("small", "full"), [((7, 9), (50, 61)), ((24, 32), (24, 32)), ((3, 5), (600, 7))]
)
def test_bilinear_path_equals_torch_interpolate(monkeypatch, small, full) -> None:
    monkeypatch.setattr(upsample, "STRIP_PIXELS", 97)  # many strips, uneven last one
    torch.manual_seed(1)
    offset = torch.rand(3, *small) * 100 + 20
    gray = Image.fromarray(np.full(full, 100, dtype=np.uint8))
    y, cb, cr = np.moveaxis(upsample_apply(gray, torch.zeros_like(offset), offset), -1, 0)
    expected = F.interpolate(offset[None], size=full, mode="bilinear", align_corners=False)[0]
    expected = expected + torch.tensor([100.0, 128.0, 128.0]).view(3, 1, 1)
    got = torch.from_numpy(np.stack([y, cb, cr])).float()
    assert (got - expected.clamp(0, 255)).abs().max() <= 0.5 + 1e-3


def test_gray_prediction_keeps_the_input_exactly() -> None:
    rng = np.random.default_rng(0)
    luma = rng.integers(0, 256, (40, 60), dtype=np.uint8)
    gray = Image.fromarray(luma)
    small_luma = torch.from_numpy(np.array(gray.resize((15, 10)))).float()[None] / 255
    targets = chroma_targets(small_luma.expand(3, -1, -1), small_luma)
    slope, offset = guided_coefficients(small_luma, targets)
    rgb = np.asarray(ycbcr_image(upsample_apply(gray, slope / 255, offset)).convert("RGB"))
    assert np.abs(rgb.astype(int) - luma[..., None]).max() <= 1


def step_scene(full: int = 256, small: int = 32) -> tuple[Image.Image, torch.Tensor, torch.Tensor]:
    """A dark left half and a light right half, blue only on the right.

    The low-resolution chroma is what downsampling a real photo gives: pixels that
    straddle the edge get a mix, in proportion to the luma they mix.
    """
    luma = np.full((full, full), 60, dtype=np.uint8)
    luma[:, full // 2 + 3 :] = 190  # the edge falls between low-resolution pixels
    gray = Image.fromarray(luma)
    small_luma = torch.from_numpy(np.array(gray.resize((small, small), Image.BILINEAR)))
    small_luma = small_luma.float()[None] / 255
    targets = torch.zeros(3, small, small)
    light_share = (small_luma[0] - 60 / 255) / (130 / 255)
    targets[1] = 40.0 * light_share.clamp(0, 1)  # Cb
    return gray, small_luma, targets


def test_guided_colour_stops_at_the_edge_where_bilinear_bleeds() -> None:
    gray, small_luma, targets = step_scene()
    slope, offset = guided_coefficients(small_luma, targets)
    cb_guided = upsample_apply(gray, slope / 255, offset)[..., 1]
    cb_bilinear = upsample_apply(gray, torch.zeros_like(targets), targets)[..., 1]
    dark = np.asarray(gray) < 128
    # Blue that leaks onto the dark side, summed over it.
    leak_guided = np.abs(cb_guided[dark].astype(int) - 128).sum()
    leak_bilinear = np.abs(cb_bilinear[dark].astype(int) - 128).sum()
    assert leak_guided < 0.25 * leak_bilinear
    # And the light side still gets its colour.
    assert np.median(cb_guided[~dark]) >= 128 + 35


def test_memory_is_bounded_by_strips(monkeypatch) -> None:
    strips = []
    original = upsample._strips

    def spy(lower, max_rows):
        for top, bottom in original(lower, max_rows):
            strips.append((top, bottom))
            yield top, bottom

    monkeypatch.setattr(upsample, "_strips", spy)
    monkeypatch.setattr(upsample, "STRIP_PIXELS", 1000)
    gray = Image.new("L", (100, 95), 128)
    upsample_apply(gray, torch.zeros(3, 2, 4), torch.zeros(3, 2, 4))
    assert max(bottom - top for top, bottom in strips) == 10
    covered = [row for top, bottom in strips for row in range(top, bottom)]
    assert covered == list(range(95))
