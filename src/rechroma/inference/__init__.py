"""Inference: the Colorizer (load once, any size), guided upsampling, folders, ONNX export."""

from rechroma.inference.colorizer import (
    DEFAULT_RENDER_SIZE,
    DEFAULT_WEIGHTS,
    MAX_VIVIDNESS,
    Colorizer,
    Prediction,
)

__all__ = ["DEFAULT_RENDER_SIZE", "DEFAULT_WEIGHTS", "MAX_VIVIDNESS", "Colorizer", "Prediction"]
