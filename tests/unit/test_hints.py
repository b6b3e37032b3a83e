import numpy as np
import torch

from rechroma.data.hints import place_hint, sample_hints


def test_a_hint_is_the_mean_true_colour_over_its_square() -> None:
    ab = torch.zeros(2, 8, 8)
    ab[0, 2:4, 2:4] = torch.tensor([[0.1, 0.3], [0.5, 0.7]])
    hints = torch.zeros(3, 8, 8)
    place_hint(hints, ab, top=2, left=2, size=2)
    assert torch.allclose(hints[0, 2:4, 2:4], torch.full((2, 2), 0.4))
    assert hints[2].sum() == 4 and hints[2, 2:4, 2:4].all()
    assert hints[:, :2].abs().sum() == 0


def test_about_half_the_images_get_hints_and_only_where_the_mask_is() -> None:
    ab = torch.rand(400, 2, 16, 16) * 2 - 1
    hints = sample_hints(ab, np.random.default_rng(0), probability=0.5, mean_points=5)
    hinted = hints[:, 2].flatten(1).amax(dim=1) > 0
    assert 0.4 < hinted.float().mean() < 0.6
    assert hints[:, :2][hints[:, 2:3].expand(-1, 2, -1, -1) == 0].abs().sum() == 0


def test_exact_point_count_for_evaluation_and_repeatable() -> None:
    ab = torch.rand(3, 2, 32, 32)
    first = sample_hints(ab, np.random.default_rng(1), points=10, max_patch=1)
    again = sample_hints(ab, np.random.default_rng(1), points=10, max_patch=1)
    assert torch.equal(first, again)
    counts = first[:, 2].flatten(1).sum(dim=1)
    assert ((counts >= 1) & (counts <= 10)).all()  # 1-px squares; two may fall together
    # Where a 1-pixel hint lies, it holds the true colour exactly.
    mask = first[:, 2:3].expand(-1, 2, -1, -1) > 0
    assert torch.equal(first[:, :2][mask], ab[mask])


def test_hints_fit_images_smaller_than_the_largest_square() -> None:
    hints = sample_hints(torch.rand(2, 2, 3, 5), np.random.default_rng(2), points=4, max_patch=9)
    assert hints.shape == (2, 3, 3, 5) and hints[:, 2].sum() > 0
