"""PatchGAN discriminator conditioned on L (pix2pix), with spectral normalization."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """Scores every ~34x34 patch of (L, ab) as real or colorized.

    Conditioning on L means it judges whether the colours fit this photo, not colour in
    general. Spectral norm on every convolution keeps it 1-Lipschitz, which keeps the
    short adversarial phase stable without batch norm.
    """

    def __init__(self, width: int = 32, layers: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        channels = 3  # L + ab
        for index in range(layers):
            out = width * 2**index
            blocks += [
                spectral_norm(nn.Conv2d(channels, out, 4, stride=2, padding=1)),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels = out
        blocks += [
            spectral_norm(nn.Conv2d(channels, channels, 3, padding=1)),
            nn.LeakyReLU(0.2, inplace=True),
            spectral_norm(nn.Conv2d(channels, 1, 3, padding=1)),
        ]
        self.net = nn.Sequential(*blocks)

    def forward(self, l_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
        """`(B, 1, H, W)` L and `(B, 2, H, W)` ab, normalized -> `(B, 1, H/8, W/8)` scores."""
        return self.net(torch.cat([l_norm, ab_norm], dim=1))
