"""Losses: values against their definitions, and gradients that point the right way."""

import pytest
import torch

from rechroma.errors import ConfigError
from rechroma.evaluation.metrics import colorfulness
from rechroma.models import build_model
from rechroma.training.losses import (
    PerceptualLoss,
    colorfulness_loss,
    discriminator_hinge_loss,
    generator_hinge_loss,
    pixel_loss,
)


def test_colorfulness_loss_is_one_minus_the_metric_over_100() -> None:
    torch.manual_seed(0)
    rgb = torch.rand(3, 3, 16, 16)
    expected = (1 - colorfulness(rgb * 255) / 100).mean()
    torch.testing.assert_close(colorfulness_loss(rgb), expected, atol=1e-4, rtol=1e-4)


def test_colorfulness_loss_pushes_gray_towards_colour() -> None:
    gray = torch.full((1, 3, 8, 8), 0.5, requires_grad=True)
    colorfulness_loss(gray + torch.randn(1, 3, 8, 8) * 1e-3).backward()
    assert torch.isfinite(gray.grad).all() and gray.grad.abs().sum() > 0


def test_colorfulness_match_is_the_per_image_gap_over_100() -> None:
    torch.manual_seed(0)
    pred, truth = torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16)
    gap = (colorfulness(pred * 255) - colorfulness(truth * 255)).abs() / 100
    loss = colorfulness_loss(pred, truth, mode="match")
    torch.testing.assert_close(loss, gap.mean(), atol=1e-4, rtol=1e-4)
    assert colorfulness_loss(truth, truth, mode="match").item() < 1e-6


def _cf_after_one_step(start: torch.Tensor, truth: torch.Tensor) -> float:
    pred = start.clone().requires_grad_(True)
    colorfulness_loss(pred, truth, mode="match").backward()
    with torch.no_grad():
        return colorfulness((pred - 0.5 * pred.grad) * 255).item()


def test_colorfulness_match_neither_washes_out_nor_overshoots() -> None:
    torch.manual_seed(0)
    muted = 0.5 + 0.05 * torch.randn(1, 3, 16, 16)
    vivid = (0.5 + 0.4 * torch.randn(1, 3, 16, 16)).clamp(0, 1)
    middle = 0.5 + 0.15 * torch.randn(1, 3, 16, 16)
    target = colorfulness(middle * 255).item()
    # Too little colour gains some; too much loses some: both move towards the truth's.
    assert colorfulness(muted * 255).item() < _cf_after_one_step(muted, middle) < target
    assert colorfulness(vivid * 255).item() > _cf_after_one_step(vivid, middle) > target


def test_colorfulness_modes_are_checked() -> None:
    rgb = torch.rand(1, 3, 4, 4)
    with pytest.raises(ConfigError, match="needs the true colour image"):
        colorfulness_loss(rgb, mode="match")
    with pytest.raises(ConfigError, match="unknown colourfulness mode"):
        colorfulness_loss(rgb, rgb, mode="most")


def test_hinge_losses() -> None:
    confident = discriminator_hinge_loss(torch.full((4,), 2.0), torch.full((4,), -2.0))
    assert confident.item() == 0.0  # beyond the margins: nothing to learn
    fooled = discriminator_hinge_loss(torch.full((4,), -1.0), torch.full((4,), 1.0))
    assert fooled.item() == pytest.approx(4.0)
    assert generator_hinge_loss(torch.tensor([1.0, 3.0])).item() == -2.0


def test_patch_discriminator_scores_patches() -> None:
    disc = build_model("patchgan", width=8, layers=3)
    scores = disc(torch.zeros(2, 1, 64, 48), torch.zeros(2, 2, 64, 48))
    assert scores.shape == (2, 1, 8, 6)
    names = [name for name, _ in disc.named_parameters()]
    assert any("parametrizations.weight" in name for name in names)  # spectral norm


def test_perceptual_loss_is_zero_for_the_truth_and_frozen() -> None:
    classifier = build_model("classifier", num_classes=5, in_channels=3, width=8, depth=3)
    loss = PerceptualLoss(classifier, levels=2)
    loss.train()
    assert not classifier.training
    rgb = torch.rand(2, 3, 32, 32)
    assert loss(rgb, rgb).item() == 0.0
    pred = torch.rand(2, 3, 32, 32, requires_grad=True)
    loss(pred, rgb).backward()
    assert pred.grad is not None and all(p.grad is None for p in classifier.parameters())


def test_pixel_loss_rejects_unknown_kinds() -> None:
    from rechroma.errors import ConfigError

    with pytest.raises(ConfigError):
        pixel_loss(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), "l7")


def test_hard_negatives_are_the_worst_clean_pixels_only() -> None:
    from torch.nn import functional as F

    from rechroma.training.restore import detector_loss

    logits = torch.full((1, 1, 10, 10), -4.0)
    mask = torch.zeros(1, 1, 10, 10)
    mask[0, 0, 0, :5] = 1.0  # damage the detector misses: not a hard *negative*
    logits[0, 0, 5, 5] = 3.0  # one clean pixel it is sure is damage
    logits.requires_grad_(True)
    base = detector_loss(logits, mask, 2.0, 0.5)
    assert "hard_negative" not in base
    # 1% of the 95 clean pixels rounds to one: exactly the confident false find.
    losses = detector_loss(
        logits, mask, 2.0, 0.5, hard_negative_weight=0.1, hard_negative_share=0.01
    )
    torch.testing.assert_close(losses["hard_negative"], F.softplus(torch.tensor(3.0)))
    torch.testing.assert_close(losses["loss"], base["loss"] + 0.1 * losses["hard_negative"])
    losses["hard_negative"].backward()
    grad = logits.grad[0, 0]
    assert grad[5, 5] > 0 and grad.count_nonzero() == 1  # pushed down, nothing else
    with pytest.raises(ValueError, match="hard_negative_share"):
        detector_loss(logits, mask, hard_negative_weight=0.1, hard_negative_share=0.0)
