"""Bring low-resolution chroma up to a photo's full size without bleeding across edges.

The network predicts colour at a few hundred pixels; the photo may have 60 million.
Upsampling runs in the photo's own YCbCr space, guided by its full-resolution luma Y,
and in horizontal strips, so memory stays bounded and nothing at full resolution is
ever held as float Lab:

1. At render size, the prediction becomes three channels: Cb, Cr and dY, the luma
   change that keeps the predicted colour as light as the gray input (a saturated red
   is darker in luma than a gray of the same lightness L*).
2. A guided filter (He et al., "Guided Image Filtering", and its fast variant, He and
   Sun 2015) fits, per low-resolution pixel, a local linear model `channel = A * Y + b`.
3. For each strip of rows, A and b are upsampled bilinearly and applied to the strip's
   own full-resolution Y. Chroma edges then follow luma edges at full resolution.

Bilinear upsampling is the same code with A = 0.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from kornia.color import rgb_to_ycbcr, ycbcr_to_rgb
from kornia.filters import box_blur
from PIL import Image

from rechroma.images import JpegPlanes
from rechroma.timing import timed

UPSAMPLERS = ("guided", "bilinear")
# Window radius, in render-size pixels, over which each local model is fitted: small
# enough to follow object boundaries, large enough to average out the net's own noise.
GUIDE_RADIUS = 2
# Regularizes A: luma variations below about sqrt(eps) (in [0, 1] units) count as
# texture, not edges, so film grain and JPEG noise do not turn into colour noise.
GUIDE_EPS = 2e-3
# Pixels per block of the full-resolution pass, at most: its three float32 temporaries
# stay in cache (32 K-pixel blocks measured 10% slower at 12 MP from the per-call
# overhead, 4-megapixel strips 3-4x slower).
BLOCK_PIXELS = 131_072
# Output planes up to this many pixels are kept for the next photo; a larger photo's are
# freed with it, so one 60 MP scan does not hold 180 MB for the life of a server.
KEEP_PIXELS = 24_000_000


def chroma_targets(small_rgb: torch.Tensor, small_luma: torch.Tensor) -> torch.Tensor:
    """The low-resolution channels to upsample: dY, Cb, Cr, all in 0..255 units.

    Args:
        small_rgb: `(3, h, w)` predicted colour at render size, sRGB in [0, 1] (in gamut).
        small_luma: `(1, h, w)` the gray input's luma at the same size, in [0, 1].

    Returns:
        `(3, h, w)`: dY (luma of the colour minus the input's), Cb - 128 and Cr - 128.
    """
    ycbcr = rgb_to_ycbcr(small_rgb)
    delta_y = ycbcr[:1] - small_luma
    return torch.cat([delta_y, ycbcr[1:] - 0.5], dim=0) * 255.0


def guided_coefficients(
    guide: torch.Tensor,
    target: torch.Tensor,
    radius: int = GUIDE_RADIUS,
    eps: float = GUIDE_EPS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit `target ~ A * guide + b` in every window of a guided filter.

    kornia's `guided_blur` does the same fit but takes the target at the guide's full
    resolution and returns the filtered image, never A and b; we have the target only
    at render size and must apply A and b strip by strip, so the fit is written out
    here with kornia's box filter.

    Args:
        guide: `(1, h, w)` luma in [0, 1].
        target: `(C, h, w)` channels to upsample, any units.
        radius: window radius in pixels.
        eps: regularization of A, in guide units squared.

    Returns:
        `(A, b)`, each `(C, h, w)`, already averaged over overlapping windows.
    """
    kernel = 2 * radius + 1

    def mean(x: torch.Tensor) -> torch.Tensor:
        return box_blur(x[None], (kernel, kernel), border_type="replicate")[0]

    mean_i = mean(guide)
    mean_p = mean(target)
    var_i = mean(guide * guide) - mean_i * mean_i
    cov_ip = mean(guide * target) - mean_i * mean_p
    slope = cov_ip / (var_i.clamp_min(0) + eps)
    offset = mean_p - slope * mean_i
    return mean(slope), mean(offset)


def _sample_weights(
    positions: torch.Tensor, small: int, full: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower source index and weight of the next one, as bilinear `F.interpolate` has them,
    for output samples at `positions` in full-resolution pixel units (pixel y's centre is
    y; a 4:2:0 chroma sample between pixels 2i and 2i + 1 is 2i + 0.5).

    `align_corners=False`: position y samples input row (y + 0.5) * small / full - 0.5,
    clamped at 0, between its floor and the next row (the last row past the end).
    """
    source = ((positions + 0.5) * (small / full) - 0.5).clamp_min(0)
    lower = source.floor().long().clamp_max(small - 1)
    return lower, source - lower


def _widen(maps: torch.Tensor, positions: torch.Tensor, full: int) -> np.ndarray:
    """`(C, h, w)` maps sampled bilinearly along their width at `positions` of a
    `full`-pixel-wide photo: `(C, h, len(positions))` float32."""
    small = maps.shape[-1]
    lower, weight = _sample_weights(positions, small, full)
    upper = (lower + 1).clamp_max(small - 1)
    # NumPy's take and in-place arithmetic: the same values as PyTorch's indexing and
    # arithmetic, in half the time (4 against 8 ms a 720p frame), with no temporaries.
    maps = maps.float().numpy()
    left = np.take(maps, lower.numpy(), axis=-1)
    right = np.take(maps, upper.numpy(), axis=-1)
    right -= left
    right *= weight.float().numpy()
    right += left
    return right


def _chroma_positions(full: int) -> torch.Tensor:
    """Where 4:2:0 chroma samples sit along a side of `full` pixels: between the two
    pixels each covers, or on the last pixel of an odd side (which JPEG pads by copying
    it)."""
    return (torch.arange((full + 1) // 2) * 2 + 0.5).clamp_max(full - 1)


@functools.cache
def _ycbcr_to_rgb_matrix() -> torch.Tensor:
    """The linear part of kornia's YCbCr -> RGB (the inverse of `chroma_targets`'s
    conversion), as a `(3, 3)` matrix acting on (Y, Cb - 0.5, Cr - 0.5)."""
    # Small steps from mid-gray, so that no channel leaves [0, 1] (kornia clips there).
    gray, step = torch.full((1, 3, 1, 1), 0.5), 0.1
    basis = gray + step * torch.eye(3).view(3, 3, 1, 1)
    return ((ycbcr_to_rgb(basis) - ycbcr_to_rgb(gray)) / step)[:, :, 0, 0].T


def _output_coefficients(slope: torch.Tensor, offset: torch.Tensor, space: str) -> torch.Tensor:
    """A and b of dY, Cb, Cr -> `(6, h, w)` A and b of the output planes in `space`, with
    what the uint8 cast needs (which truncates) added: +0.5 on every offset to round, and
    +128 on stored Cb, Cr. Done at render size: the maps are then widened and blended
    linearly (weights summing to 1), which commutes with this affine change."""
    slope, offset = slope.float().clone(), offset.float()
    slope[0] += 1.0  # dY is a change of the input's own luma: Y' = (1 + A) * Y + b
    if space == "rgb":
        matrix = _ycbcr_to_rgb_matrix()
        slope = torch.einsum("ij,jhw->ihw", matrix, slope)
        offset = torch.einsum("ij,jhw->ihw", matrix, offset) + 0.5
    elif space == "ycbcr":
        offset = offset + torch.tensor([0.5, 128.5, 128.5]).view(3, 1, 1)
    else:
        raise ValueError(f"space {space!r} is not 'ycbcr' or 'rgb'")
    return torch.cat([slope, offset], dim=0)


class Workspace:
    """What the full-resolution pass keeps from photo to photo: its output planes and
    scratch buffers (fresh 36 MB buffers per 12 MP photo cost more in first-touch page
    faults than the arithmetic) and its threads. One per thread that renders.
    """

    def __init__(self, threads: int = 1) -> None:
        self.threads = max(1, threads)
        self._planes = np.empty(0, dtype=np.uint8)
        self._scratch: list[np.ndarray] = []
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0  # a forked child has none of its parent's pool threads

    def planes(self, height: int, width: int) -> np.ndarray:
        """`(3, height, width)` uint8, contiguous per plane; reused up to KEEP_PIXELS."""
        return self.buffer(3 * height * width).reshape(3, height, width)

    def buffer(self, size: int) -> np.ndarray:
        """`size` uint8, reused from photo to photo while it holds at most 3 * KEEP_PIXELS."""
        if size > self._planes.size:
            buffer = np.empty(size, dtype=np.uint8)
            if size > 3 * KEEP_PIXELS:
                return buffer  # a one-off: not kept for later
            self._planes = buffer
        return self._planes[:size]

    def scratch(self, worker: int, row: int = 0) -> np.ndarray:
        """`(4, BLOCK_PIXELS)` float32 for one worker thread: Y, coefficient, value and
        a gathered coefficient row; wider for a `row` of more pixels than a block (a
        panorama strip), then a one-off that is not kept."""
        while len(self._scratch) <= worker:
            self._scratch.append(np.empty((4, BLOCK_PIXELS), dtype=np.float32))
        if row > BLOCK_PIXELS:
            return np.empty((4, row), dtype=np.float32)
        return self._scratch[worker]

    def run(self, task: Callable[[int], None]) -> None:
        """Run `task(worker)` on every worker thread (this one included) and wait."""
        if self.threads == 1:
            task(0)
            return
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="rechroma")
            self._pool_pid = os.getpid()
        others = [self._pool.submit(task, worker) for worker in range(1, self.threads)]
        task(0)
        for future in others:
            future.result()


def upsample_apply(
    gray: Image.Image,
    slope: torch.Tensor,
    offset: torch.Tensor,
    timings: dict[str, float] | None = None,
    workspace: Workspace | None = None,
    space: str = "ycbcr",
) -> np.ndarray:
    """Apply bilinearly upsampled `A * Y + b` to the full-resolution luma, in one pass.

    The upsampling, the merge, the clamp and the cast to uint8 are fused per block of
    rows that share one pair of low-resolution rows (so their coefficients are two
    widened rows and a weight per row), in float32 temporaries that stay in cache. The
    blocks are shared out dynamically between the workspace's threads (NumPy releases
    the GIL): when another process holds a core, the thread that still runs takes the
    blocks, where a fixed split (or PyTorch's per-operation parallelism) waits for it.

    Args:
        gray: the photo's full-resolution luma, mode "L".
        slope: `(3, h, w)` A for dY, Cb, Cr (0..255 units per unit of Y in [0, 255]).
        offset: `(3, h, w)` b, same units.
        timings: when given, the pass's seconds are added under "upsample+merge+cast".
        workspace: buffers and threads to reuse; a one-thread one-off when None.
        space: "ycbcr" for Y, Cb, Cr planes, or "rgb" for R, G, B: the conversion is
            linear, so it is applied to A and b at low resolution and costs nothing here.

    Returns:
        `(3, H, W)` uint8 planes in `space`. They belong to the workspace, which reuses
        them for its next photo: hand them to Pillow (which copies) before then.
    """
    workspace = workspace or Workspace()
    width, height = gray.size
    with timed(timings, "upsample+merge+cast"):
        planes = workspace.planes(height, width)
        coefficients = _output_coefficients(slope, offset, space)
        wide = _widen(coefficients, torch.arange(width), width)  # (6, h, W): A then b
        _fused_pass(np.asarray(gray), list(planes), wide, torch.arange(height), height, workspace)
    return planes


def upsample_apply_420(
    gray: Image.Image,
    slope: torch.Tensor,
    offset: torch.Tensor,
    timings: dict[str, float] | None = None,
    workspace: Workspace | None = None,
) -> JpegPlanes:
    """`upsample_apply` in YCbCr, with Cb and Cr made at half size each way (4:2:0).

    A JPEG encoder would average the full-size chroma over 2x2 pixels anyway (4:2:0 is
    libjpeg's default, and Pillow's); made at that size, the chroma costs a quarter of
    the pixels. A and b vary smoothly over 2 pixels, so the average of A * Y + b over a
    2x2 block is A * (the block's mean Y) + b at its centre: the mean comes from Pillow's
    `reduce(2)` and A, b are sampled at the chroma sample positions.

    Returns:
        Full-size Y' and half-size Cb, Cr in one `JpegPlanes`; they belong to the
        workspace, like `upsample_apply`'s: encode them before its next photo.
    """
    workspace = workspace or Workspace()
    width, height = gray.size
    half_w, half_h = (width + 1) // 2, (height + 1) // 2
    with timed(timings, "upsample+merge+cast"):
        buffer = workspace.buffer(height * width + 2 * half_h * half_w)
        luma_plane = buffer[: height * width].reshape(height, width)
        chroma = buffer[height * width :].reshape(2, half_h, half_w)
        coefficients = _output_coefficients(slope, offset, "ycbcr")
        luma_maps = coefficients[[0, 3]]  # A and b of Y'
        chroma_maps = coefficients[[1, 2, 4, 5]]  # A of Cb, Cr, then b of Cb, Cr
        wide = _widen(luma_maps, torch.arange(width), width)
        _fused_pass(np.asarray(gray), [luma_plane], wide, torch.arange(height), height, workspace)
        block_means = np.asarray(gray.reduce(2))  # (half_h, half_w): a partial edge block
        wide = _widen(chroma_maps, _chroma_positions(width), width)  # averages what it has
        _fused_pass(block_means, list(chroma), wide, _chroma_positions(height), height, workspace)
    return JpegPlanes(luma_plane, chroma[0], chroma[1])


def _fused_pass(
    luma: np.ndarray,
    outputs: list[np.ndarray],
    wide: np.ndarray,
    row_positions: torch.Tensor,
    full_height: int,
    workspace: Workspace,
) -> None:
    """`outputs[k] = clamp(A_k * luma + b_k)` row block by row block, on the workspace's
    threads, with A_k, b_k = `wide[k]`, `wide[k + len(outputs)]` blended between two
    low-resolution rows for each output row (at `row_positions` of a `full_height` photo).
    """
    small_h = wide.shape[1]
    lower_row, row_weight = _sample_weights(row_positions, small_h, full_height)
    lower_row = lower_row.numpy()
    row_weight = row_weight.numpy().astype(np.float32)[:, None]
    width = luma.shape[1]
    blocks = list(_blocks(lower_row, max(1, BLOCK_PIXELS // max(1, width))))
    claimed = itertools.count()  # next() is atomic under the GIL

    def work(worker: int) -> None:
        scratch = workspace.scratch(worker, width)
        while (index := next(claimed)) < len(blocks):
            top, bottom = blocks[index]
            _fused_block(luma, outputs, scratch, wide, lower_row, row_weight, top, bottom)

    workspace.run(work)


def _fused_block(
    luma: np.ndarray,
    outputs: list[np.ndarray],
    scratch: np.ndarray,
    wide: np.ndarray,
    lower_row: np.ndarray,
    row_weight: np.ndarray,
    top: int,
    bottom: int,
) -> None:
    """Rows top..bottom of every output plane: clamp((base + t * step) applied to Y), with
    base the row's lower low-resolution row of `wide`, step the way to the next one (none
    after the last) and t its `row_weight`.

    One plane at a time: NumPy's calls on all three at once, as `(3, rows, W)`, measured
    50% slower at 12 MP and no faster at 1 MP.
    """
    rows, width = bottom - top, luma.shape[1]
    y, coeff, value, extra = (buffer[: rows * width].reshape(rows, width) for buffer in scratch)
    np.copyto(y, luma[top:bottom], casting="unsafe")
    weight = row_weight[top:bottom]
    first, last = int(lower_row[top]), int(lower_row[bottom - 1])
    # The low-resolution rows the block needs, and the steps from each to the next.
    base = wide[:, first : last + 1]
    step = np.zeros_like(base)
    following = min(last + 1, wide.shape[1] - 1) - first
    np.subtract(
        wide[:, first + 1 : first + 1 + following], base[:, :following], out=step[:, :following]
    )
    # Each output row's own low-resolution row within them: all the same where the photo
    # is large (one per block, broadcast), several where it is small (gathered), so that
    # a small photo's blocks are as large as a big one's and calls stay few.
    index = None if first == last else lower_row[top:bottom] - first

    def coefficients(m: int, out: np.ndarray) -> np.ndarray:
        """Map m's A or b for every pixel of the block: base + t * step."""
        if index is None:
            np.multiply(weight, step[m, 0], out=out)
            out += base[m, 0]
        else:
            np.take(step[m], index, axis=0, out=out)
            out *= weight
            np.take(base[m], index, axis=0, out=extra)
            out += extra
        return out

    count = len(outputs)
    for plane, output in enumerate(outputs):
        np.multiply(y, coefficients(plane, coeff), out=value)
        value += coefficients(plane + count, coeff)
        np.clip(value, 0, 255, out=value)
        np.copyto(output[top:bottom], value, casting="unsafe")


def _blocks(lower: np.ndarray, max_rows: int) -> Iterator[tuple[int, int]]:
    """`(top, bottom)` row ranges of at most `max_rows` rows: the runs of rows that share
    a low-resolution row, packed whole while they fit, a run longer than a block split."""
    changes = (np.flatnonzero(lower[1:] != lower[:-1]) + 1).tolist()
    top = 0
    for start, end in itertools.pairwise([0, *changes, len(lower)]):
        if end - top > max_rows and start > top:  # this run does not fit: close the block
            yield top, start
            top = start
        while end - top > max_rows:
            yield top, top + max_rows
            top += max_rows
    if top < len(lower):
        yield top, len(lower)


def planes_image(planes: np.ndarray, mode: str = "RGB") -> Image.Image:
    """`(3, H, W)` uint8 planes -> a Pillow image of `mode` ("RGB" or "YCbCr"); Pillow
    copies them, so the planes can be reused at once."""
    _, height, width = planes.shape
    bands = [Image.frombuffer("L", (width, height), plane, "raw", "L", 0, 1) for plane in planes]
    return Image.merge(mode, bands)
