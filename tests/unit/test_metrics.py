import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from rechroma.evaluation.metrics import colorfulness, psnr, ssim


def _pair(real_photo) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(Image.open(real_photo).convert("RGB").resize((128, 96)))
    noisy = np.clip(truth + np.random.default_rng(0).normal(0, 12, truth.shape), 0, 255)
    return truth, noisy.astype(np.uint8)


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float()


def test_ssim_matches_scikit_image(real_photo) -> None:
    truth, noisy = _pair(real_photo)
    reference = structural_similarity(
        truth,
        noisy,
        channel_axis=2,
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert ssim(_t(noisy), _t(truth)).item() == pytest.approx(reference, abs=1e-3)


def test_psnr_matches_scikit_image(real_photo) -> None:
    truth, noisy = _pair(real_photo)
    reference = peak_signal_noise_ratio(truth, noisy, data_range=255)
    assert psnr(_t(noisy), _t(truth)).item() == pytest.approx(reference, abs=1e-3)


def test_metrics_are_batched() -> None:
    a, b = torch.rand(3, 3, 32, 32) * 255, torch.rand(3, 3, 32, 32) * 255
    assert psnr(a, b).shape == ssim(a, b).shape == colorfulness(a).shape == (3,)
    assert ssim(a, a).allclose(torch.ones(3))


def test_colorfulness_formula() -> None:
    gray = torch.full((1, 3, 8, 8), 128.0)
    assert colorfulness(gray).item() == 0.0
    red = torch.zeros(1, 3, 8, 8)
    red[:, 0] = 255
    # rg = 255, yb = 127.5 everywhere: sigma 0, CF = 0.3 * sqrt(255^2 + 127.5^2).
    assert colorfulness(red).item() == pytest.approx(0.3 * np.hypot(255, 127.5), rel=1e-5)
