"""Bring low-resolution chroma up to a photo's full size without bleeding across edges.

The network predicts colour at a few hundred pixels; the photo may have 60 million.
Upsampling runs in the photo's own YCbCr space, guided by its full-resolution luma Y,
and in horizontal strips, so memory stays bounded and nothing at full resolution is
ever held as float Lab:

1. At render size, the prediction becomes three channels: Cb, Cr and dY, the luma
   change that keeps the predicted colour as light as the gray input (a saturated red
   is darker in luma than a gray of the same lightness L*).
2. A guided filter (He et al., "Guided Image Filtering", and its fast variant, He and
   Sun 2015) fits, per low-resolution pixel, a local linear model `channel = A * Y + b`.
3. For each strip of rows, A and b are upsampled bilinearly and applied to the strip's
   own full-resolution Y. Chroma edges then follow luma edges at full resolution.

Bilinear upsampling is the same code with A = 0.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from kornia.color import rgb_to_ycbcr
from kornia.filters import box_blur
from PIL import Image
from torch.nn import functional as F

UPSAMPLERS = ("guided", "bilinear")
# Window radius, in render-size pixels, over which each local model is fitted: small
# enough to follow object boundaries, large enough to average out the net's own noise.
GUIDE_RADIUS = 2
# Regularizes A: luma variations below about sqrt(eps) (in [0, 1] units) count as
# texture, not edges, so film grain and JPEG noise do not turn into colour noise.
GUIDE_EPS = 2e-3
# Pixels per strip: small enough that the strip's float temporaries stay in the CPU's cache
# (measured 4x faster than 4-megapixel strips on 12 MP), and memory stays bounded.
STRIP_PIXELS = 65_536


def chroma_targets(small_rgb: torch.Tensor, small_luma: torch.Tensor) -> torch.Tensor:
    """The low-resolution channels to upsample: dY, Cb, Cr, all in 0..255 units.

    Args:
        small_rgb: `(3, h, w)` predicted colour at render size, sRGB in [0, 1] (in gamut).
        small_luma: `(1, h, w)` the gray input's luma at the same size, in [0, 1].

    Returns:
        `(3, h, w)`: dY (luma of the colour minus the input's), Cb - 128 and Cr - 128.
    """
    ycbcr = rgb_to_ycbcr(small_rgb)
    delta_y = ycbcr[:1] - small_luma
    return torch.cat([delta_y, ycbcr[1:] - 0.5], dim=0) * 255.0


def guided_coefficients(
    guide: torch.Tensor,
    target: torch.Tensor,
    radius: int = GUIDE_RADIUS,
    eps: float = GUIDE_EPS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit `target ~ A * guide + b` in every window of a guided filter.

    kornia's `guided_blur` does the same fit but takes the target at the guide's full
    resolution and returns the filtered image, never A and b; we have the target only
    at render size and must apply A and b strip by strip, so the fit is written out
    here with kornia's box filter.

    Args:
        guide: `(1, h, w)` luma in [0, 1].
        target: `(C, h, w)` channels to upsample, any units.
        radius: window radius in pixels.
        eps: regularization of A, in guide units squared.

    Returns:
        `(A, b)`, each `(C, h, w)`, already averaged over overlapping windows.
    """
    kernel = 2 * radius + 1

    def mean(x: torch.Tensor) -> torch.Tensor:
        return box_blur(x[None], (kernel, kernel), border_type="replicate")[0]

    mean_i = mean(guide)
    mean_p = mean(target)
    var_i = mean(guide * guide) - mean_i * mean_i
    cov_ip = mean(guide * target) - mean_i * mean_p
    slope = cov_ip / (var_i.clamp_min(0) + eps)
    offset = mean_p - slope * mean_i
    return mean(slope), mean(offset)


def _row_weights(rows: torch.Tensor, small: int, full: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower source row and weight of the next one, as bilinear `F.interpolate` has them.

    `align_corners=False`: output row y samples input row (y + 0.5) * small / full - 0.5,
    clamped at 0, between its floor and the next row (the last row past the end).
    """
    source = ((rows + 0.5) * (small / full) - 0.5).clamp_min(0)
    lower = source.floor().long().clamp_max(small - 1)
    return lower, (source - lower).unsqueeze(-1)


def upsample_apply(
    gray: Image.Image,
    slope: torch.Tensor,
    offset: torch.Tensor,
    timings: dict[str, float] | None = None,
) -> np.ndarray:
    """Apply upsampled `A * Y + b` to the full-resolution luma, strip by strip.

    Args:
        gray: the photo's full-resolution luma, mode "L".
        slope: `(3, h, w)` A for dY, Cb, Cr (0..255 units per unit of Y in [0, 255]).
        offset: `(3, h, w)` b, same units.
        timings: when given, seconds spent upsampling and merging are added to it.

    Returns:
        `(H, W, 3)` uint8 YCbCr at full resolution, interleaved as Pillow stores it.
    """
    width, height = gray.size
    luma = np.asarray(gray)
    out = torch.empty((height, width, 3), dtype=torch.uint8)
    with timed(timings, "upsample"):
        # Bilinear is separable: widen the small maps once (cheap, h x W); then every
        # output row is a blend of two of their rows.
        maps = torch.cat([slope, offset], dim=0)[None]
        maps = F.interpolate(
            maps, size=(maps.shape[-2], width), mode="bilinear", align_corners=False
        )[0]
        # Round to nearest when casting to uint8 (which truncates): +0.5 on every offset,
        # and Cb/Cr are stored around 128.
        maps[3:] += torch.tensor([0.5, 128.5, 128.5]).view(3, 1, 1)
        lower, weight = _row_weights(torch.arange(height), maps.shape[-2], height)
        # From each low-resolution row to the next (zero after the last one).
        steps = torch.zeros_like(maps)
        steps[:, :-1] = maps[:, 1:] - maps[:, :-1]
    for top, bottom in _strips(lower, max(1, STRIP_PIXELS // max(1, width))):
        with timed(timings, "upsample"):
            row = int(lower[top])
            # Rows between the same two low-resolution rows: base + t * step, one pass.
            coeffs = torch.addcmul(
                maps[:, row : row + 1], weight[top:bottom].view(1, -1, 1), steps[:, row : row + 1]
            )
        with timed(timings, "merge"):
            y = torch.from_numpy(luma[top:bottom].astype(np.float32))
            planes = torch.addcmul(coeffs[3:], coeffs[:3], y)  # A * Y + b
            planes[0] += y  # dY is a change of the input's own luma
            # Cast, then interleave into Pillow's pixel layout.
            out[top:bottom].copy_(planes.clamp_(0, 255).to(torch.uint8).permute(1, 2, 0))
    return out.numpy()


def _strips(lower: torch.Tensor, max_rows: int) -> Iterator[tuple[int, int]]:
    """`(top, bottom)` row ranges that share one pair of low-resolution rows, each at most
    `max_rows` high, so the float temporaries of a strip stay small and in cache."""
    changes = (torch.nonzero(lower[1:] != lower[:-1]).flatten() + 1).tolist()
    for top, bottom in itertools.pairwise([0, *changes, len(lower)]):
        for start in range(top, bottom, max_rows):
            yield start, min(bottom, start + max_rows)


def ycbcr_image(pixels: np.ndarray) -> Image.Image:
    """`(H, W, 3)` uint8 YCbCr -> a Pillow "YCbCr" image, without copying.

    JPEG stores YCbCr, so this image is encoded as is; `.convert("RGB")` (Pillow's
    integer maths) gives RGB for everything else.
    """
    height, width, _ = pixels.shape
    return Image.frombuffer("YCbCr", (width, height), pixels, "raw", "YCbCr", 0, 1)


@contextmanager
def timed(timings: dict[str, float] | None, name: str) -> Iterator[None]:
    """Add the wall time of the block to `timings[name]`, when a dict is given."""
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
