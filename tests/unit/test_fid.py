import numpy as np
import pytest
import scipy.linalg
import torch

from rechroma.evaluation.fid import (
    UNAVAILABLE_INCEPTION,
    FidUnavailable,
    InceptionFeatures,
    frechet_distance,
    load_inception,
)

# torchvision documents inception_v3 at 27,161,264 parameters; without its classifier
# (fc: 2,049,000) and auxiliary head (AuxLogits: 3,326,696) that leaves this many.
TORCHVISION_FEATURE_PARAMS = 27_161_264 - 2_049_000 - 3_326_696


def test_architecture_matches_torchvision_inception_v3() -> None:
    model = InceptionFeatures()
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_FEATURE_PARAMS
    keys = set(model.state_dict())
    for key in (
        "Conv2d_1a_3x3.conv.weight",
        "Mixed_5b.branch5x5_2.bn.running_var",
        "Mixed_6e.branch7x7dbl_5.conv.weight",
        "Mixed_7c.branch3x3dbl_3b.bn.bias",
    ):
        assert key in keys
    assert model(torch.rand(1, 3, 80, 60)).shape == (1, 2048)


def test_loads_a_torchvision_layout_file_with_heads(tmp_path) -> None:
    torch.manual_seed(0)
    state = InceptionFeatures().state_dict()
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 2048), torch.randn(1000)
    state["AuxLogits.fc.weight"] = torch.randn(1000, 768)
    torch.save(state, tmp_path / "inception.pth")
    model = load_inception(tmp_path / "inception.pth")
    assert torch.equal(model.Conv2d_1a_3x3.conv.weight, state["Conv2d_1a_3x3.conv.weight"])


def test_missing_weights_say_how_to_get_them(tmp_path) -> None:
    with pytest.raises(FidUnavailable, match="fetch-weights fid"):
        load_inception(tmp_path / "absent.pth")
    assert "--fid-weights" in UNAVAILABLE_INCEPTION


def test_frechet_distance_matches_the_scipy_formula() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 16))
    b = rng.normal(loc=0.5, scale=1.3, size=(300, 16))
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    expected = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root)
    got = frechet_distance(torch.from_numpy(a), torch.from_numpy(b))
    assert got == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(a)) == pytest.approx(0, abs=1e-6)
