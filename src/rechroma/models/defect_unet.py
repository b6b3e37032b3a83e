"""`defect-unet`: per-pixel probability of print damage (scratch, dust, crack) from gray.

v0's U-Net body, smaller and without global context (damage is local), with one output:
a logit per pixel (`torch.sigmoid` gives the probability). It runs on tiles of any size.
"""

from __future__ import annotations

import torch
from torch import nn

from rechroma.models.unet import UNet


class DefectUNet(UNet):
    """Gray L in, one damage logit per pixel out (damage where > 0)."""

    def __init__(self, width: int = 8, depth: int = 4, max_channels: int = 64) -> None:
        super().__init__(width, depth, max_channels, global_context=False)
        self.head = nn.Conv2d(self.encoder.channels[0], 1, 1)

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        """`(B, 1, H, W)` gray in [-1, 1] -> `(B, 1, H, W)` damage logits."""
        return self.head(self.decode(l_norm))
