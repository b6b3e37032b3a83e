"""Frechet Inception Distance with torchvision's Inception-v3 weights, in plain torch.

DDColor's protocol: RGB in [0, 1], bilinear resize to 299x299, the 2048-d pooled features
of Inception-v3 (torchvision's ImageNet port of the TensorFlow model), and the reference
statistics from the ground truth of the same set. The network below keeps torchvision's
module names, so its weights file loads unchanged; the classifier heads are not needed.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from rechroma.errors import MetricUnavailable
from rechroma.evaluation.downloads import INCEPTION, cached_path

UNAVAILABLE_INCEPTION = (
    "Inception-v3 weights not found; run rechroma fetch-weights fid or pass --fid-weights"
)
FID_SIZE = 299


class FidUnavailable(MetricUnavailable):
    """FID cannot be computed because the Inception weights are missing or wrong."""


class ConvBN(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, as TensorFlow trained it), ReLU."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int | tuple[int, int], **kw: object
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, bias=False, **kw)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(out_ch, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _chain(x: torch.Tensor, *layers: nn.Module) -> torch.Tensor:
    for layer in layers:
        x = layer(x)
    return x


def _pool_branch(x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
    return conv(F.avg_pool2d(x, 3, stride=1, padding=1))


class BlockA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, in_ch: int, pool_ch: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(in_ch, 64, 1)
        self.branch5x5_1 = ConvBN(in_ch, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(in_ch, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(in_ch, pool_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                _chain(x, self.branch5x5_1, self.branch5x5_2),
                _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
                _pool_branch(x, self.branch_pool),
            ],
            1,
        )


class BlockB(nn.Module):
    """35x35 -> 17x17 reduction."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBN(in_ch, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(in_ch, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
                F.max_pool2d(x, 3, stride=2),
            ],
            1,
        )


class BlockC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (1x7 then 7x1)."""

    def __init__(self, in_ch: int, c7: int) -> None:
        super().__init__()
        row, col = {"padding": (0, 3)}, {"padding": (3, 0)}
        self.branch1x1 = ConvBN(in_ch, 192, 1)
        self.branch7x7_1 = ConvBN(in_ch, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, (1, 7), **row)
        self.branch7x7_3 = ConvBN(c7, 192, (7, 1), **col)
        self.branch7x7dbl_1 = ConvBN(in_ch, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), **col)
        self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), **row)
        self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), **col)
        self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), **row)
        self.branch_pool = ConvBN(in_ch, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                _chain(x, self.branch7x7_1, self.branch7x7_2, self.branch7x7_3),
                _chain(
                    x,
                    self.branch7x7dbl_1,
                    self.branch7x7dbl_2,
                    self.branch7x7dbl_3,
                    self.branch7x7dbl_4,
                    self.branch7x7dbl_5,
                ),
                _pool_branch(x, self.branch_pool),
            ],
            1,
        )


class BlockD(nn.Module):
    """17x17 -> 8x8 reduction."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBN(in_ch, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(in_ch, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                _chain(x, self.branch3x3_1, self.branch3x3_2),
                _chain(
                    x,
                    self.branch7x7x3_1,
                    self.branch7x7x3_2,
                    self.branch7x7x3_3,
                    self.branch7x7x3_4,
                ),
                F.max_pool2d(x, 3, stride=2),
            ],
            1,
        )


class BlockE(nn.Module):
    """8x8 block whose 3x3 branches split into parallel 1x3 and 3x1."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(in_ch, 320, 1)
        self.branch3x3_1 = ConvBN(in_ch, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(in_ch, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(in_ch, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch3x3_1(x)
        double = _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(single),
                self.branch3x3_2b(single),
                self.branch3x3dbl_3a(double),
                self.branch3x3dbl_3b(double),
                _pool_branch(x, self.branch_pool),
            ],
            1,
        )


class InceptionFeatures(nn.Module):
    """Inception-v3 up to its 2048-d average pool; `(B, 3, H, W)` RGB in [0, 1] in."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = BlockA(192, 32)
        self.Mixed_5c = BlockA(256, 64)
        self.Mixed_5d = BlockA(288, 64)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b = BlockC(768, 128)
        self.Mixed_6c = BlockC(768, 160)
        self.Mixed_6d = BlockC(768, 160)
        self.Mixed_6e = BlockC(768, 192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b = BlockE(1280)
        self.Mixed_7c = BlockE(2048)

    @torch.no_grad()
    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(rgb, size=(FID_SIZE, FID_SIZE), mode="bilinear", align_corners=False)
        # torchvision's transform_input maps ImageNet-normalised input back to [-1, 1]:
        # feeding [-1, 1] directly is the same computation.
        x = x * 2 - 1
        x = _chain(x, self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3)
        x = F.max_pool2d(x, 3, stride=2)
        x = _chain(x, self.Conv2d_3b_1x1, self.Conv2d_4a_3x3)
        x = F.max_pool2d(x, 3, stride=2)
        x = _chain(
            x,
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        )
        return x.mean(dim=(2, 3))  # (B, 2048)


def load_inception(path: Path | None = None) -> InceptionFeatures:
    """Inception-v3 features from torchvision's weights file (given, or from the cache)."""
    path = path or cached_path(INCEPTION)
    if not path.is_file():
        raise FidUnavailable(UNAVAILABLE_INCEPTION)
    model = InceptionFeatures()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        # The classifier heads (fc, AuxLogits) play no part in FID.
        wanted = {k: v for k, v in state.items() if not k.startswith(("fc.", "AuxLogits."))}
        model.load_state_dict(wanted, strict=True)
    except (OSError, RuntimeError, AttributeError, pickle.UnpicklingError) as exc:
        raise FidUnavailable(f"cannot load Inception-v3 weights from {path}: {exc}") from exc
    return model.eval()


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """FID between two `(N, D)` feature sets, in float64.

    Tr(sqrt(S_a S_b)) is the sum of the square roots of the eigenvalues of S_a S_b (real
    and non-negative for covariance matrices), which avoids scipy's sqrtm.
    """
    a, b = features_a.double(), features_b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    eigenvalues = torch.linalg.eigvals(cov_a @ cov_b).real.clamp_min(0)
    trace_sqrt = eigenvalues.sqrt().sum()
    fid = (mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt
    return float(fid)
