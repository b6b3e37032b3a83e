"""Colorize photos of any size on the CPU with a trained generator.

The network sees a small copy of the photo's lightness (short side `render_size`) and
predicts chroma at that size; the chroma is upsampled and joined with the photo's own
full-resolution L, so every detail of the input survives at its exact size.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from rechroma.checkpoint import CheckpointInfo, file_sha256, load_generator
from rechroma.color import denormalize_ab, lab_to_rgb, normalize_l, rgb_to_lab
from rechroma.images import DEFAULT_MAX_PIXELS, Photo, open_photo, output_format, save_photo

logger = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "rechroma-v0.safetensors"
# Chosen by evaluating the shipped model at several sizes on photos-val (docs/MODEL.md).
DEFAULT_RENDER_SIZE = 192
# The network's input never exceeds this many times render_size on its long side, so a
# 20000x50 panorama is rendered at a sane size rather than 100000 pixels wide.
MAX_ASPECT = 4


def render_shape(height: int, width: int, render_size: int) -> tuple[int, int]:
    """Size of the network's input: short side `render_size`, long side capped, aspect kept."""
    scale = render_size / min(height, width)
    scale = min(scale, render_size * MAX_ASPECT / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


class Colorizer:
    """A loaded model plus the settings to run it; build once, call for every photo."""

    def __init__(
        self,
        model: nn.Module,
        info: CheckpointInfo,
        weights_path: Path | None = None,
        render_size: int = DEFAULT_RENDER_SIZE,
        device: str | torch.device = "cpu",
    ) -> None:
        self.model = model.eval().to(device)
        self.info = info
        self.weights_path = weights_path
        self.render_size = render_size
        self.device = torch.device(device)
        self._sha256: str | None = None

    @classmethod
    def load(
        cls,
        weights: Path | None = None,
        render_size: int = DEFAULT_RENDER_SIZE,
        threads: int | None = None,
        device: str = "cpu",
    ) -> Colorizer:
        """Load weights (the shipped model by default) with safetensors, never pickle."""
        if threads is not None:
            torch.set_num_threads(threads)
        path = weights or DEFAULT_WEIGHTS
        model, info = load_generator(path, device)
        return cls(model, info, path, render_size, device)

    @property
    def weights_sha256(self) -> str | None:
        """SHA-256 of the weights file, computed once on first use."""
        if self._sha256 is None and self.weights_path is not None:
            self._sha256 = file_sha256(self.weights_path)
        return self._sha256

    @torch.inference_mode()
    def predict_ab(self, lightness: torch.Tensor, render_size: int | None = None) -> torch.Tensor:
        """Predict chroma at render size.

        Args:
            lightness: `(1, H, W)` L in [0, 100] at full resolution.
            render_size: short side the network sees; the instance default when None.

        Returns:
            `(2, h, w)` ab in Lab units at render size.
        """
        height, width = lightness.shape[-2:]
        small_h, small_w = render_shape(height, width, render_size or self.render_size)
        small = F.interpolate(
            lightness[None],
            size=(small_h, small_w),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        ab_norm = self.model(normalize_l(small).to(self.device)).float().cpu()
        return denormalize_ab(ab_norm[0])

    @torch.inference_mode()
    def colorize(self, image: Image.Image, render_size: int | None = None) -> Image.Image:
        """Colorize an image (colour input counts as its lightness); RGB out, same size."""
        rgb = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)
        lightness = rgb_to_lab(rgb.permute(2, 0, 1))[:1]  # (1, H, W)
        del rgb
        ab_small = self.predict_ab(lightness, render_size)
        ab = F.interpolate(
            ab_small[None], size=lightness.shape[-2:], mode="bilinear", align_corners=False
        )[0]
        out = lab_to_rgb(torch.cat([lightness, ab], dim=0))
        array = (out.permute(1, 2, 0) * 255.0).round_().to(torch.uint8).numpy()
        return Image.fromarray(array)

    def colorize_photo(self, photo: Photo, render_size: int | None = None) -> Image.Image:
        """Colorize a decoded `Photo`; alpha and metadata are re-attached when saving."""
        return self.colorize(photo.rgb, render_size)

    def colorize_file(
        self,
        src: str | Path,
        dst: str | Path,
        render_size: int | None = None,
        quality: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> Path:
        """Read `src`, colorize it, write `dst` in the format its extension names."""
        src, dst = Path(src), Path(dst)
        output_format(dst)  # an unwritable extension fails before the work, not after
        photo = open_photo(src, max_pixels=max_pixels)
        return save_photo(photo, self.colorize_photo(photo, render_size), dst, quality)
