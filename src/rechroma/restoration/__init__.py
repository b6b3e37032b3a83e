"""Restoration of damaged prints: find scratches, dust and cracks, fill them, fix fading."""

from rechroma.restoration.restorer import (
    DEFAULT_DETECTOR,
    Restoration,
    RestoreOptions,
    Restorer,
)

__all__ = ["DEFAULT_DETECTOR", "Restoration", "RestoreOptions", "Restorer"]
