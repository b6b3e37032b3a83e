"""Find print damage with the detector network, fill it, and repair faded tone.

The detector (`defect-unet`) sees the photo at a working size of at most
`WORK_PIXELS` (a 12 MP scan's scratches are still several pixels wide there), in tiles
with overlap so memory stays bounded, and, where its weights say so, again at smaller
scales of that size: a wide emulsion crack that it misses at the working size is the
width it learnt at half of it. The most confident of its answers at each pixel is
brought to full size and thresholded; where the photo was shrunk, the mask is grown by
the shrink factor, and what it covers is filled at full resolution by OpenCV's
inpainting (Telea's fast marching: thin defects vanish without smearing the texture
around them). Clean areas are never touched: the output equals the input outside the
mask.
"""

from __future__ import annotations

import io
import itertools
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from rechroma.errors import InvalidOptionError
from rechroma.images import (
    DEFAULT_MAX_PIXELS,
    Photo,
    check_fits_format,
    open_photo,
    output_format,
    photo_from_image,
    save_photo,
    write_atomically,
)
from rechroma.models.checkpoint import CheckpointInfo, load_model
from rechroma.restoration.tone import TONE_MODES, repair_tone

logger = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).parent.parent / "weights"
DEFAULT_DETECTOR = WEIGHTS_DIR / "rechroma-defects-v5.safetensors"
# The detector sees the photo at most this large: the size the damage generator's defect
# sizes are given for, so a shrunk 12 MP scan's scratches are as wide as in training.
WORK_PIXELS = 1_000_000
# Tiles bound the memory of a long, narrow photo; a photo at the working size is one tile
# (about 250 MB of activations), so the detector sees it whole, with no seams.
TILE = 1280
OVERLAP = 64
# A smaller scale is skipped where the photo's short side would fall below this: a
# thumbnail has no crack wider than the detector sees at its own size.
MIN_SCALED_SIDE = 160
# For a detector file that names no threshold of its own (defects-v1 and v2 were chosen
# at 0.8); a shipped detector carries the one chosen for it on held-out photos
# (`export-weights --defect-threshold`, benchmarks/restore_thresholds.py).
DEFAULT_THRESHOLD = 0.8
# Telea's neighbourhood, in full-resolution pixels per working pixel.
INPAINT_RADIUS = 3
# The fill runs in horizontal strips, one per thread, that overlap by this many radii:
# a filled pixel draws on what lies within a few radii of it, so the strips' kept rows
# equal the whole photo's fill (tests/integration/test_restore.py checks).
STRIP_MARGIN_RADII = 8


@dataclass(frozen=True)
class RestoreOptions:
    """How photos are repaired before they are coloured (`colorize --restore`)."""

    weights: Path | None = None  # the detector; the shipped one when None
    threshold: float | None = None
    scales: tuple[float, ...] | None = None  # the detector's own when None
    tone: str = "auto"
    tone_strength: float = 1.0
    save_mask: bool = False  # write `<output>.mask.png` beside each output

    def load(self, threads: int | None = None) -> Restorer:
        """The Restorer these options name."""
        return Restorer.load(self.weights, self.threshold, threads, scales=self.scales)


@dataclass(frozen=True)
class Restoration:
    """A repaired photo, and where it was repaired."""

    photo: Photo  # the input's Photo with its gray replaced by the repaired one
    mask: np.ndarray  # (H, W) bool: the pixels that were filled
    toned: bool  # whether the tone repair changed the photo


class Restorer:
    """A loaded defect detector and its settings; build once, call for every photo."""

    def __init__(
        self,
        model: nn.Module,
        info: CheckpointInfo,
        weights_path: Path | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        device: str = "cpu",
        scales: tuple[float, ...] = (1.0,),
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise InvalidOptionError(f"defect threshold {threshold} is outside (0, 1)")
        if not scales or not all(0.0 < s <= 1.0 for s in scales):
            raise InvalidOptionError(f"detector scales {list(scales)} must lie in (0, 1]")
        # Channels-last: oneDNN's convolutions over 8-16 channels at full size run about
        # 1.6x faster in that layout than in NCHW on this CPU (benchmarks/bench_restore.py).
        self.model = model.eval().to(device, memory_format=torch.channels_last)
        self.info = info
        self.weights_path = weights_path
        self.threshold = threshold
        self.scales = tuple(scales)
        self.device = torch.device(device)

    @classmethod
    def load(
        cls,
        weights: Path | None = None,
        threshold: float | None = None,
        threads: int | None = None,
        device: str = "cpu",
        scales: tuple[float, ...] | None = None,
    ) -> Restorer:
        """Load the detector (the shipped one by default) with safetensors, never pickle.

        Without `threshold` and `scales`, those the weights file was calibrated with.
        """
        if threads is not None:
            torch.set_num_threads(threads)
        path = weights or DEFAULT_DETECTOR
        model, info = load_model(path, device)
        if info.model_name != "defect-unet":
            raise InvalidOptionError(f"{path} holds a {info.model_name!r}, not a defect detector")
        chosen = threshold or info.defect_threshold or DEFAULT_THRESHOLD
        return cls(model, info, path, chosen, device, scales or info.defect_scales or (1.0,))

    @torch.inference_mode()
    def probability(self, gray: Image.Image) -> Image.Image:
        """Per-pixel damage probability of a mode "L" photo, as an "L" image (0..255): at
        each pixel the highest of the detector's answers at its scales."""
        width, height = gray.size
        shrink = max(1.0, math.sqrt(width * height / WORK_PIXELS))
        work_size = (max(1, round(width / shrink)), max(1, round(height / shrink)))
        work = gray if shrink == 1.0 else gray.resize(work_size, Image.Resampling.BILINEAR)
        out = self._probability_at(work)
        for scale in self.scales:
            size = (round(work.width * scale), round(work.height * scale))
            if scale == 1.0 or min(size) < MIN_SCALED_SIDE:
                continue
            # Area averaging, as a smaller print's scan would have it, not aliased grain.
            coarse = self._probability_at(work.resize(size, Image.Resampling.BOX))
            upsampled = torch.nn.functional.interpolate(
                coarse[None, None], size=out.shape, mode="bilinear", align_corners=False
            )[0, 0]
            torch.maximum(out, upsampled, out=out)
        as_image = Image.fromarray((out.numpy() * 255 + 0.5).astype(np.uint8))
        return as_image if shrink == 1.0 else as_image.resize(gray.size, Image.Resampling.BILINEAR)

    def _probability_at(self, work: Image.Image) -> torch.Tensor:
        """The detector's (H, W) probabilities for `work` as it is, tile by tile."""
        pixels = torch.from_numpy(np.asarray(work, dtype=np.float32) / 127.5 - 1.0)
        out = torch.empty_like(pixels)
        for top, bottom, keep_top, keep_bottom in _spans(pixels.shape[0]):
            for left, right, keep_left, keep_right in _spans(pixels.shape[1]):
                tile = pixels[top:bottom, left:right][None, None].to(
                    self.device, memory_format=torch.channels_last
                )
                probability = torch.sigmoid(self.model(tile).float())[0, 0].cpu()
                out[keep_top:keep_bottom, keep_left:keep_right] = probability[
                    keep_top - top : keep_bottom - top, keep_left - left : keep_right - left
                ]
        return out

    def detect(self, gray: Image.Image, threshold: float | None = None) -> np.ndarray:
        """The damage mask of a mode "L" photo at its full size, grown over the fringe."""
        return self.mask(self.probability(gray), threshold)

    def mask(self, probability: Image.Image, threshold: float | None = None) -> np.ndarray:
        """`probability` (from `probability()`) thresholded, grown over the fringe: one
        detection serves many thresholds (benchmarks/restore_thresholds.py)."""
        import cv2

        level = round(255 * (threshold or self.threshold))
        mask = (np.asarray(probability) >= level).astype(np.uint8)
        # Where the detector saw a shrunk copy, a defect's edge is uncertain by about the
        # shrink factor: grow the mask by it, so no fringe survives the fill.
        grow = round(math.sqrt(probability.width * probability.height / WORK_PIXELS)) - 1
        if grow < 1:
            return mask.astype(bool)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        return cv2.dilate(mask, kernel).astype(bool)

    def fill(self, gray: Image.Image, mask: np.ndarray) -> Image.Image:
        """Fill the masked pixels from their surroundings (Telea); the rest is unchanged."""
        if not mask.any():
            return gray

        pixels = np.asarray(gray)
        scale = max(1.0, math.sqrt(gray.width * gray.height / WORK_PIXELS))
        radius = max(2, round(INPAINT_RADIUS * scale))
        filled = inpaint_strips(pixels, mask.astype(np.uint8), radius, torch.get_num_threads())
        # Telea leaves unmasked pixels alone; copying them back makes that a guarantee.
        np.copyto(filled, pixels, where=~mask)
        return Image.fromarray(filled)

    def restore(
        self,
        image: Image.Image | Photo,
        threshold: float | None = None,
        tone: str = "auto",
        tone_strength: float = 1.0,
        mask: np.ndarray | None = None,
    ) -> Restoration:
        """Repair a photo: detect (or take `mask`), fill, then the tone repair.

        Args:
            image: a `Photo` or any PIL image (made upright, its alpha kept).
            threshold: damage probability above which a pixel is filled (lower: more).
            tone: "auto" (levels only if the print is faded), "on", "clahe" or "off".
            tone_strength: blend of the tone repair, 0..1.
            mask: (H, W) bool pixels to fill instead of the detector's, e.g. corrected
                by a person.
        """
        if tone not in TONE_MODES:
            raise InvalidOptionError(f"tone {tone!r} is not one of {TONE_MODES}")
        if not 0.0 <= tone_strength <= 1.0:
            raise InvalidOptionError(f"tone strength {tone_strength} is outside 0..1")
        photo = image if isinstance(image, Photo) else photo_from_image(image)
        gray = photo.gray
        if mask is None:
            mask = self.detect(gray, threshold)
        elif mask.shape != (gray.height, gray.width):
            raise InvalidOptionError(
                f"mask of {mask.shape[1]}x{mask.shape[0]} for a {gray.width}x{gray.height} photo"
            )
        repaired = self.fill(gray, mask)
        toned = repair_tone(repaired, tone, tone_strength)
        return Restoration(replace(photo, gray=toned), mask, toned is not repaired)

    def restore_file(
        self,
        src: str | Path,
        dst: str | Path,
        quality: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        threshold: float | None = None,
        tone: str = "auto",
        tone_strength: float = 1.0,
        mask_path: Path | None = None,
    ) -> Path:
        """Read `src`, repair it, write the repaired gray photo to `dst` (and its mask)."""
        src, dst = Path(src), Path(dst)
        format_name = output_format(dst)[0]
        photo = open_photo(src, max_pixels=max_pixels)
        check_fits_format(photo.gray.size, format_name, str(src))
        result = self.restore(photo, threshold, tone, tone_strength)
        if mask_path is not None:
            save_mask(result.mask, mask_path)
        return save_photo(result.photo, result.photo.gray, dst, quality)


def encode_mask(mask: np.ndarray) -> bytes:
    """The mask as PNG bytes: white where the photo was repaired."""
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def save_mask(mask: np.ndarray, path: Path) -> Path:
    """The mask as a PNG file (`encode_mask`), written whole or not at all."""
    write_atomically(path, encode_mask(mask))
    return path


def mask_path_for(output: Path) -> Path:
    """Where `--save-mask` puts an output's mask: `<name>.mask.png` beside it."""
    return output.with_name(f"{output.stem}.mask.png")


def inpaint_strips(pixels: np.ndarray, mask: np.ndarray, radius: int, workers: int) -> np.ndarray:
    """Telea's fill of `mask` (uint8, nonzero: fill) in `pixels`, on `workers` threads.

    OpenCV's inpainting is single-threaded but releases the GIL, so strips of rows that
    overlap by `STRIP_MARGIN_RADII` radii fill side by side; each keeps only its own rows.
    """
    import cv2

    height = pixels.shape[0]
    margin = STRIP_MARGIN_RADII * radius
    count = max(1, min(workers, height // (4 * margin)))
    if count == 1:
        return cv2.inpaint(pixels, mask, radius, cv2.INPAINT_TELEA)
    cuts = np.linspace(0, height, count + 1).round().astype(int)
    out = np.empty_like(pixels)

    def fill_strip(index: int) -> None:
        top, bottom = cuts[index], cuts[index + 1]
        low, high = max(0, top - margin), min(height, bottom + margin)
        if not mask[low:high].any():
            out[top:bottom] = pixels[top:bottom]
            return
        part = cv2.inpaint(pixels[low:high], mask[low:high], radius, cv2.INPAINT_TELEA)
        out[top:bottom] = part[top - low : bottom - low]

    with ThreadPoolExecutor(count) as pool:
        list(pool.map(fill_strip, range(count)))
    return out


def _spans(length: int) -> list[tuple[int, int, int, int]]:
    """Tiles along one axis: `(start, end, keep_start, keep_end)`, at most `TILE` long,
    the kept parts split evenly and each tile reaching `OVERLAP` past them, so every
    kept pixel saw context on both sides."""
    if length <= TILE:
        return [(0, length, 0, length)]
    count = math.ceil(length / (TILE - 2 * OVERLAP))
    cuts = np.linspace(0, length, count + 1).round().astype(int).tolist()
    return [
        (max(0, keep_start - OVERLAP), min(length, keep_end + OVERLAP), keep_start, keep_end)
        for keep_start, keep_end in itertools.pairwise(cuts)
    ]
