"""LPIPS v0.1 (Zhang et al. 2018) with the AlexNet trunk, in plain torch.

The `lpips` package imports torchvision, which does not install beside our torch, so
the network is rebuilt here: torchvision's AlexNet feature layers (same module indices,
so its ImageNet weights load as they are) and LPIPS's five learned 1x1 linear layers,
whose weights the `lpips` wheel ships as files. Neither is ever downloaded implicitly.
"""

from __future__ import annotations

import importlib.metadata
import os
import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from rechroma.errors import MetricUnavailable
from rechroma.evaluation.downloads import ALEXNET, cached_path

ALEX_CHANNELS = (64, 192, 384, 256, 256)
# Outputs of these `features` modules (each ReLU after conv1..conv5) are compared.
ALEX_TAPS = (1, 4, 7, 9, 11)
# LPIPS v0.1's input scaling: ImageNet mean and std expressed for inputs in [-1, 1].
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
LINEAR_WEIGHTS = "lpips/weights/v0.1/alex.pth"
# Names a weights file (torchvision's .pth, or a .safetensors of its `features`) when
# --lpips-weights does not.
WEIGHTS_ENV = "RECHROMA_LPIPS_WEIGHTS"
UNAVAILABLE_ALEXNET = (
    "AlexNet weights not found; run rechroma fetch-weights lpips, pass --lpips-weights "
    f"or set {WEIGHTS_ENV}"
)
UNAVAILABLE_LINEAR = "LPIPS linear weights not found; pip install --no-deps lpips==0.1.4"


class LpipsUnavailable(MetricUnavailable):
    """LPIPS cannot be computed because a weights file is missing or wrong."""


class AlexNetTrunk(nn.Module):
    """torchvision's `alexnet().features` up to conv5's ReLU, returning the five taps."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in ALEX_TAPS:
                taps.append(x)
        return taps


class LPIPS(nn.Module):
    """Learned perceptual distance; lower is more alike."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = AlexNetTrunk()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in ALEX_CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

    @torch.no_grad()
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` RGB in [0, 1] twice -> `(B,)` distances."""
        feats_pred = self.trunk(((pred * 2 - 1) - self.shift) / self.scale)
        feats_target = self.trunk(((target * 2 - 1) - self.shift) / self.scale)
        total = torch.zeros(pred.shape[0], device=pred.device)
        for lin, a, b in zip(self.lins, feats_pred, feats_target, strict=True):
            diff = (_unit_normalize(a) - _unit_normalize(b)) ** 2
            total = total + lin(diff).mean(dim=(1, 2, 3))
        return total


def _unit_normalize(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def linear_weights_path() -> Path | None:
    """The v0.1 AlexNet linear weights inside the installed `lpips` wheel, if any.

    Found through the package's metadata, so the package (and torchvision) is never imported.
    """
    try:
        path = Path(str(importlib.metadata.distribution("lpips").locate_file(LINEAR_WEIGHTS)))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def _read_alexnet(path: Path) -> dict[str, torch.Tensor]:
    """AlexNet's tensors from a .safetensors file (features alone will do) or a .pth."""
    if path.suffix == ".safetensors":
        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def load_lpips(alexnet_path: Path | None = None, linear_path: Path | None = None) -> LPIPS:
    """Build LPIPS from AlexNet weights and the `lpips` wheel's linear weights.

    AlexNet's weights come from `alexnet_path`, else `$RECHROMA_LPIPS_WEIGHTS`, else the
    `rechroma fetch-weights lpips` cache. Raises `LpipsUnavailable` with the message a
    report should show when a file is missing or does not fit.
    """
    from_env = os.environ.get(WEIGHTS_ENV)
    alexnet_path = alexnet_path or (Path(from_env) if from_env else cached_path(ALEXNET))
    if not alexnet_path.is_file():
        raise LpipsUnavailable(UNAVAILABLE_ALEXNET)
    linear_path = linear_path or linear_weights_path()
    if linear_path is None or not linear_path.is_file():
        raise LpipsUnavailable(UNAVAILABLE_LINEAR)
    model = LPIPS()
    try:
        trunk_state = _read_alexnet(alexnet_path)
        features = {k: v for k, v in trunk_state.items() if k.startswith("features.")}
        model.trunk.load_state_dict(features, strict=True)
        linear_state = torch.load(linear_path, map_location="cpu", weights_only=True)
        model.lins.load_state_dict(
            {f"{i}.weight": linear_state[f"lin{i}.model.1.weight"] for i in range(5)}, strict=True
        )
    except (
        OSError,
        RuntimeError,
        KeyError,
        AttributeError,
        pickle.UnpicklingError,
        SafetensorError,
    ) as exc:
        raise LpipsUnavailable(f"cannot load LPIPS weights: {exc}") from exc
    return model.eval()
