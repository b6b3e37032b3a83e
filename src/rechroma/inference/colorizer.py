"""Colorize photos of any size on the CPU with a trained generator.

The network sees a small copy of the photo's luma (short side `render_size`) and
predicts chroma at that size; `rechroma.inference.upsample` brings the chroma up to full size,
guided by the photo's own full-resolution luma, so every detail of the input survives
at its exact size. `predict` (the network) and `render` (vividness, upsampling and
merge) are separate, so a new vividness never re-runs the network.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch import nn

from rechroma.color import denormalize_ab, lab_to_rgb, normalize_l, rgb_to_lab
from rechroma.errors import InvalidOptionError
from rechroma.images import (
    DEFAULT_MAX_PIXELS,
    JpegPlanes,
    Photo,
    check_fits_format,
    open_photo,
    output_format,
    photo_from_image,
    save_photo,
)
from rechroma.inference.hint_spread import spread_hints
from rechroma.inference.hints import (
    MAX_HINTS,
    Hint,
    HintError,
    HintLike,
    as_hints,
    hint_channels,
    validate_hints,
)
from rechroma.inference.runtime import OnnxNetwork, choose_runtime, onnx_network
from rechroma.inference.upsample import (
    UPSAMPLERS,
    Workspace,
    chroma_targets,
    guided_coefficients,
    planes_image,
    upsample_apply,
    upsample_apply_420,
)
from rechroma.models.checkpoint import CheckpointInfo, file_sha256, load_generator
from rechroma.models.fuse import prepare_for_inference
from rechroma.timing import timed

if TYPE_CHECKING:
    from rechroma.inference.reference import ReferenceSet

logger = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).parent.parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "rechroma-v1.safetensors"
# Chosen by evaluating the shipped model at several sizes on photos-val, within the 60 ms
# network budget (docs/MODEL.md, "Choosing the render size").
DEFAULT_RENDER_SIZE = 128
# The network's input never exceeds this many times render_size on its long side, so a
# 20000x50 panorama is rendered at a sane size rather than 100000 pixels wide.
MAX_ASPECT = 4
# Chroma is multiplied by at most this: beyond it every colour is clipped at the gamut.
MAX_VIVIDNESS = 4.0


def render_shape(height: int, width: int, render_size: int) -> tuple[int, int]:
    """Size of the network's input: short side `render_size`, long side capped, aspect kept."""
    scale = render_size / min(height, width)
    scale = min(scale, render_size * MAX_ASPECT / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


@functools.cache
def gray_lightness_table() -> torch.Tensor:
    """L* of each of the 256 gray levels, by kornia's conversion (as `rgb_to_lab` gives
    it for r = g = b): a lookup instead of the conversion's powers at every pixel, which
    cost 7 ms a video frame at render size."""
    levels = (torch.arange(256, dtype=torch.float32) / 255.0).view(1, 1, 256)
    return rgb_to_lab(levels.expand(3, 1, 256))[0, 0]


def check_device(device: str | torch.device) -> None:
    """Raise `InvalidOptionError` naming what is missing when `device` cannot be used."""
    kind = torch.device(device).type
    if kind == "cuda" and not torch.cuda.is_available():
        why = "is a CPU-only build" if torch.version.cuda is None else "finds no GPU"
        raise InvalidOptionError(
            f"device {str(device)!r}: CUDA is not available (PyTorch {torch.__version__} "
            f"{why}); use device='cpu'"
        )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise InvalidOptionError(f"device {str(device)!r}: Apple's MPS is not available here")


@dataclass(frozen=True)
class Prediction:
    """The network's answer for one photo; `Colorizer.render` turns it into pixels.

    Keep it to re-render at another vividness or upsampler without re-running the net.
    """

    gray: Image.Image  # the photo's full-resolution luma, mode "L"
    small_luma: torch.Tensor  # (1, h, w) the same luma at render size, in [0, 1]
    lightness: torch.Tensor  # (1, h, w) L* at render size, in [0, 100]: the net's input
    ab: torch.Tensor  # (2, h, w) predicted ab at render size, in Lab units

    @property
    def size(self) -> tuple[int, int]:
        """Full-resolution `(width, height)`."""
        return self.gray.size


class Colorizer:
    """A loaded model plus the settings to run it; build once, call for every photo."""

    def __init__(
        self,
        model: nn.Module,
        info: CheckpointInfo,
        weights_path: Path | None = None,
        render_size: int = DEFAULT_RENDER_SIZE,
        device: str | torch.device = "cpu",
        spread: bool = True,
    ) -> None:
        self.model = prepare_for_inference(model).to(device)
        # Spread each hint's colour over its region after the network (`hint_spread`).
        self.spread = spread
        self.info = info
        self.weights_path = weights_path
        self.render_size = render_size
        self.device = torch.device(device)
        self._sha256: str | None = None
        # What runs the network on photos without hints: the module itself, or the same
        # graph on ONNX Runtime (`use_onnx`).
        self.network: nn.Module | OnnxNetwork = self.model
        # Buffers and threads of the full-resolution pass, one set per rendering thread.
        self._workspaces = threading.local()

    def _workspace(self) -> Workspace:
        workspace = getattr(self._workspaces, "workspace", None)
        if workspace is None or workspace.threads != torch.get_num_threads():
            workspace = Workspace(torch.get_num_threads())
            self._workspaces.workspace = workspace
        return workspace

    @classmethod
    def load(
        cls,
        weights: Path | None = None,
        render_size: int | None = None,
        threads: int | None = None,
        device: str = "cpu",
        runtime: str = "auto",
    ) -> Colorizer:
        """Load weights (the shipped model by default) with safetensors, never pickle.

        `render_size` None means `DEFAULT_RENDER_SIZE`; `threads` None keeps PyTorch's.
        `runtime`: "onnx" runs the network on ONNX Runtime (`rechroma.inference.runtime`),
        "torch" on PyTorch; "auto" takes ONNX Runtime on a CPU when it can be had and
        PyTorch otherwise.
        """
        if threads is not None:
            torch.set_num_threads(threads)
        check_device(device)
        chosen = choose_runtime(runtime, torch.device(device))
        path = weights or DEFAULT_WEIGHTS
        model, info = load_generator(path, device)
        colorizer = cls(model, info, path, render_size or DEFAULT_RENDER_SIZE, device)
        if chosen == "onnx":
            colorizer.use_onnx(required=runtime == "onnx")
        return colorizer

    def use_onnx(self, required: bool = True, cache_dir: Path | None = None) -> bool:
        """Run the network on ONNX Runtime from now on (photos with hints stay on PyTorch).

        Returns whether it does. When it cannot (onnxruntime missing, no weights file to
        export, the cache not writable): raise `InvalidOptionError` if `required`, else say
        why in the log and stay on PyTorch.
        """
        try:
            if self.weights_path is None or self.weights_sha256 is None:
                raise ValueError("the model was not loaded from a weights file")
            self.network = onnx_network(
                self.model,
                self.weights_path,
                self.weights_sha256,
                torch.get_num_threads(),
                cache_dir,
            )
        except (ImportError, OSError, ValueError, RuntimeError) as exc:
            if required:
                raise InvalidOptionError(f"runtime 'onnx' is not available: {exc}") from exc
            logger.info("the network runs on PyTorch: ONNX Runtime is not available (%s)", exc)
            return False
        return True

    @property
    def runtime(self) -> str:
        """What runs the network on photos without hints: "onnx" or "torch"."""
        return "onnx" if isinstance(self.network, OnnxNetwork) else "torch"

    @property
    def takes_hints(self) -> bool:
        """Whether the model reads colour hints (lite0-unet does; v0's U-Net does not)."""
        return bool(getattr(self.model, "takes_hints", False))

    @property
    def chroma_gain(self) -> float:
        """The weights' calibrated default vividness, applied to every automatic
        prediction: vividness 1 is the colour chosen on a validation split."""
        return self.info.chroma_gain

    @property
    def weights_sha256(self) -> str | None:
        """SHA-256 of the weights file, computed once on first use."""
        if self._sha256 is None and self.weights_path is not None:
            self._sha256 = file_sha256(self.weights_path)
        return self._sha256

    @torch.inference_mode()
    def predict(
        self,
        image: Image.Image | Photo,
        render_size: int | None = None,
        timings: dict[str, float] | None = None,
        hints: Sequence[HintLike] = (),
        prepared: tuple[Image.Image, torch.Tensor, torch.Tensor] | None = None,
        reference: ReferenceSet | None = None,
    ) -> Prediction:
        """Run the network on a photo (colour input counts as its luma).

        Args:
            image: a decoded `Photo` or any PIL image.
            render_size: short side the network sees; the instance default when None.
            timings: when given, seconds per stage ("downscale", "network") are added to it.
            hints: known colours at points of the photo (`rechroma.inference.hints`);
                none is exactly the automatic colouring.
            prepared: `prepare`'s answer for this image and render size, if already made.
            reference: reference photos (`rechroma.inference.reference`): their colours,
                matched to this photo, join `hints` (the person's hints win where both
                fall), at the set's strength.
        """
        hints = as_hints(hints)
        if (hints or reference) and not self.takes_hints:
            raise HintError(f"model {self.info.model_name!r} does not take colour hints")
        gray, small_luma, lightness = prepared or self.prepare(image, render_size, timings)
        if hints:
            validate_hints(hints, gray.width, gray.height)
        if reference is not None:
            return self._predict_with_reference(
                gray, small_luma, lightness, hints, reference, timings
            )
        with timed(timings, "network"):
            ab = self._ab(gray, lightness, hints)
        return Prediction(gray=gray, small_luma=small_luma, lightness=lightness, ab=ab)

    def _ab(
        self,
        gray: Image.Image,
        lightness: torch.Tensor,
        hints: Sequence[Hint],
    ) -> torch.Tensor:
        """The network's `(2, h, w)` ab for `lightness` with `hints` (spread over their
        regions: `spread_hints`)."""
        small_h, small_w = lightness.shape[-2:]
        l_norm = normalize_l(lightness)[None].to(self.device)
        if hints:
            channels = hint_channels(hints, gray.size, (small_h, small_w))
            ab_norm = self.model(l_norm, channels[None].to(self.device))
        else:
            ab_norm = self.network(l_norm)
        ab = denormalize_ab(ab_norm.float().cpu()[0])
        # Hints fix colours at their points, so the gain calibrating the automatic
        # colour would only pull the answer away from them.
        if not hints and self.chroma_gain != 1.0:
            ab = ab * self.chroma_gain
        if hints and self.spread:
            ab = spread_hints(ab, lightness, hints, gray.size)
        return ab

    def _predict_with_reference(
        self,
        gray: Image.Image,
        small_luma: torch.Tensor,
        lightness: torch.Tensor,
        hints: tuple[Hint, ...],
        reference: ReferenceSet,
        timings: dict[str, float] | None,
    ) -> Prediction:
        """`predict` with the references' matches as hints, blended with the automatic
        colour by the set's strength (or its global transfer where nothing matched)."""
        from rechroma.inference.reference import global_transfer

        with timed(timings, "reference"):
            matched = reference.hints_for(self, gray)[: MAX_HINTS - len(hints)]
        # The person's hints come last: they win where both fall.
        with timed(timings, "network"):
            guided = self._ab(gray, lightness, (*matched, *hints)) if matched or hints else None
            if guided is not None and reference.strength == 1.0:
                ab = guided
            else:
                automatic = self._ab(gray, lightness, ())
                if guided is None and reference.fallback == "global":
                    guided = global_transfer(automatic, reference.references)
                if guided is None:
                    ab = automatic
                else:
                    ab = automatic + reference.strength * (guided - automatic)
        return Prediction(gray=gray, small_luma=small_luma, lightness=lightness, ab=ab)

    @torch.inference_mode()
    def prepare(
        self,
        image: Image.Image | Photo,
        render_size: int | None = None,
        timings: dict[str, float] | None = None,
    ) -> tuple[Image.Image, torch.Tensor, torch.Tensor]:
        """What the network sees of a photo, without running it: the full-size gray,
        `(1, h, w)` luma in [0, 1] at render size and its L* (video reuses colour on it)."""
        gray = (image if isinstance(image, Photo) else photo_from_image(image)).gray
        size = render_size or self.render_size
        if not 16 <= size <= 2048:
            raise InvalidOptionError(f"render size {size} is outside 16..2048 pixels")
        with timed(timings, "downscale"):
            small_h, small_w = render_shape(gray.height, gray.width, size)
            # Pillow's antialiased resize in C: reading 12 MP as floats would cost more
            # than the network itself.
            small = gray.resize((small_w, small_h), Image.Resampling.BILINEAR, reducing_gap=3.0)
            levels = torch.frombuffer(bytearray(small.tobytes()), dtype=torch.uint8)
            levels = levels.view(1, small_h, small_w).long()
            small_luma = levels.float() / 255.0
            lightness = gray_lightness_table()[levels]
        return gray, small_luma, lightness

    @torch.inference_mode()
    def render(
        self,
        prediction: Prediction,
        vividness: float = 1.0,
        upsampler: str = "guided",
        timings: dict[str, float] | None = None,
        mode: str = "RGB",
    ) -> Image.Image:
        """Turn a prediction into a full-resolution RGB (or YCbCr) image.

        Args:
            prediction: from `predict`.
            vividness: chroma multiplier (0 = gray, 1 = as predicted), clamped to the gamut.
            upsampler: "guided" (colour follows the photo's edges) or "bilinear".
            timings: when given, seconds per stage ("guided fit", "upsample+merge+cast",
                "wrap") are added to it.
            mode: "RGB" or "YCbCr" (full-range, as JPEG stores it).
        """
        if mode not in ("RGB", "YCbCr"):
            raise InvalidOptionError(f"mode {mode!r} is not 'RGB' or 'YCbCr'")
        planes = self.render_planes(prediction, vividness, upsampler, timings, mode.lower())
        with timed(timings, "wrap"):
            return planes_image(planes, mode)

    @torch.inference_mode()
    def render_planes(
        self,
        prediction: Prediction,
        vividness: float = 1.0,
        upsampler: str = "guided",
        timings: dict[str, float] | None = None,
        space: str = "rgb",
    ) -> np.ndarray:
        """`render` without the Pillow image: `(3, H, W)` uint8 planes in `space` ("rgb" or
        "ycbcr"), for callers that take planes (video). They are reused by this thread's
        next render: copy them or hand them on before that."""
        if space not in ("rgb", "ycbcr"):
            raise InvalidOptionError(f"space {space!r} is not 'rgb' or 'ycbcr'")
        slope, offset = self._coefficients(prediction, vividness, upsampler, timings)
        return upsample_apply(
            prediction.gray, slope, offset, timings, self._workspace(), space=space
        )

    @torch.inference_mode()
    def render_jpeg_planes(
        self,
        prediction: Prediction,
        vividness: float = 1.0,
        upsampler: str = "guided",
        timings: dict[str, float] | None = None,
    ) -> JpegPlanes:
        """`render` for a JPEG: full-size Y' and Cb, Cr at half size each way (4:2:0, as
        the encoder stores them), for `encode_photo`. Reused by this thread's next render,
        like `render_planes`'."""
        slope, offset = self._coefficients(prediction, vividness, upsampler, timings)
        return upsample_apply_420(prediction.gray, slope, offset, timings, self._workspace())

    def _coefficients(
        self,
        prediction: Prediction,
        vividness: float,
        upsampler: str,
        timings: dict[str, float] | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A and b of dY, Cb, Cr at render size, the local models the full-size pass
        applies to the photo's luma."""
        if not 0.0 <= vividness <= MAX_VIVIDNESS:
            raise InvalidOptionError(f"vividness {vividness} is outside 0..{MAX_VIVIDNESS:g}")
        if upsampler not in UPSAMPLERS:
            raise InvalidOptionError(f"upsampler {upsampler!r} is not one of {UPSAMPLERS}")
        with timed(timings, "guided fit"):
            lab = torch.cat([prediction.lightness, prediction.ab * vividness], dim=0)
            # Clipping in RGB at render size is the gamut clamp: it happens once, small.
            small_rgb = lab_to_rgb(lab, clip=True)
            targets = chroma_targets(small_rgb, prediction.small_luma)
            if upsampler == "guided":
                slope, offset = guided_coefficients(prediction.small_luma, targets)
                return slope / 255.0, offset  # fitted against Y in [0, 1], applied to 0..255
            return torch.zeros_like(targets), targets

    def colorize(
        self,
        image: Image.Image | Photo,
        render_size: int | None = None,
        vividness: float = 1.0,
        upsampler: str = "guided",
        hints: Sequence[HintLike] = (),
        reference: ReferenceSet | None = None,
    ) -> Image.Image:
        """Colorize an image (colour input counts as its luma): RGB out, or RGBA when the
        input has transparency, upright (EXIF orientation applied), the same size.
        `reference`: reference photos whose matched colours guide it (`predict`)."""
        photo = image if isinstance(image, Photo) else photo_from_image(image)
        prediction = self.predict(photo, render_size, hints=hints, reference=reference)
        result = self.render(prediction, vividness, upsampler)
        if photo.alpha is not None:
            result.putalpha(photo.alpha)
        return result

    def colorize_photo(
        self,
        photo: Photo,
        render_size: int | None = None,
        vividness: float = 1.0,
        timings: dict[str, float] | None = None,
        hints: Sequence[HintLike] = (),
        format_name: str | None = None,
        reference: ReferenceSet | None = None,
    ) -> Image.Image | JpegPlanes:
        """Colorize a decoded photo about to be written in `format_name` by `save_photo` or
        `encode_photo` (which put its alpha back), with seconds per stage added to
        `timings` when given. Encode the answer before this thread's next photo: a JPEG's
        planes are reused for it.

        A JPEG gets its own planes (`render_jpeg_planes`): the chroma at the size the
        encoder stores it, a quarter of the full-size pixels, and no colour conversion
        left for the encoder (docs/BENCHMARKS.md). Every other format gets RGB.
        """
        prediction = self.predict(photo, render_size, timings, hints, reference=reference)
        if format_name == "JPEG":
            return self.render_jpeg_planes(prediction, vividness, timings=timings)
        return self.render(prediction, vividness, timings=timings)

    def colorize_file(
        self,
        src: str | Path,
        dst: str | Path,
        render_size: int | None = None,
        quality: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        vividness: float = 1.0,
        hints: Sequence[HintLike] = (),
        reference: ReferenceSet | None = None,
    ) -> Path:
        """Read `src`, colorize it, write `dst` in the format its extension names."""
        src, dst = Path(src), Path(dst)
        format_name = output_format(dst)[0]  # an unwritable extension fails before the work
        photo = open_photo(src, max_pixels=max_pixels)
        check_fits_format(photo.gray.size, format_name, str(src))
        result = self.colorize_photo(
            photo, render_size, vividness, hints=hints, format_name=format_name, reference=reference
        )
        return save_photo(photo, result, dst, quality)
