"""Where the browser tests find things on the page: a photo's card in the strip, and the
editor panel of the photo that is open."""

# The panel the editor shows; the others are built but hidden.
EDITOR = "#editor .editor-panel:not([hidden])"


def card(page, index: int = 0):
    return page.locator("#results .card").nth(index)


def editor(page):
    return page.locator(EDITOR)


def open_card(page, index: int) -> None:
    """Open a photo from the strip, as a person would: on a phone the editor covers the
    strip, so first go back to it."""
    back_to_strip(page)
    card(page, index).locator(".card-open").click()


def back_to_strip(page) -> None:
    """On a phone, leave the editor (it takes the screen) to reach the strip and its
    buttons; elsewhere the strip is already in view."""
    back = page.locator("#editor.takeover .editor-panel:not([hidden]) .close-editor")
    if back.count():
        back.click()
