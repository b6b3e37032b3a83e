"""Evaluate a colorizer on a folder of colour photos with the literature's protocol.

Each photo is resized to `size` x `size` (bicubic, RGB uint8), its colour is removed,
it is colorized, and the result is compared with the original. Photos whose ground
truth is already gray (colourfulness < 1) are skipped and counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from rechroma.color import rgb_to_gray_rgb
from rechroma.errors import DataError, ImageReadError
from rechroma.images import PHOTO_SUFFIXES, open_photo
from rechroma.inference import Colorizer
from rechroma.metrics import colorfulness, psnr, ssim

logger = logging.getLogger(__name__)

GRAY_CF_THRESHOLD = 1.0


@dataclass
class Scores:
    """Per-image figures of one method over the evaluated photos."""

    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    colorfulness: list[float] = field(default_factory=list)

    def add(self, output: torch.Tensor, truth: torch.Tensor) -> None:
        """Score one `(1, 3, H, W)` output against its `(1, 3, H, W)` truth, both 0..255."""
        self.psnr.append(psnr(output, truth).item())
        self.ssim.append(ssim(output, truth).item())
        self.colorfulness.append(colorfulness(output).item())

    def summary(self, truth_cf: float) -> dict[str, float]:
        """Means, plus delta-CF against the ground truth's mean colourfulness."""
        mean_cf = float(np.mean(self.colorfulness))
        return {
            "psnr": float(np.mean(self.psnr)),
            "ssim": float(np.mean(self.ssim)),
            "colorfulness": mean_cf,
            "delta_cf": abs(mean_cf - truth_cf),
        }


def list_photos(folder: Path) -> list[Path]:
    """Every photo under `folder`, sorted."""
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder of photos")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)


def _as_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> `(1, 3, H, W)` float in [0, 255]."""
    return torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)[None]


def evaluate_folder(
    colorizer: Colorizer,
    folder: Path,
    size: int = 256,
    render_size: int | None = None,
    progress: bool = True,
) -> dict[str, object]:
    """Score `colorizer` and the all-gray baseline on every colour photo in `folder`."""
    paths = list_photos(folder)
    if not paths:
        raise DataError(f"no photos in {folder}")
    model, gray, truth_cf = Scores(), Scores(), []
    skipped_gray, unreadable = 0, 0
    for path in tqdm(paths, desc="eval", unit="photo", disable=not progress):
        try:
            photo = open_photo(path)
        except ImageReadError as exc:
            logger.warning("skipping %s", exc)
            unreadable += 1
            continue
        truth_image = photo.rgb.resize((size, size), Image.Resampling.BICUBIC)
        truth = _as_tensor(truth_image)
        cf = colorfulness(truth).item()
        if cf < GRAY_CF_THRESHOLD:
            skipped_gray += 1
            continue
        truth_cf.append(cf)
        output = _as_tensor(colorizer.colorize(truth_image, render_size))
        model.add(output, truth)
        gray_rgb = rgb_to_gray_rgb(truth / 255.0)
        gray.add((gray_rgb * 255).round(), truth)
    if not truth_cf:
        raise DataError(f"no colour photos to evaluate in {folder}")
    mean_truth_cf = float(np.mean(truth_cf))
    return {
        "data": str(folder),
        "size": size,
        "render_size": render_size or colorizer.render_size,
        "count": len(truth_cf),
        "skipped_gray": skipped_gray,
        "unreadable": unreadable,
        "truth_colorfulness": mean_truth_cf,
        "model": model.summary(mean_truth_cf),
        "gray_baseline": gray.summary(mean_truth_cf),
    }
