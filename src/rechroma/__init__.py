"""rechroma: colorize grayscale and faded black-and-white photos.

    from rechroma import colorize
    colour = colorize("old-photo.jpg")   # also bytes, a PIL image or a NumPy array

The library loads lazily: `import rechroma` alone does not import PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Colorizer", "__version__", "colorize"]

if TYPE_CHECKING:
    from rechroma.api import colorize
    from rechroma.inference.colorizer import Colorizer


def __getattr__(name: str) -> Any:
    if name == "colorize":
        from rechroma.api import colorize

        return colorize
    if name == "Colorizer":
        from rechroma.inference.colorizer import Colorizer

        return Colorizer
    raise AttributeError(f"module 'rechroma' has no attribute {name!r}")
