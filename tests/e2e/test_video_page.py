"""A film clip through the page in Debian's Chromium: upload, progress, the result plays
beside the original, download."""

import pytest

from clips import probe, write_clip
from page_parts import card, editor
from rechroma.inference.colorizer import Colorizer
from rechroma.server.settings import ServerSettings

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def base_url(start_server, tiny_weights) -> str:
    return start_server(ServerSettings(), Colorizer.load(tiny_weights, render_size=64, threads=1))


def test_upload_a_clip_see_it_play_and_download_it(browser, base_url, screen, tmp_path) -> None:
    clip = write_clip(tmp_path / "reel.mp4", frames=36, size=(160, 96), audio=True)
    context = browser.new_context(accept_downloads=True, **screen)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base_url)
    playwright_api.expect(page.locator("#video-limits")).to_contain_text("60 s")
    page.set_input_files("#files", str(clip))
    playwright_api.expect(card(page).locator(".status")).to_have_text("Done", timeout=120_000)
    result = editor(page)  # the first result opens by itself

    after = result.locator(".video-after")
    # The browser decodes the result: it has the clip's size and length, and it plays.
    page.wait_for_function("v => v.readyState >= 2", arg=after.element_handle(), timeout=30_000)
    size = after.evaluate("v => [v.videoWidth, v.videoHeight, v.duration]")
    assert size[:2] == [160, 96] and size[2] == pytest.approx(1.5, abs=0.1)
    after.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("v => v.currentTime > 0.2", arg=after.element_handle(), timeout=30_000)
    # The original follows the colour clip.
    before_time = result.locator(".video-before").evaluate("v => v.currentTime")
    assert before_time > 0

    with page.expect_download() as download_info:
        result.locator(".download").click()
    download = download_info.value
    assert download.suggested_filename.startswith("reel-colour.")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert probe(saved)["frames"] == 36 and probe(saved)["audio"]
    context.close()
    assert not errors, errors


def test_a_broken_clip_shows_why(browser, base_url, tmp_path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a film")
    page = browser.new_page()
    page.goto(base_url)
    page.set_input_files("#files", str(bad))
    error = card(page).locator(".error")
    playwright_api.expect(error).to_contain_text("not a readable video", timeout=30_000)
    page.close()
