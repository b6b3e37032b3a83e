import pytest
import torch

from rechroma.errors import ConfigError
from rechroma.models import build_generator, list_generators
from rechroma.training.losses import pixel_loss

# Small settings per generator, so every registered one is tested in seconds.
TINY = {
    "unet": {"width": 8, "depth": 3, "max_channels": 32},
    "lite0-unet": {"decoder_channels": (32, 16, 16, 8, 8)},
    "lite2-unet": {"decoder_channels": (32, 16, 16, 8, 8)},
}


def test_every_generator_has_tiny_settings() -> None:
    assert set(TINY) == set(list_generators())


@pytest.mark.parametrize("name", list_generators())
@pytest.mark.parametrize("size", [(64, 64), (37, 53), (1, 1), (8, 200)])
def test_output_shape_and_range_for_any_size(name: str, size: tuple[int, int]) -> None:
    model = build_generator(name, **TINY[name]).eval()
    with torch.no_grad():
        ab = model(torch.rand(2, 1, *size) * 2 - 1)
    assert ab.shape == (2, 2, *size)
    assert ab.abs().max() <= 1


@pytest.mark.parametrize("name", list_generators())
def test_backward_reaches_every_parameter(name: str) -> None:
    model = build_generator(name, **TINY[name])
    # A non-zero output layer, so the gradient reaches the layers behind it too.
    torch.nn.init.normal_(model.head.weight, std=0.1)
    model(torch.rand(2, 1, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unknown_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        build_generator("resnet9000")


@pytest.mark.parametrize("kind", ["l1", "huber", "mse"])
def test_pixel_losses_are_zero_at_the_target(kind: str) -> None:
    target = torch.rand(2, 2, 4, 4)
    assert pixel_loss(target, target, kind).item() == 0
    assert pixel_loss(target + 0.1, target, kind).item() > 0


def test_overfits_a_single_batch() -> None:
    torch.manual_seed(0)
    model = build_generator("unet", **TINY["unet"])
    lightness = torch.rand(2, 1, 16, 16) * 2 - 1
    target = torch.tanh(torch.randn(2, 2, 1, 1)).expand(2, 2, 16, 16) * 0.5
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(80):
        loss = pixel_loss(model(lightness), target, "l1")
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 10
