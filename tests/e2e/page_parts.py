"""Where the browser tests find things on the page: a photo's card in the strip, and the
editor panel of the photo that is open."""

# The panel the editor shows; the others are built but hidden.
EDITOR = "#editor .editor-panel:not([hidden])"


def card(page, index: int = 0):
    return page.locator("#results .card").nth(index)


def editor(page):
    return page.locator(EDITOR)
