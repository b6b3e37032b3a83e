import pytest
import torch
from torch.nn import functional as F

from rechroma.evaluation.lpips import (
    SCALE,
    SHIFT,
    UNAVAILABLE_ALEXNET,
    AlexNetTrunk,
    LpipsUnavailable,
    linear_weights_path,
    load_lpips,
)


@pytest.fixture(scope="module")
def seeded_alexnet(tmp_path_factory) -> tuple:
    """A torchvision-layout AlexNet state dict with seeded weights, saved like the real one."""
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in AlexNetTrunk().features.state_dict().items()}
    state["classifier.1.weight"] = torch.randn(10, 9216)  # the real file has a classifier too
    path = tmp_path_factory.mktemp("alexnet") / "alexnet.pth"
    torch.save(state, path)
    return path, state


def _reference_lpips(x: torch.Tensor, y: torch.Tensor, trunk: dict, lins: dict) -> torch.Tensor:
    """LPIPS v0.1 written out from the paper's formula, layer by layer."""
    shift = torch.tensor(SHIFT).view(1, 3, 1, 1)
    scale = torch.tensor(SCALE).view(1, 3, 1, 1)

    def taps(z: torch.Tensor) -> list[torch.Tensor]:
        z = (2 * z - 1 - shift) / scale
        out = []
        z = F.relu(F.conv2d(z, trunk["features.0.weight"], trunk["features.0.bias"], 4, 2))
        out.append(z)
        z = F.max_pool2d(z, 3, 2)
        z = F.relu(F.conv2d(z, trunk["features.3.weight"], trunk["features.3.bias"], 1, 2))
        out.append(z)
        z = F.max_pool2d(z, 3, 2)
        for index in (6, 8, 10):
            z = F.relu(
                F.conv2d(
                    z, trunk[f"features.{index}.weight"], trunk[f"features.{index}.bias"], 1, 1
                )
            )
            out.append(z)
        return out

    total = torch.zeros(x.shape[0])
    for layer, (a, b) in enumerate(zip(taps(x), taps(y), strict=True)):
        a = a / (a.norm(dim=1, keepdim=True) + 1e-10)
        b = b / (b.norm(dim=1, keepdim=True) + 1e-10)
        weight = lins[f"lin{layer}.model.1.weight"].flatten()
        total += ((a - b) ** 2 * weight.view(1, -1, 1, 1)).sum(dim=1).mean(dim=(1, 2))
    return total


def test_matches_the_reference_formula_with_real_linear_weights(seeded_alexnet) -> None:
    path, state = seeded_alexnet
    linear = linear_weights_path()
    assert linear is not None, "the lpips wheel is part of the test set-up (Makefile)"
    lins = torch.load(linear, map_location="cpu", weights_only=True)
    model = load_lpips(path, linear)
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 64, 64, generator=generator)
    y = (x + 0.1 * torch.randn(2, 3, 64, 64, generator=generator)).clamp(0, 1)
    expected = _reference_lpips(x, y, state, lins)
    assert torch.allclose(model(x, y), expected, rtol=1e-4, atol=1e-6)
    assert torch.allclose(model(x, x), torch.zeros(2), atol=1e-6)
    assert torch.allclose(model(x, y), model(y, x))


def test_missing_alexnet_says_how_to_get_it(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("RECHROMA_LPIPS_WEIGHTS", raising=False)
    with pytest.raises(LpipsUnavailable, match="fetch-weights lpips"):
        load_lpips(tmp_path / "absent.pth")
    assert "--lpips-weights" in UNAVAILABLE_ALEXNET


def test_a_pickle_that_is_not_plain_weights_is_refused(tmp_path) -> None:
    import pickle

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps(print))
    with pytest.raises(LpipsUnavailable):
        load_lpips(path)


@pytest.fixture(scope="module")
def shared_lpips(photos_val):
    """The shared AlexNet features (.safetensors) and the five reference pairs."""
    return photos_val.parent / "lpips"


def _png(path) -> torch.Tensor:
    import numpy as np
    from PIL import Image

    array = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1)[None]


def test_reproduces_the_upstream_reference_values(shared_lpips) -> None:
    """The proof LPIPS is right: upstream's values for five calibration pairs, to 1e-3."""
    import json

    model = load_lpips(shared_lpips / "alexnet-features.safetensors")
    expected = json.loads((shared_lpips / "reference-values.json").read_text())["values"]
    assert len(expected) == 5
    for name, value in expected.items():
        ref, dist = _png(shared_lpips / f"{name}-ref.png"), _png(shared_lpips / f"{name}-dist.png")
        assert model(dist, ref).item() == pytest.approx(value, abs=1e-3), name


def test_identical_images_are_at_distance_zero(shared_lpips) -> None:
    model = load_lpips(shared_lpips / "alexnet-features.safetensors")
    image = _png(shared_lpips / "I03-ref.png")
    assert model(image, image).item() == pytest.approx(0.0, abs=1e-7)


def test_weights_come_from_the_environment_variable(shared_lpips, monkeypatch) -> None:
    from rechroma.evaluation.lpips import WEIGHTS_ENV

    monkeypatch.setenv(WEIGHTS_ENV, str(shared_lpips / "alexnet-features.safetensors"))
    image = _png(shared_lpips / "I04-ref.png")
    assert load_lpips()(image, image).item() == pytest.approx(0.0, abs=1e-7)
    monkeypatch.setenv(WEIGHTS_ENV, str(shared_lpips / "absent.safetensors"))
    with pytest.raises(LpipsUnavailable, match=WEIGHTS_ENV):
        load_lpips()


def test_a_safetensors_file_of_other_tensors_is_refused(tmp_path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"features.0.weight": torch.zeros(3, 3)}, str(path))
    with pytest.raises(LpipsUnavailable, match="cannot load"):
        load_lpips(path)
