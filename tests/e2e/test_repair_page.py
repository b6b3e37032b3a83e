"""The page's repair switch and mask overlay, in headless Chromium against a real server."""

import numpy as np
import pytest
import torch
from PIL import Image

from page_parts import card, editor
from rechroma.inference.colorizer import Colorizer
from rechroma.models import build_model
from rechroma.models.checkpoint import save_weights
from rechroma.restoration import Restorer
from rechroma.server.settings import ServerSettings

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip("playwright.sync_api")


class RecordingRestorer(Restorer):
    """The real Restorer, noting the mask each request brought (None: the detector's)."""

    masks: list = []
    thresholds: list = []

    def restore(self, image, threshold=None, tone="auto", tone_strength=1.0, mask=None):
        self.masks.append(mask)
        self.thresholds.append(threshold)
        return super().restore(image, threshold, tone, tone_strength, mask)


@pytest.fixture(scope="module")
def repair_url(start_server, tiny_weights, tmp_path_factory) -> str:
    torch.manual_seed(0)
    kwargs = {"width": 4, "depth": 2, "max_channels": 8}
    path = tmp_path_factory.mktemp("detector") / "detector.safetensors"
    save_weights(path, build_model("defect-unet", **kwargs), "defect-unet", kwargs, step=0)
    # A threshold this low repairs much of the photo: the overlay has something to show.
    restorer = RecordingRestorer.load(path, threshold=0.02)
    colorizer = Colorizer.load(tiny_weights, render_size=64, threads=1)
    return start_server(ServerSettings(), colorizer, restorer)


def test_repair_switch_and_mask_overlay(browser, repair_url, screen, tmp_path) -> None:
    rng = np.random.default_rng(0)
    photo = tmp_path / "scan.png"
    Image.fromarray(rng.integers(60, 200, (120, 160), dtype=np.uint8)).save(photo)
    context = browser.new_context(accept_downloads=True, **screen)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(repair_url)
    page.set_input_files("#files", str(photo))
    card(page).locator(".status", has_text="Done").wait_for(timeout=60_000)
    result = editor(page)
    repair = result.locator(".repair")
    assert repair.is_visible()
    before = result.locator(".before").get_attribute("src")
    result.locator(".repair-toggle").check()
    result.locator(".status", has_text="Done").wait_for(timeout=60_000)
    result.locator(".mask-toggle:not([disabled])").wait_for(timeout=30_000)
    # The "before" side stays the photo as uploaded.
    assert result.locator(".before").get_attribute("src") == before
    # The page says what the repair found, in words.
    found = result.locator(".repair-found")
    assert found.is_visible() and "repaired." in found.inner_text(), found.inner_text()
    result.locator(".mask-toggle").check()
    overlay = result.locator(".mask-overlay")
    assert overlay.is_visible()
    red = overlay.evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
    )
    assert red > 0
    # The brush: erase everything under a stroke; the download sends the corrected mask.
    result.locator(".mask-edit").click()
    result.locator(".mask-erase").click()
    box = overlay.bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 5, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    erased = overlay.evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, c.height / 2, c.width, 1).data;
                  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
    )
    assert erased == 0  # the stroke's row holds no repair any more
    assert "with your corrections" in result.locator(".repair-found").inner_text()
    # The preview is repaired again along the corrected mask, on a copy at preview size.
    playwright_api.expect(result).to_have_attribute("data-repair-runs", "1", timeout=30_000)
    playwright_api.expect(result.locator(".status")).to_have_text(
        "Repairs corrected: the download uses them"
    )
    previewed = RecordingRestorer.masks[-1]
    assert previewed is not None and not previewed[60].any() and previewed.any()
    # Undo takes the stroke back; a second stroke is made again for the download.
    result.locator(".mask-undo").click()
    assert (
        overlay.evaluate(
            """c => { const d = c.getContext('2d').getImageData(0, c.height / 2, c.width, 1).data;
                  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
        )
        > 0
    )
    assert result.locator(".mask-undo").is_disabled()
    box = overlay.bounding_box()  # clicking Undo may have scrolled the page
    page.mouse.move(box["x"] + 5, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 5, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    # Save mask: the corrected mask as a PNG at the photo's size, as hand masks are kept.
    with page.expect_download() as saved:
        result.locator(".mask-save").click()
    assert saved.value.suggested_filename == "scan-mask.png"
    kept = np.asarray(Image.open(saved.value.path()).convert("L")) > 127
    assert kept.shape == (120, 160) and not kept[60].any() and kept.any()
    with page.expect_download():
        result.locator(".download").click()
    drawn = RecordingRestorer.masks[-1]
    assert drawn is not None and drawn.shape == (120, 160)  # the person's mask, full size
    assert not drawn[60].any() and drawn.any()  # erased along the stroke, kept elsewhere
    result.locator(".mask-toggle").uncheck()
    assert not overlay.is_visible()
    context.close()
    assert not errors, errors


def test_repair_strength_sets_the_threshold(browser, repair_url, screen, tmp_path) -> None:
    rng = np.random.default_rng(1)
    photo = tmp_path / "scan.png"
    Image.fromarray(rng.integers(60, 200, (120, 160), dtype=np.uint8)).save(photo)
    context = browser.new_context(**screen)
    page = context.new_page()
    page.goto(repair_url)
    page.set_input_files("#files", str(photo))
    card(page).locator(".status", has_text="Done").wait_for(timeout=60_000)
    result = editor(page)
    result.locator(".repair-toggle").check()
    result.locator(".repair-found:not([hidden])").wait_for(timeout=60_000)
    strong = result.locator(".repair-found").inner_text()
    strength = result.locator(".repair-strength")
    assert strength.is_visible()
    calls = len(RecordingRestorer.thresholds)
    strength.fill("0")  # very gentle: threshold 0.8 for this request, not the server's 0.02
    strength.dispatch_event("change")
    result.locator(".status", has_text="Done").wait_for(timeout=60_000)
    page.wait_for_function(
        "t => document.querySelector('.repair-found').textContent !== t", arg=strong
    )
    assert result.locator(".strength-name").inner_text() == "very gentle"
    assert 0.8 in RecordingRestorer.thresholds[calls:]
    context.close()
