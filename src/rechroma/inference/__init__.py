"""Inference: the Colorizer (load once, any size), guided upsampling, folders, ONNX export.

The Colorizer's names load on first use (PEP 562), so the modules of this package that
need no PyTorch (planning a folder, reading hints files) can be imported without paying
for it: a rerun whose outputs all exist answers without loading PyTorch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rechroma.inference.colorizer import (
        DEFAULT_RENDER_SIZE,
        DEFAULT_WEIGHTS,
        MAX_VIVIDNESS,
        Colorizer,
        Prediction,
    )

__all__ = ["DEFAULT_RENDER_SIZE", "DEFAULT_WEIGHTS", "MAX_VIVIDNESS", "Colorizer", "Prediction"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("rechroma.inference.colorizer"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
