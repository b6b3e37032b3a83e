"""sRGB (D65) <-> CIE Lab conversion and the model's L/ab scaling, in torch.

The conversions delegate to kornia, whose Lab code is a port of scikit-image's
(same matrices, D65/2-degree white point, exact sRGB gamma); the tests hold both
to 1e-3 Lab units. Everything here is batched over leading dimensions and
differentiable, so losses can go through it.
"""

from __future__ import annotations

import torch
from kornia.color import lab_to_rgb as _kornia_lab_to_rgb
from kornia.color import rgb_to_lab as _kornia_rgb_to_lab

# L* spans [0, 100]; the network sees it centred on 0.
L_CENTER = 50.0
L_SCALE = 50.0
# a*, b* of sRGB colours stay within about +-110 for nearly all photos
# (the constant Zhang et al. use), so ab / 110 lands in [-1, 1].
AB_SCALE = 110.0
# Colour hints reach a network as three channels: hint a and hint b (normalized like its
# ab output) and a 0/1 mask of where a hint is (see `rechroma.data.hints`).
HINT_CHANNELS = 3


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """Convert sRGB to CIE Lab.

    Args:
        rgb: `(..., 3, H, W)`, sRGB in [0, 1].

    Returns:
        `(..., 3, H, W)`: L in [0, 100], a and b roughly in [-128, 127].
    """
    return _kornia_rgb_to_lab(rgb)


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Convert CIE Lab to sRGB.

    Args:
        lab: `(..., 3, H, W)`, L in [0, 100], a and b in Lab units.
        clip: clamp the result to [0, 1], as colours outside sRGB cannot be stored.

    Returns:
        `(..., 3, H, W)` sRGB, in [0, 1] when `clip`.
    """
    return _kornia_lab_to_rgb(lab, clip=clip)


def normalize_l(lightness: torch.Tensor) -> torch.Tensor:
    """Map L in [0, 100] to the network's input range [-1, 1]."""
    return (lightness - L_CENTER) / L_SCALE


def denormalize_l(l_norm: torch.Tensor) -> torch.Tensor:
    """Inverse of `normalize_l`."""
    return l_norm * L_SCALE + L_CENTER


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """Map ab in Lab units to the network's output range (about [-1, 1])."""
    return ab / AB_SCALE


def denormalize_ab(ab_norm: torch.Tensor) -> torch.Tensor:
    """Inverse of `normalize_ab`."""
    return ab_norm * AB_SCALE


def rgb_to_l_ab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split sRGB into the network's normalized input and target.

    Args:
        rgb: `(..., 3, H, W)`, sRGB in [0, 1].

    Returns:
        `(l, ab)`: `(..., 1, H, W)` in [-1, 1] and `(..., 2, H, W)` in about [-1, 1].
    """
    lab = rgb_to_lab(rgb)
    return normalize_l(lab[..., :1, :, :]), normalize_ab(lab[..., 1:, :, :])


def l_ab_to_rgb(l_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
    """Join normalized L and ab back into sRGB in [0, 1].

    Args:
        l_norm: `(..., 1, H, W)` in [-1, 1].
        ab_norm: `(..., 2, H, W)` in about [-1, 1].

    Returns:
        `(..., 3, H, W)` sRGB, clamped to [0, 1].
    """
    lab = torch.cat([denormalize_l(l_norm), denormalize_ab(ab_norm)], dim=-3)
    return lab_to_rgb(lab)


def rgb_to_gray_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """Drop colour, keeping Lab lightness: what a perfect black-and-white print shows.

    Args:
        rgb: `(..., 3, H, W)`, sRGB in [0, 1].

    Returns:
        `(..., 3, H, W)` sRGB with a = b = 0.
    """
    lab = rgb_to_lab(rgb)
    return lab_to_rgb(torch.cat([lab[..., :1, :, :], torch.zeros_like(lab[..., 1:, :, :])], dim=-3))


def colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk (2003) colourfulness, as DDColor's and CT2's evaluators compute it.

    `rgb` is `(B, 3, H, W)` in [0, 255]; returns `(B,)`.
    rg = |R - G|, yb = |(R + G) / 2 - B|, CF = sigma_rgyb + 0.3 * mu_rgyb, where
    sigma_rgyb = sqrt(std(rg)^2 + std(yb)^2) and mu_rgyb = sqrt(mean(rg)^2 + mean(yb)^2).
    """
    x = rgb.double()
    rg = (x[:, 0] - x[:, 1]).abs().flatten(1)
    yb = (0.5 * (x[:, 0] + x[:, 1]) - x[:, 2]).abs().flatten(1)
    std = torch.sqrt(rg.std(dim=1, unbiased=False) ** 2 + yb.std(dim=1, unbiased=False) ** 2)
    mean = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return (std + 0.3 * mean).float()
