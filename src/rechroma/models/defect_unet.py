"""`defect-unet`: per-pixel probability of print damage (scratch, dust, crack) from gray.

v0's U-Net body, smaller and without global context (damage is local), with one output:
a logit per pixel (`torch.sigmoid` gives the probability). It runs on tiles of any size.

With `imagenet_context`, the first four levels of the ImageNet-pretrained
EfficientNet-Lite0 trunk (strides 2 to 16) see the same gray photo, and their features
are added to the U-Net's own at strides 4, 8 and 16 through 1x1 convolutions that start
at zero, so a detector trained without them starts out unchanged. The U-Net alone sees
a thin bright line; what it cannot tell is whether the line belongs to the scene
(a twig, a wire, the veins of a leaf, a glint on water) or lies over it, which is what
a network that learnt a thousand kinds of object and texture knows. The trunk's
batch-norm statistics always stay ImageNet's; its weights too, unless training is told
to tune them at a small learning rate (`optim.context_lr_ratio`).
"""

from __future__ import annotations

import torch
from torch import nn

from rechroma.color import l_ab_to_rgb
from rechroma.models.efficientnet_lite import LiteTrunk, imagenet_input
from rechroma.models.unet import UNet

# U-Net level (stride 2**level) -> the Lite0 pyramid level (stride 2**(level+1)) it takes.
CONTEXT_LEVELS = {2: 1, 3: 2, 4: 3}


class DefectUNet(UNet):
    """Gray L in, one damage logit per pixel out (damage where > 0)."""

    def __init__(
        self,
        width: int = 8,
        depth: int = 4,
        max_channels: int = 64,
        imagenet_context: bool = False,
    ) -> None:
        super().__init__(width, depth, max_channels, global_context=False)
        self.head = nn.Conv2d(self.encoder.channels[0], 1, 1)
        self.context: LiteTrunk | None = None
        if imagenet_context:
            if depth < max(CONTEXT_LEVELS) + 1:
                raise ValueError("imagenet_context needs depth >= 5 (levels to stride 16)")
            self.context = LiteTrunk(in_channels=1, levels=max(CONTEXT_LEVELS.values()) + 1)
            self.context.requires_grad_(False)
            channels = self.encoder.channels
            self.context_fuse = nn.ModuleDict(
                {
                    str(level): nn.Conv2d(self.context.channels[lite], channels[level], 1)
                    for level, lite in CONTEXT_LEVELS.items()
                }
            )
            for conv in self.context_fuse.values():
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    def train(self, mode: bool = True) -> DefectUNet:
        """As `nn.Module.train`, but the ImageNet trunk keeps its batch-norm statistics."""
        super().train(mode)
        if self.context is not None:
            self.context.eval()
        return self

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        """`(B, 1, H, W)` gray in [-1, 1] -> `(B, 1, H, W)` damage logits."""
        return self.head(self.decode(l_norm))

    def encode(self, l_norm: torch.Tensor) -> list[torch.Tensor]:
        """The U-Net's pyramid, with the ImageNet trunk's features added where asked."""
        if self.context is None:
            return self.encoder(l_norm)
        # The trunk saw gray sRGB scaled its own way, not L.
        gray = l_ab_to_rgb(l_norm, l_norm.new_zeros(l_norm.shape[0], 2, *l_norm.shape[-2:]))
        # Without gradients unless training was told to tune the trunk (it is frozen).
        tuned = self.context.stem[1].weight.requires_grad
        with torch.set_grad_enabled(tuned and torch.is_grad_enabled()):
            seen = self.context(imagenet_input(gray[:, :1]))
        added = {
            level: self.context_fuse[str(level)](seen[lite])
            for level, lite in CONTEXT_LEVELS.items()
        }
        return self.encoder(l_norm, added)
