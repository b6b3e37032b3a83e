"""Image-quality metrics on batched torch tensors, as the colorization literature computes them.

All functions take `(B, 3, H, W)` RGB in [0, 255] (float; uint8 photos cast up) and return
one value per image, `(B,)`.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from rechroma.color import colorfulness

__all__ = ["colorfulness", "psnr", "ssim"]

DATA_RANGE = 255.0


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB over all channels, `data_range` 255."""
    mse = (pred.double() - target.double()).pow(2).flatten(1).mean(dim=1)
    return (10 * torch.log10(DATA_RANGE**2 / mse.clamp_min(1e-12))).float()


def _gaussian_kernel(sigma: float, truncate: float, dtype: torch.dtype) -> torch.Tensor:
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def ssim(pred: torch.Tensor, target: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity, averaged over channels.

    Matches `skimage.metrics.structural_similarity(..., channel_axis, data_range=255,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`: an 11-tap Gaussian
    window, and the mean taken over the pixels whose window lies inside the image.
    Written here rather than taken from kornia because kornia pads the borders, which
    changes the figure and breaks comparison with published tables.
    """
    c1 = (0.01 * DATA_RANGE) ** 2
    c2 = (0.03 * DATA_RANGE) ** 2
    x, y = pred.double(), target.double()
    channels = x.shape[1]
    kernel = _gaussian_kernel(sigma, 3.5, x.dtype)
    kernel_h = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    kernel_v = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)

    def blur(z: torch.Tensor) -> torch.Tensor:
        # "valid" convolution == scikit-image's filter-then-crop of the border.
        return F.conv2d(F.conv2d(z, kernel_h, groups=channels), kernel_v, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (numerator / denominator).flatten(1).mean(dim=1).float()
