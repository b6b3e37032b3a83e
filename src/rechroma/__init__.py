"""rechroma: colorize grayscale and faded black-and-white photos."""

__version__ = "0.1.0"
