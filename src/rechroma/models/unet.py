"""U-Net generator: grayscale L in, ab chroma out."""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

from rechroma.models.blocks import ConvNormAct, GlobalContext, ResBlock, UpBlock


def level_channels(width: int, depth: int, max_channels: int) -> list[int]:
    """Channels per resolution level: width, 2*width, ... capped at `max_channels`."""
    return [min(width * 2**i, max_channels) for i in range(depth)]


class UNetEncoder(nn.Module):
    """Feature pyramid over the L channel; level i has stride 2**i.

    Kept separate from the decoder so it can be pretrained as a classifier.
    """

    def __init__(
        self,
        width: int,
        depth: int,
        max_channels: int,
        global_context: bool,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        self.channels = level_channels(width, depth, max_channels)
        first = self.channels[0]
        self.stem = nn.Sequential(ConvNormAct(in_channels, first), ConvNormAct(first, first))
        self.downs = nn.ModuleList(
            ResBlock(c_in, c_out, stride=2) for c_in, c_out in itertools.pairwise(self.channels)
        )
        self.context: nn.Module = (
            GlobalContext(self.channels[-1]) if global_context else nn.Identity()
        )

    def forward(
        self, l_norm: torch.Tensor, added: dict[int, torch.Tensor] | None = None
    ) -> list[torch.Tensor]:
        """`(B, C, H, W)` L or RGB in [-1, 1] -> features, finest first; level i at stride 2**i.

        `added` maps a level to features of its shape that join it before the next level
        is computed from it (another network's view, such as the defect detector's
        ImageNet context).
        """
        added = added or {}
        features = [self.stem(l_norm)]
        for level, down in enumerate(self.downs, start=1):
            x = down(features[-1])
            features.append(x + added[level] if level in added else x)
        features[-1] = self.context(features[-1])
        return features


class UNet(nn.Module):
    """Predicts ab from L at any size; input is padded to a multiple of `stride`."""

    def __init__(
        self,
        width: int = 16,
        depth: int = 5,
        max_channels: int = 256,
        global_context: bool = True,
    ) -> None:
        super().__init__()
        self.stride = 2 ** (depth - 1)
        self.encoder = UNetEncoder(width, depth, max_channels, global_context)
        ch = self.encoder.channels
        self.ups = nn.ModuleList(
            UpBlock(ch[i + 1], ch[i], ch[i]) for i in reversed(range(depth - 1))
        )
        self.head = nn.Conv2d(ch[0], 2, 1)

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        """`(B, 1, H, W)` L in [-1, 1] -> `(B, 2, H, W)` ab in [-1, 1]."""
        return torch.tanh(self.head(self.decode(l_norm)))

    def encode(self, l_norm: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's pyramid of a padded input (a subclass may add to it)."""
        return self.encoder(l_norm)

    def decode(self, l_norm: torch.Tensor) -> torch.Tensor:
        """`(B, 1, H, W)` -> the last decoder level's `(B, width, H, W)` features."""
        height, width = l_norm.shape[-2:]
        pad_h, pad_w = -height % self.stride, -width % self.stride
        if pad_h or pad_w:
            # Replicate, not zeros: a black border would read as a dark frame and tint the edges.
            l_norm = F.pad(l_norm, (0, pad_w, 0, pad_h), mode="replicate")
        features = self.encode(l_norm)
        x = features[-1]
        for up, skip in zip(self.ups, reversed(features[:-1]), strict=True):
            x = up(x, skip)
        return x[..., :height, :width]
