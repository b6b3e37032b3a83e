"""Image classifiers on the U-Net's encoder: transfer learning without downloaded weights.

No ImageNet-pretrained network can be downloaded here, so we make our own. On L input,
the classifier's encoder has exactly the colorizer's encoder layout: pretrained on
class labels, it initialises the colorizer (semantics first, then colour). On RGB
input, its intermediate features serve as the perceptual loss, the role VGG plays in
DeOldify and DDColor.
"""

from __future__ import annotations

import torch
from torch import nn

from rechroma.models.unet import UNetEncoder


class Classifier(nn.Module):
    """Encoder trunk, global average pooling and a linear head."""

    def __init__(
        self,
        num_classes: int = 200,
        in_channels: int = 1,
        width: int = 16,
        depth: int = 5,
        max_channels: int = 256,
        global_context: bool = True,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.encoder = UNetEncoder(width, depth, max_channels, global_context, in_channels)
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(self.encoder.channels[-1], num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, in_channels, H, W)` in [-1, 1] -> `(B, num_classes)` logits."""
        return self.head(self.encoder(x)[-1].mean(dim=(2, 3)))

    @staticmethod
    def rgb_input(rgb: torch.Tensor) -> torch.Tensor:
        """sRGB in [0, 1] -> this network's input range [-1, 1]."""
        return rgb * 2.0 - 1.0

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps at every level, finest first (for perceptual losses)."""
        return self.encoder(x)
