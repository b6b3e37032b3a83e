"""`defect-unet`: per-pixel probability of print damage (scratch, dust, crack) from gray.

A small U-Net (v0's encoder blocks, no global context: damage is local) that runs on
tiles of any size. It answers logits; `torch.sigmoid` gives the probability.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from rechroma.models.blocks import UpBlock
from rechroma.models.unet import UNetEncoder


class DefectUNet(nn.Module):
    """Gray L in, one logit per pixel out (damage where > 0)."""

    def __init__(self, width: int = 8, depth: int = 4, max_channels: int = 64) -> None:
        super().__init__()
        self.stride = 2 ** (depth - 1)
        self.encoder = UNetEncoder(width, depth, max_channels, global_context=False)
        channels = self.encoder.channels
        self.ups = nn.ModuleList(
            UpBlock(channels[i + 1], channels[i], channels[i]) for i in reversed(range(depth - 1))
        )
        self.head = nn.Conv2d(channels[0], 1, 1)

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        """`(B, 1, H, W)` gray in [-1, 1] -> `(B, 1, H, W)` damage logits."""
        height, width = l_norm.shape[-2:]
        pad_h, pad_w = -height % self.stride, -width % self.stride
        if pad_h or pad_w:
            l_norm = F.pad(l_norm, (0, pad_w, 0, pad_h), mode="replicate")
        features = self.encoder(l_norm)
        x = features[-1]
        for up, skip in zip(self.ups, reversed(features[:-1]), strict=True):
            x = up(x, skip)
        return self.head(x)[..., :height, :width]
