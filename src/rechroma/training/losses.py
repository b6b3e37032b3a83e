"""Training losses. Each takes normalized tensors as produced by `rechroma.data.shards`."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from rechroma.errors import ConfigError

PIXEL_LOSSES = ("l1", "huber", "mse")


def pixel_loss(pred_ab: torch.Tensor, target_ab: torch.Tensor, kind: str = "huber") -> torch.Tensor:
    """Per-pixel loss on chroma.

    Args:
        pred_ab: `(B, 2, H, W)` predicted ab in [-1, 1].
        target_ab: `(B, 2, H, W)` true ab in about [-1, 1].
        kind: "l1", "huber" (smooth L1 with beta 1/11, i.e. 10 Lab units) or "mse".

    Returns:
        Scalar mean loss.
    """
    if kind == "l1":
        return F.l1_loss(pred_ab, target_ab)
    if kind == "huber":
        # Quadratic below 10 ab units keeps gradients smooth near the answer;
        # linear above it keeps rare saturated colours from dominating.
        return F.smooth_l1_loss(pred_ab, target_ab, beta=10 / 110)
    if kind == "mse":
        return F.mse_loss(pred_ab, target_ab)
    raise ConfigError(f"unknown pixel loss {kind!r}; choose one of {PIXEL_LOSSES}")


def _colorfulness(rgb: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Differentiable per-image CF of `(B, 3, H, W)` sRGB in [0, 1] (as `metrics.colorfulness`)."""
    x = rgb * 255.0
    rg = (x[:, 0] - x[:, 1]).abs().flatten(1)
    yb = (0.5 * (x[:, 0] + x[:, 1]) - x[:, 2]).abs().flatten(1)
    std = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False) + eps)
    mean = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2 + eps)
    return std + 0.3 * mean


COLORFULNESS_MODES = ("maximize", "match")


def check_colorfulness_mode(mode: str, label: str = "colourfulness mode") -> None:
    """Raise `ConfigError`, naming the setting as `label`, unless `mode` is known."""
    if mode not in COLORFULNESS_MODES:
        raise ConfigError(f"unknown {label} {mode!r}; choose one of {COLORFULNESS_MODES}")


def colorfulness_loss(
    rgb: torch.Tensor, true_rgb: torch.Tensor | None = None, mode: str = "maximize"
) -> torch.Tensor:
    """Colourfulness loss against the washed-out average colour of pixel losses.

    "maximize" is DDColor's 1 - CF / 100: it rewards colour without limit, so a young
    model overshoots into blotches. "match" is |CF(pred) - CF(truth)| / 100 per image:
    it asks for as much colour as the photo really has, no more, and none for a gray
    one. CF is Hasler & Suesstrunk's on sRGB in 0..255, as the metric computes it.

    Args:
        rgb: `(B, 3, H, W)` predicted sRGB in [0, 1], differentiable.
        true_rgb: the true colour image, needed by "match".
        mode: "maximize" or "match".
    """
    check_colorfulness_mode(mode)
    if mode == "maximize":
        return (1.0 - _colorfulness(rgb) / 100.0).mean()
    if true_rgb is None:
        raise ConfigError("colourfulness mode 'match' needs the true colour image")
    with torch.no_grad():
        target = _colorfulness(true_rgb)
    return ((_colorfulness(rgb) - target).abs() / 100.0).mean()


class PerceptualLoss(nn.Module):
    """L1 between an RGB classifier's features of the prediction and of the truth.

    An ImageNet classifier (EfficientNet-Lite0, or our own pretrained on Tiny ImageNet)
    plays VGG's role: its features differ when a colour is implausible for the object (a
    green face), which a pixel loss on ab alone does not see. Frozen; levels 1..`levels`
    of its pyramid (strides 2, 4, ... for ours; 4, 8, ... for Lite0).
    """

    def __init__(self, classifier: nn.Module, levels: int = 3) -> None:
        super().__init__()
        if getattr(classifier, "in_channels", 3) != 3:
            raise ConfigError("the perceptual loss needs a classifier trained on RGB input")
        self.classifier = classifier.eval()
        self.classifier.requires_grad_(False)
        self.levels = levels

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Stay in eval mode: batch-norm statistics are the pretrained ones."""
        super().train(mode)
        self.classifier.eval()
        return self

    def forward(self, pred_rgb: torch.Tensor, true_rgb: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` sRGB in [0, 1] each -> scalar loss."""
        pred_features = self.classifier.features(self.classifier.rgb_input(pred_rgb))
        with torch.no_grad():
            true_features = self.classifier.features(self.classifier.rgb_input(true_rgb))
        levels = range(1, min(self.levels, len(pred_features) - 1) + 1)
        total = pred_rgb.new_zeros((), dtype=torch.float32)
        for level in levels:
            total = total + F.l1_loss(pred_features[level].float(), true_features[level].float())
        return total / len(levels)


def discriminator_hinge_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss for the discriminator (SAGAN, BigGAN): real above +1, fake below -1."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def generator_hinge_loss(fake: torch.Tensor) -> torch.Tensor:
    """The generator raises the discriminator's score of its output."""
    return -fake.mean()
