import numpy as np
import torch

from rechroma.color import rgb_to_lab
from rechroma.data.degrade import DegradeConfig, degrade_lightness

EVERYTHING = DegradeConfig(prob=1, tint=1, fade=1, exposure=1, blur=1, grain=1, jpeg=1)


def _photo() -> tuple[torch.Tensor, torch.Tensor]:
    rgb = torch.rand(3, 40, 56)
    return rgb_to_lab(rgb)[:1], rgb


def test_all_degradations_keep_shape_and_range() -> None:
    lightness, rgb = _photo()
    out = degrade_lightness(lightness, rgb, np.random.default_rng(0), EVERYTHING)
    assert out.shape == lightness.shape
    assert out.min() >= 0 and out.max() <= 100
    assert (out - lightness).abs().mean() > 1


def test_same_seed_same_degradation() -> None:
    lightness, rgb = _photo()
    a = degrade_lightness(lightness, rgb, np.random.default_rng(5), EVERYTHING)
    b = degrade_lightness(lightness, rgb, np.random.default_rng(5), EVERYTHING)
    assert torch.equal(a, b)


def test_probability_zero_is_identity() -> None:
    lightness, rgb = _photo()
    out = degrade_lightness(lightness, rgb, np.random.default_rng(0), DegradeConfig(prob=0))
    assert out is lightness


def test_fading_lowers_contrast() -> None:
    lightness, rgb = _photo()
    fade_only = DegradeConfig(prob=1, tint=0, fade=1, exposure=0, blur=0, grain=0, jpeg=0)
    out = degrade_lightness(lightness, rgb, np.random.default_rng(0), fade_only)
    assert out.std() < lightness.std()
