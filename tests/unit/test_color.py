import warnings

import numpy as np
import torch
from PIL import Image
from skimage.color import lab2rgb, rgb2lab

from rechroma import color


def _to_torch(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).permute(2, 0, 1).float()


def test_rgb_to_lab_matches_scikit_image_on_random_pixels() -> None:
    rgb = np.random.default_rng(0).random((32, 48, 3))
    ours = color.rgb_to_lab(_to_torch(rgb)).permute(1, 2, 0).double().numpy()
    assert np.abs(ours - rgb2lab(rgb)).max() < 1e-3


def test_rgb_to_lab_matches_scikit_image_on_a_real_photo(real_photo) -> None:
    rgb = np.asarray(Image.open(real_photo).convert("RGB"), dtype=np.float64) / 255
    ours = color.rgb_to_lab(_to_torch(rgb)).permute(1, 2, 0).double().numpy()
    assert np.abs(ours - rgb2lab(rgb)).max() < 1e-3


def test_lab_to_rgb_matches_scikit_image() -> None:
    rng = np.random.default_rng(1)
    lab = np.stack(
        [
            rng.uniform(0, 100, (16, 16)),
            rng.uniform(-60, 60, (16, 16)),
            rng.uniform(-60, 60, (16, 16)),
        ],
        axis=-1,
    )
    ours = color.lab_to_rgb(_to_torch(lab)).permute(1, 2, 0).double().numpy()
    # scikit-image warns when it clips negative Z, as kornia clips silently.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference = lab2rgb(lab)
    assert np.abs(ours - reference).max() < 1e-4


def test_round_trip_is_exact_for_srgb_colours() -> None:
    rgb = torch.rand(4, 3, 20, 20, dtype=torch.float64)
    back = color.lab_to_rgb(color.rgb_to_lab(rgb))
    assert torch.allclose(back, rgb, atol=1e-6)


def test_known_values_and_white_point() -> None:
    white = color.rgb_to_lab(torch.ones(3, 1, 1, dtype=torch.float64)).flatten()
    # The sRGB matrix's published 6-digit constants put white 0.005 off neutral, as in
    # scikit-image; anything more would mean a wrong white point.
    assert torch.allclose(white, torch.tensor([100.0, 0.0, 0.0], dtype=torch.float64), atol=0.01)
    red = color.rgb_to_lab(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)[:, None, None])
    # CIE Lab of sRGB red (D65): 53.24, 80.09, 67.20.
    assert torch.allclose(
        red.flatten(), torch.tensor([53.24, 80.09, 67.20], dtype=torch.float64), atol=0.01
    )


def test_normalized_split_and_join_round_trip() -> None:
    rgb = torch.rand(2, 3, 8, 8)
    lightness, ab = color.rgb_to_l_ab(rgb)
    assert lightness.shape == (2, 1, 8, 8) and ab.shape == (2, 2, 8, 8)
    assert lightness.min() >= -1 and lightness.max() <= 1
    assert ab.abs().max() <= 1.2
    assert torch.allclose(color.l_ab_to_rgb(lightness, ab), rgb, atol=1e-4)


def test_conversion_is_differentiable() -> None:
    ab = torch.zeros(1, 2, 4, 4, requires_grad=True)
    rgb = color.l_ab_to_rgb(torch.zeros(1, 1, 4, 4), ab)
    rgb[:, 0].sum().backward()
    assert ab.grad is not None and ab.grad.abs().sum() > 0


def test_gray_has_no_chroma() -> None:
    gray = color.rgb_to_gray_rgb(torch.rand(3, 8, 8))
    lab = color.rgb_to_lab(gray)
    assert lab[1:].abs().max() < 1e-3
