"""The EfficientNet-Lite0 rebuild and the lite0-unet generator built on it."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rechroma.color import HINT_CHANNELS, normalize_l, rgb_to_lab
from rechroma.models import build_generator
from rechroma.models.efficientnet_lite import (
    EfficientNetLite0,
    LiteTrunk,
    imagenet_input,
    imagenet_state_dict,
    load_imagenet_trunk,
)


def _centre_224(path: Path) -> torch.Tensor:
    """ImageNet evaluation's crop: short side 256, centre 224, sRGB in [0, 1]."""
    image = Image.open(path).convert("RGB")
    scale = 256 / min(image.size)
    image = image.resize(
        (round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC
    )
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    image = image.crop((left, top, left + 224, top + 224))
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)


@pytest.mark.slow
def test_rebuild_classifies_photos_val_like_the_published_network(photos_val: Path) -> None:
    """Proof the weights are mapped right: ImageNet top-1 on 200 real photos, in colour."""
    torch.set_num_threads(2)
    model = EfficientNetLite0().eval()
    model.load_state_dict(imagenet_state_dict(), strict=True)
    wnids = [line.split()[1] for line in (photos_val.parent / "imagenet-classes.txt").open()]
    paths = sorted(photos_val.glob("*.JPEG"))
    hits = 0
    for start in range(0, len(paths), 25):
        chunk = paths[start : start + 25]
        batch = torch.stack([_centre_224(p) for p in chunk])
        with torch.inference_mode():
            predicted = model(imagenet_input(batch)).argmax(dim=1)
        hits += sum(wnids[i] == p.name.split("_")[0] for i, p in zip(predicted, chunk, strict=True))
    assert len(paths) == 200
    assert hits / len(paths) >= 0.85


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_gray_trunk_sees_a_gray_photo_as_the_rgb_trunk_does(real_photo: Path, variant: str) -> None:
    rgb_trunk = LiteTrunk(3, variant=variant).eval()
    gray_trunk = LiteTrunk(1 + HINT_CHANNELS, variant=variant).eval()
    load_imagenet_trunk(rgb_trunk)
    load_imagenet_trunk(gray_trunk)
    gray = Image.open(real_photo).convert("L").resize((96, 64))
    x = imagenet_input(torch.from_numpy(np.asarray(gray, dtype=np.float32) / 255)[None, None])
    with torch.inference_mode():
        from_rgb = rgb_trunk(x.expand(-1, 3, -1, -1))[-1]
        from_gray = gray_trunk(torch.cat([x, torch.randn(1, HINT_CHANNELS, 64, 96)], 1))[-1]
    # The hint channels' stem weights start at zero: random hints change nothing yet.
    torch.testing.assert_close(from_gray, from_rgb, atol=1e-4, rtol=1e-4)


def test_zero_hints_are_the_automatic_colouring() -> None:
    torch.manual_seed(0)
    model = build_generator("lite0-unet").eval()
    torch.nn.init.normal_(model.head.weight, std=0.1)
    lightness = torch.rand(1, 1, 40, 56) * 2 - 1
    with torch.inference_mode():
        automatic = model(lightness)
        zero_hints = model(lightness, torch.zeros(1, HINT_CHANNELS, 40, 56))
        hinted = model(lightness, torch.ones(1, HINT_CHANNELS, 40, 56) * 0.5)
    torch.testing.assert_close(automatic, zero_hints)
    assert not torch.allclose(automatic, hinted)


def test_untrained_generator_starts_gray() -> None:
    """The output layer starts at zero: the first answer is the gray photo, not noise."""
    rgb = torch.rand(1, 3, 32, 32)
    lightness = normalize_l(rgb_to_lab(rgb)[:, :1])
    with torch.inference_mode():
        assert build_generator("lite0-unet").eval()(lightness).abs().max() == 0
