"""Old-photo degradations applied to the network's input L only.

Scans of real prints are faded, grainy, soft, unevenly exposed, JPEG-damaged and
often sepia-toned; clean digital grayscale is none of these. Training on degraded
L against the clean ab teaches the model to colour what people actually upload.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from kornia.filters import gaussian_blur2d
from PIL import Image

from rechroma.color import rgb_to_lab

# Classic sepia-toning matrix (rows: output R, G, B from input R, G, B).
_SEPIA = torch.tensor([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


@dataclass(frozen=True)
class DegradeConfig:
    """Probability of each degradation; `prob` gates the whole chain per image."""

    prob: float = 0.7
    tint: float = 0.3
    fade: float = 0.4
    exposure: float = 0.3
    blur: float = 0.3
    grain: float = 0.4
    jpeg: float = 0.3


def degrade_lightness(
    lightness: torch.Tensor, rgb: torch.Tensor, rng: np.random.Generator, cfg: DegradeConfig
) -> torch.Tensor:
    """Return a degraded copy of L as an old print's scan would show it.

    Args:
        lightness: `(1, H, W)`, L in [0, 100] of the clean photo.
        rgb: `(3, H, W)`, the clean photo in [0, 1]; used for toning before the L is taken.
        rng: the caller's generator, so results are reproducible per seed.
        cfg: probabilities.

    Returns:
        `(1, H, W)`, L in [0, 100].
    """
    if rng.random() >= cfg.prob:
        return lightness
    out = lightness
    if rng.random() < cfg.tint:
        # A sepia or yellowed print scanned to grayscale: its L is that of the toned image.
        strength = rng.uniform(0.3, 1.0)
        toned = torch.einsum("ij,jhw->ihw", _SEPIA, rgb).clamp(0, 1)
        out = rgb_to_lab(rgb * (1 - strength) + toned * strength)[:1]
    if rng.random() < cfg.fade:
        contrast = rng.uniform(0.5, 0.95)
        black_lift = rng.uniform(0.0, 15.0)
        mean = out.mean()
        out = mean + (out - mean) * contrast
        out = black_lift + out * (1 - black_lift / 100)
    if rng.random() < cfg.exposure:
        out = out * _exposure_field(out.shape[-2:], rng)
    if rng.random() < cfg.blur:
        sigma = float(rng.uniform(0.4, 1.4))
        out = gaussian_blur2d(out[None], (5, 5), (sigma, sigma))[0]
    if rng.random() < cfg.grain:
        std = float(rng.uniform(1.0, 5.0))
        noise = torch.from_numpy(rng.standard_normal(out.shape, dtype=np.float32)) * std
        out = out + noise
    out = out.clamp(0, 100)
    if rng.random() < cfg.jpeg:
        out = _jpeg_roundtrip(out, int(rng.integers(20, 80)))
    return out


def _exposure_field(size: torch.Size, rng: np.random.Generator) -> torch.Tensor:
    """A smooth gain map: a linear gradient in a random direction plus a vignette."""
    height, width = size
    ys = torch.linspace(-1, 1, height)[:, None]
    xs = torch.linspace(-1, 1, width)[None, :]
    angle = rng.uniform(0, 2 * np.pi)
    gradient = xs * float(np.cos(angle)) + ys * float(np.sin(angle))
    vignette = xs**2 + ys**2
    gain = 1 + rng.uniform(-0.25, 0.25) * gradient - rng.uniform(0, 0.3) * vignette
    return gain[None]


def _jpeg_roundtrip(lightness: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode L as an 8-bit grayscale JPEG and decode it, keeping the blocking and ringing."""
    as_uint8 = (lightness[0] * 2.55).round().clamp(0, 255).to(torch.uint8).numpy()
    buffer = io.BytesIO()
    Image.fromarray(as_uint8).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    decoded = np.asarray(Image.open(buffer), dtype=np.float32) / 2.55
    return torch.from_numpy(decoded)[None]
