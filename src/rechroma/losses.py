"""Training losses. Each takes normalized tensors as produced by `rechroma.data`."""

from __future__ import annotations

import torch
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
