"""The web page in a real headless Chromium (Debian's) against a real server on loopback.

Each flow runs on a laptop's screen (1280x900) and a phone's (390x844, touch). Set
RECHROMA_SCREENSHOT=docs/screenshot.png to refresh the README's screenshots (the phone's
goes to docs/screenshot-phone.png).
"""

import io
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from page_parts import back_to_strip, card, editor, open_card
from rechroma.inference.colorizer import Colorizer
from rechroma.server.settings import ServerSettings

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def base_url(start_server) -> str:
    # The shipped model: the screenshot and the downloaded colours are the real thing.
    return start_server(ServerSettings(max_upload_bytes=5_000_000), Colorizer.load(threads=2))


@pytest.fixture()
def page(browser, base_url, screen):
    context = browser.new_context(accept_downloads=True, **screen)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(base_url)
    yield page
    context.close()
    assert not [e for e in errors if "Failed to load resource" not in e], errors


def colourful(image: Image.Image) -> float:
    rgb = np.asarray(image.convert("RGB"), dtype=int)
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean())


def test_upload_compare_adjust_and_download(page, real_photo, tmp_path) -> None:
    photo = tmp_path / real_photo.name  # as people bring them: black and white
    Image.open(real_photo).convert("L").save(photo, quality=92)
    page.set_input_files("#files", str(photo))
    playwright_api.expect(card(page).locator(".status")).to_have_text("Done", timeout=60_000)
    # The first result opens in the editor by itself, across the results' whole width.
    result = editor(page)
    playwright_api.expect(result.locator(".view")).to_be_visible()
    view = result.locator(".view").bounding_box()
    panel = page.locator("#results-panel").bounding_box()
    assert view["width"] > 0.95 * (panel["width"] - 40), (view, panel)

    # The divider's handle, by keyboard like a person without a mouse, and by dragging.
    handle = result.locator(".handle")
    handle.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    playwright_api.expect(handle).to_have_attribute("aria-valuenow", "55")
    box = handle.bounding_box()
    stage = result.locator(".stage").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(stage["x"] + 0.2 * stage["width"], box["y"] + 5, steps=4)
    page.mouse.up()
    playwright_api.expect(handle).to_have_attribute("aria-valuenow", "20")
    # The original shows left of the divider: a fifth of the photo.
    split = result.locator(".view").evaluate(
        "e => parseFloat(e.style.getPropertyValue('--split-px'))"
    )
    assert abs(view["x"] + split - (stage["x"] + 0.2 * stage["width"])) < 1

    handle.focus()
    for _ in range(3):
        page.keyboard.press("PageUp")
    playwright_api.expect(handle).to_have_attribute("aria-valuenow", "50")
    # The whole page on a laptop; on a phone what the screen shows: the editor.
    phone = page.viewport_size["width"] < 600
    screenshot = tmp_path / "screenshot.png"
    page.screenshot(path=str(screenshot), full_page=not phone)
    if target := os.environ.get("RECHROMA_SCREENSHOT"):
        shutil.copy(screenshot, target.replace(".png", "-phone.png") if phone else target)

    # Vividness changes the preview at once, without the server.
    canvas = result.locator("canvas.after")
    chroma = (
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let s = 0; for (let i = 0; i < d.length; i += 4) s += Math.max(d[i], d[i+1], d[i+2])"
        " - Math.min(d[i], d[i+1], d[i+2]); return s / (d.length / 4); }"
    )
    before = canvas.evaluate(chroma)
    result.locator(".vividness").fill("1.8")
    assert result.locator(".vividness-value").inner_text() == "1.80"
    assert canvas.evaluate(chroma) > 1.5 * before

    # Download at vividness 1.8: rendered again by the server, full size, in colour.
    with page.expect_download() as download_info:
        result.locator(".download").click()
    path = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(path)
    downloaded = Image.open(path)
    assert downloaded.size == Image.open(real_photo).size
    assert path.name.endswith("-colour.jpg") and colourful(downloaded) > 3


def test_bad_file_shows_its_error_while_others_succeed(page, tmp_path, real_photo) -> None:
    bad = tmp_path / "letter.jpg"
    bad.write_text("Dear Aunt Mary, this is not a photo.")
    page.set_input_files("#files", [str(bad), str(real_photo)])
    results = page.locator("#results .card")
    playwright_api.expect(results.nth(0).locator(".status")).to_have_text("Failed", timeout=60_000)
    playwright_api.expect(results.nth(0).locator(".error")).to_contain_text("not an image")
    playwright_api.expect(results.nth(1).locator(".status")).to_have_text("Done", timeout=60_000)

    back_to_strip(page)
    with page.expect_download() as download_info:
        page.locator("#download-all").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(download_info.value.path()).read_bytes()))
    names = archive.namelist()
    assert len(names) == 1 and names[0].endswith("-colour.jpg")
    assert archive.testzip() is None
    assert Image.open(io.BytesIO(archive.read(names[0]))).size == Image.open(real_photo).size


def test_cards_show_only_what_their_state_allows(page, tmp_path, real_photo) -> None:
    """A failed card offers no download and no tools, and never opens the editor; a file over
    the server's limit is refused in the page, never sent."""
    bad = tmp_path / "letter.jpg"
    bad.write_text("Dear Aunt Mary, this is not a photo.")
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + os.urandom(6_000_000))
    posts = []
    page.on("request", lambda r: posts.append(r) if r.url.endswith("/api/colorize") else None)
    page.wait_for_function("document.querySelector('#limits').textContent.includes('MB')")
    page.set_input_files("#files", [str(bad), str(big), str(real_photo)])
    results = page.locator("#results .card")
    failed_names = ["letter.jpg", "big.jpg"]
    playwright_api.expect(results.nth(2).locator(".status")).to_have_text("Done", timeout=60_000)
    for index in range(2):
        failed = results.nth(index)
        playwright_api.expect(failed.locator(".status")).to_have_text("Failed")
        assert failed.locator("progress").is_hidden()
        open_card(page, index)  # opens nothing: the photo that worked stays the one open
        assert page.locator(f"#editor .editor-panel:has-text('{failed_names[index]}')").count() == 0
    open_card(page, 2)
    playwright_api.expect(editor(page).locator(".name")).to_have_text(real_photo.name)
    assert editor(page).locator(".download").is_visible()
    assert page.locator("#editor .editor-panel").count() == 1  # failed photos have no editor
    playwright_api.expect(results.nth(1).locator(".error")).to_have_text(
        "This file is 5.7 MB; this server takes photos up to 5 MB."
    )
    assert len(posts) == 2  # the letter and the photo; the big file never left the page
    # Neither can go otherwise on another try: no retry, but each can be removed.
    back_to_strip(page)
    for failed in (results.nth(0), results.nth(1)):
        assert failed.locator(".remove").is_visible() and failed.locator(".retry").is_hidden()
    results.nth(1).locator(".remove").click()
    playwright_api.expect(results).to_have_count(2)
    open_card(page, 1)
    assert editor(page).locator(".download").is_visible()
    assert "Pillow" not in results.nth(0).locator(".error").inner_text()
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(f"{page.url.rstrip('/')}/{icon}").ok


def test_a_busy_server_can_be_tried_again(page, real_photo) -> None:
    busy = {"detail": "busy", "error": "Busy"}
    page.route("**/api/colorize", lambda route: route.fulfill(status=503, json=busy))
    page.set_input_files("#files", str(real_photo))
    result = card(page)
    playwright_api.expect(result.locator(".status")).to_have_text("Failed", timeout=30_000)
    playwright_api.expect(result.locator(".error")).to_contain_text("busy")
    assert page.locator("#editor").is_hidden()
    page.unroute("**/api/colorize")
    result.locator(".retry").click()
    playwright_api.expect(result.locator(".status")).to_have_text("Done", timeout=60_000)
    assert result.locator(".error").is_hidden() and result.locator(".retry").is_hidden()
    assert editor(page).locator(".download").is_visible()


def test_before_is_the_upload_itself(page, tmp_path, real_photo) -> None:
    """A sepia print's "before" stays sepia; a TIFF, which Chromium cannot show, falls back
    to the result's gray."""
    gray = Image.open(real_photo).convert("L").resize((240, 180))
    sepia = Image.merge("RGB", [p.point(lambda v, k=k: min(255, int(v * k))) for p, k in
                                zip([gray] * 3, (1.07, 0.74, 0.43), strict=True)])  # fmt: skip
    sepia.save(tmp_path / "sepia.jpg", quality=92)
    gray.save(tmp_path / "scan.tif")
    page.set_input_files("#files", [str(tmp_path / "sepia.jpg"), str(tmp_path / "scan.tif")])
    for index in range(2):
        status = card(page, index).locator(".status")
        playwright_api.expect(status).to_have_text("Done", timeout=60_000)
    warmth = (
        "img => new Promise(done => { const draw = () => { const c = document.createElement("
        "'canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight; const x = "
        "c.getContext('2d'); x.drawImage(img, 0, 0); const d = x.getImageData(0, 0, c.width, "
        "c.height).data; let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i] - d[i+2];"
        " done(s / (d.length / 4)); }; img.complete && img.naturalWidth ? draw() : "
        "img.addEventListener('load', draw, { once: true }); })"
    )
    open_card(page, 0)
    assert editor(page).locator(".before").evaluate(warmth) > 20  # red over blue: sepia
    open_card(page, 1)
    assert abs(editor(page).locator(".before").evaluate(warmth)) < 2  # the gray fallback


def test_sample_gallery_and_phone_layout(browser, base_url) -> None:
    """On a phone the editor takes the screen; two fingers zoom the photo; the way back
    leads to the strip."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)  # fmt: skip
    page = context.new_page()
    page.goto(base_url)
    assert page.locator("#privacy").is_visible()
    page.locator(".sample").first.click()
    # The new result is brought into view, not left 1,000 px below the upload box.
    playwright_api.expect(card(page)).to_be_in_viewport()
    playwright_api.expect(card(page).locator(".status")).to_have_text("Done", timeout=60_000)
    host = page.locator("#editor")
    playwright_api.expect(host).to_have_class("editor takeover")
    box = host.bounding_box()
    assert box["width"] == 390 and box["height"] == 844  # the whole screen
    view = editor(page).locator(".view").bounding_box()
    assert view["height"] > 400  # the photo has the room the tools leave

    # Pinch: two touches moving apart zoom in, about the point between them.
    cdp = context.new_cdp_session(page)
    x, y = view["x"] + view["width"] / 2, view["y"] + view["height"] / 2 + 60  # off the handle

    def touch(kind, spread):
        points = [{"x": x - spread, "y": y, "id": 0}, {"x": x + spread, "y": y, "id": 1}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    touch("touchStart", 40)
    for spread in range(50, 150, 10):
        touch("touchMove", spread)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    scale = editor(page).locator(".content").evaluate("e => new DOMMatrix(e.style.transform).a")
    assert scale > 1.5, scale

    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing overflows sideways on a phone
    for image in page.locator("img").all():
        assert image.get_attribute("alt") is not None
    editor(page).locator(".close-editor").click()
    playwright_api.expect(host).to_be_hidden()  # a card opens it again
    playwright_api.expect(card(page)).to_be_in_viewport()
    context.close()


def test_editor_zooms_to_the_scans_own_pixels(page, real_photo, tmp_path) -> None:
    """Zoomed past the preview, the editor shows the full-size result; wheel and keys zoom,
    full screen fills the screen, vividness is per photo with an "apply to all", and the
    strip switches photos."""
    photo = Image.open(real_photo).convert("L")
    big = photo.resize((photo.width * 6, photo.height * 6), Image.Resampling.BICUBIC)
    big.save(tmp_path / "big-scan.jpg", quality=90)
    page.set_input_files("#files", [str(tmp_path / "big-scan.jpg"), str(real_photo)])
    for index in range(2):
        status = card(page, index).locator(".status")
        playwright_api.expect(status).to_have_text("Done", timeout=90_000)
    open_card(page, 0)
    result = editor(page)
    playwright_api.expect(result.locator(".name")).to_have_text("big-scan.jpg")
    detail = result.locator(".detail")
    assert detail.is_hidden()  # at fit, the preview is sharp enough
    view = result.locator(".view")
    box = view.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(6):
        page.mouse.wheel(0, -200)
    view.focus()
    for _ in range(3):
        page.keyboard.press("+")
    playwright_api.expect(detail).to_be_visible(timeout=30_000)
    assert detail.evaluate("d => d.naturalWidth") == big.width  # the scan's own pixels
    zoom = int(result.locator(".zoom-level").inner_text().rstrip("%"))
    assert zoom >= 100
    # The original follows the zoom: both layers carry the same transform.
    transforms = [result.locator(part).evaluate("e => e.style.transform")
                  for part in (".content", ".before")]  # fmt: skip
    assert transforms[0] == transforms[1] and "scale(1)" not in transforms[0]
    page.keyboard.press("0")
    playwright_api.expect(result.locator(".zoom-out")).to_be_disabled()

    if page.viewport_size["width"] > 600:  # a phone's editor fills the screen already
        result.locator(".fullscreen").click()
        page.wait_for_function("() => document.fullscreenElement?.id === 'editor'")
        pressed = result.locator(".fullscreen")
        playwright_api.expect(pressed).to_have_attribute("aria-pressed", "true")
        assert view.bounding_box()["height"] > 0.7 * page.viewport_size["height"]
        result.locator(".fullscreen").click()
        page.wait_for_function("() => !document.fullscreenElement")

    result.locator(".vividness").fill("2.5")
    open_card(page, 1)
    other = editor(page)
    playwright_api.expect(other.locator(".name")).to_have_text(real_photo.name)
    assert other.locator(".vividness").input_value() == "1"  # per photo
    open_card(page, 0)
    editor(page).locator(".apply-all").click()
    open_card(page, 1)
    assert editor(page).locator(".vividness").input_value() == "2.5"
    assert page.locator(".card-open[aria-current=true]").count() == 1


def test_api_docs_render_offline(browser, base_url) -> None:
    """/docs draws the API from the server's own Swagger UI files: nothing from the net."""
    context = browser.new_context()
    page = context.new_page()
    outside = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url) if not request.url.startswith(base_url) else None
        ),
    )
    page.goto(f"{base_url}/docs")
    page.wait_for_selector("[data-path='/api/colorize']", timeout=30_000)
    assert page.locator(".opblock").count() >= 4
    assert outside == []
    context.close()
