"""The page's repair switch and mask overlay, in headless Chromium against a real server."""

import numpy as np
import pytest
import torch
from PIL import Image

from rechroma.inference.colorizer import Colorizer
from rechroma.models import build_model
from rechroma.models.checkpoint import save_weights
from rechroma.restoration import Restorer
from rechroma.server.settings import ServerSettings

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def repair_url(start_server, tiny_weights, tmp_path_factory) -> str:
    torch.manual_seed(0)
    kwargs = {"width": 4, "depth": 2, "max_channels": 8}
    path = tmp_path_factory.mktemp("detector") / "detector.safetensors"
    save_weights(path, build_model("defect-unet", **kwargs), "defect-unet", kwargs, step=0)
    # A threshold this low repairs much of the photo: the overlay has something to show.
    restorer = Restorer.load(path, threshold=0.02)
    colorizer = Colorizer.load(tiny_weights, render_size=64, threads=1)
    return start_server(ServerSettings(), colorizer, restorer)


def test_repair_switch_and_mask_overlay(browser, repair_url, tmp_path) -> None:
    rng = np.random.default_rng(0)
    photo = tmp_path / "scan.png"
    Image.fromarray(rng.integers(60, 200, (120, 160), dtype=np.uint8)).save(photo)
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(repair_url)
    page.set_input_files("#files", str(photo))
    result = page.locator(".result").first
    result.locator(".status", has_text="Done").wait_for(timeout=60_000)
    repair = result.locator(".repair")
    assert repair.is_visible()
    before = result.locator(".before").get_attribute("src")
    result.locator(".repair-toggle").check()
    result.locator(".status", has_text="Done").wait_for(timeout=60_000)
    result.locator(".mask-toggle:not([disabled])").wait_for(timeout=30_000)
    # The "before" side stays the photo as uploaded.
    assert result.locator(".before").get_attribute("src") == before
    result.locator(".mask-toggle").check()
    overlay = result.locator(".mask-overlay")
    assert overlay.is_visible()
    red = overlay.evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
    )
    assert red > 0
    result.locator(".mask-toggle").uncheck()
    assert not overlay.is_visible()
    context.close()
    assert not errors, errors
