"""What hints do with the trained v1 network: they help, and they stay on their side
of an edge. (The shipped model once it takes hints; until then the model in training.)"""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rechroma.evaluation.evaluate import evaluate
from rechroma.inference.colorizer import DEFAULT_WEIGHTS, WEIGHTS_DIR, Colorizer
from rechroma.inference.hints import Hint


@pytest.fixture(scope="module")
def hint_colorizer() -> Colorizer:
    shipped = Colorizer.load(DEFAULT_WEIGHTS, threads=2)
    if shipped.takes_hints:
        return shipped
    return Colorizer.load(WEIGHTS_DIR / "rechroma-v1-wip.safetensors", threads=2)


@pytest.mark.slow
def test_hints_from_the_truth_lower_the_error(hint_colorizer, photos_val: Path) -> None:
    """Ten hints per photo, sampled from its ground truth, on 40 photos-val photos."""
    methods = {"v1": hint_colorizer.colorize}
    plain = evaluate(methods, photos_val, limit=40, grid_count=0, progress=False)
    hinted = evaluate(methods, photos_val, limit=40, grid_count=0, progress=False, hints=10)

    def psnr(result) -> float:
        return result.summary["methods"]["v1"]["psnr"]["mean"]

    gain = psnr(hinted) - psnr(plain)
    print(f"\n10 hints from the truth: PSNR +{gain:.2f} dB on 40 photos")
    assert gain > 1.0


def test_a_hint_colours_its_region_and_stops_at_the_edge(hint_colorizer) -> None:
    """Two flat regions, dark and light, split by a sharp vertical edge; a red hint in
    the dark one reddens it and leaves the light one (almost) as it was."""
    gray = np.full((192, 256), 70, dtype=np.uint8)
    gray[:, 128:] = 200
    rng = np.random.default_rng(0)
    photo = Image.fromarray(np.clip(gray + rng.normal(0, 3, gray.shape), 0, 255).astype(np.uint8))
    red = [Hint(40, 96, "#c0302a", radius=6)]
    plain = hint_colorizer.predict(photo).ab
    hinted = hint_colorizer.predict(photo, hints=red).ab
    small_w = plain.shape[-1]
    left, right = slice(0, small_w // 2 - 4), slice(small_w // 2 + 4, small_w)
    change = (hinted - plain).norm(dim=0)  # Lab units of chroma change per pixel
    towards_red = (hinted - plain)[0, :, left].mean().item()  # a* rises towards red
    near, far = change[:, left].mean().item(), change[:, right].mean().item()
    print(f"\nleft a* {towards_red:+.1f}; chroma change left {near:.1f}, right {far:.1f}")
    assert towards_red > 5
    assert far < 0.3 * near
    assert torch.isfinite(hinted).all()
