"""Keep a video's colours still where its picture is still.

A colorizer run frame by frame guesses each frame's colour afresh, and on things that
do not move the guess wobbles: that is the flicker people complain about in colorized
film. `ChromaStabilizer` works at render size, on the network's output, before the
guided upsampling:

1. The camera's motion between two frames is estimated as a global shift by phase
   correlation of their luma (pans and tilts, the common motion of old film).
2. The previous frame's stabilised chroma is carried along that shift.
3. Each pixel blends it with the new prediction, trusting the carried colour only where
   the carried luma matches the new luma: where something moved, appeared or was
   uncovered, the new prediction wins. A scene cut (most of the frame changed) starts over.

The blend keeps chroma magnitude (a running mean of two hues would fade towards gray),
so stability is not bought by removing colour.

On a steady shot the network need not run on every frame: `carry` moves the last
stabilised colour along the motion to the new frame when the frame shows the same
picture (little change of luma once the shift is undone, almost all of it covered), and
says when it does not (a cut, something moving, a fast pan), so the network runs there.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from kornia.filters import box_blur
from torch.nn import functional as F

# L* difference (0..100) at which the carried colour's weight has fallen to 1/e: film
# grain (a few L*) keeps most of the weight, a real change of content loses it.
LUMA_SIGMA = 8.0
# Mean L* difference, after motion compensation, above which the frame is a new shot.
SCENE_CUT = 14.0
# Below this fraction of the frame still covered after the shift, start over too.
MIN_OVERLAP = 0.5
# `carry` reuses the colour only when the frame is this close to the last: a mean L*
# change (after the shift, over 3x3) within grain, at most this share of the covered
# pixels changed by more than LUMA_SIGMA (something moved), and almost all covered.
REUSE_CHANGE = 3.0
REUSE_MOVED = 0.01
REUSE_OVERLAP = 0.97


@dataclass
class _State:
    lightness: torch.Tensor  # (1, h, w) L* of the previous frame
    ab: torch.Tensor  # (2, h, w) its stabilised ab


class ChromaStabilizer:
    """Blend each frame's predicted chroma with the previous frame's, carried along the motion.

    Args:
        strength: weight of the carried colour where nothing changed, in [0, 1). 0 turns
            stabilisation off (every frame as a photo); 0.8 averages about nine frames.
    """

    def __init__(self, strength: float = 0.8) -> None:
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"stabilisation strength {strength} is outside [0, 1)")
        self.strength = strength
        self.cuts = 0
        self.carried = 0  # frames given carried colour, in all
        self.carried_in_a_row = 0  # since the network last ran
        self._state: _State | None = None

    def reset(self) -> None:
        """Forget the previous frame (a new clip or a seek)."""
        self._state = None

    @torch.inference_mode()
    def __call__(self, lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """Stabilise one frame.

        Args:
            lightness: `(1, h, w)` the frame's L* at render size, in [0, 100].
            ab: `(2, h, w)` the network's ab for it, in Lab units.

        Returns:
            `(2, h, w)` stabilised ab, in Lab units.
        """
        state = self._state
        if self.strength == 0.0 or state is None or state.lightness.shape != lightness.shape:
            out = ab
        else:
            shift = phase_shift(state.lightness[0], lightness[0])
            carried = shift_image(
                torch.cat([state.lightness, state.ab, torch.ones_like(lightness)]), shift
            )
            carried_l, carried_ab, covered = carried[:1], carried[1:3], carried[3:]
            covered = (covered > 0.999).float()
            # Averaged over 3x3 so that grain does not decide pixel by pixel.
            change = box_blur((lightness - carried_l).abs()[None], 3)[0]
            overlap = float(covered.mean())
            mean_change = float((change * covered).sum() / covered.sum().clamp_min(1.0))
            if overlap < MIN_OVERLAP or mean_change > SCENE_CUT:
                self.cuts += 1
                out = ab
            else:
                weight = self.strength * torch.exp(-((change / LUMA_SIGMA) ** 2)) * covered
                out = blend_chroma(carried_ab, ab, weight)
        self._state = _State(lightness.clone(), out.clone())
        self.carried_in_a_row = 0
        return out

    @torch.inference_mode()
    def carry(self, lightness: torch.Tensor) -> torch.Tensor | None:
        """The last frame's stabilised ab, moved along the motion onto this frame's
        `(1, h, w)` L*, when this frame shows the same picture; None when the network
        should run on it instead (and then `__call__` it)."""
        state = self._state
        if self.strength == 0.0 or state is None or state.lightness.shape != lightness.shape:
            return None
        shift = phase_shift(state.lightness[0], lightness[0])
        carried = shift_image(torch.cat([state.lightness, torch.ones_like(lightness)]), shift)
        covered = carried[1:] > 0.999
        if float(covered.float().mean()) < REUSE_OVERLAP:
            return None
        change = box_blur((lightness - carried[:1]).abs()[None], 3)[0][covered]
        if float(change.mean()) > REUSE_CHANGE or float((change > LUMA_SIGMA).float().mean()) > (
            REUSE_MOVED
        ):
            return None
        # The thin band the shift uncovered takes its neighbours' colour until the
        # network runs again (within a few frames).
        ab = shift_image(state.ab, shift, padding="border")
        self._state = _State(lightness.clone(), ab.clone())
        self.carried += 1
        self.carried_in_a_row += 1
        return ab


def blend_chroma(previous: torch.Tensor, new: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """`weight * previous + (1 - weight) * new` in ab, with the blended magnitude of chroma.

    Args:
        previous, new: `(2, h, w)` ab in Lab units.
        weight: `(1, h, w)` weight of `previous`, in [0, 1].
    """
    mixed = torch.lerp(new, previous, weight)
    magnitude = torch.lerp(_chroma(new), _chroma(previous), weight)
    return mixed * (magnitude / _chroma(mixed).clamp_min(1e-3))


def _chroma(ab: torch.Tensor) -> torch.Tensor:
    """`(2, h, w)` -> `(1, h, w)` sqrt(a^2 + b^2); hypot is 10x faster here than norm(dim=0)."""
    return torch.hypot(ab[0], ab[1])[None]


@functools.lru_cache(maxsize=8)
def _hann_window(height: int, width: int) -> torch.Tensor:
    """The 2-D Hann window of `phase_shift`, made once per frame size (a 720p film's
    frames all share one; making it took 1.6 ms a frame)."""
    return torch.outer(
        torch.hann_window(height, periodic=False), torch.hann_window(width, periodic=False)
    )


def phase_shift(previous: torch.Tensor, current: torch.Tensor) -> tuple[float, float]:
    """The `(dy, dx)` by which `current` is `previous` moved, to a tenth of a pixel or so.

    Phase correlation (Kuglin and Hines 1975) with a Hann window and a parabolic fit of
    the peak. scikit-image's `phase_cross_correlation` does the same but is not a runtime
    dependency, and this works on the tensors the network already made.

    Args:
        previous, current: `(h, w)` luma of two frames, any scale.
    """
    height, width = current.shape
    window = _hann_window(height, width)
    a = torch.fft.rfft2((previous - previous.mean()) * window)
    b = torch.fft.rfft2((current - current.mean()) * window)
    cross = b * a.conj()
    surface = torch.fft.irfft2(cross / cross.abs().clamp_min(1e-8), s=(height, width))
    peak = int(surface.argmax())
    py, px = divmod(peak, width)

    def refine(minus: float, centre: float, plus: float) -> float:
        denominator = minus - 2 * centre + plus
        return 0.0 if denominator >= 0 else 0.5 * (minus - plus) / denominator

    dy = py + refine(
        float(surface[(py - 1) % height, px]),
        float(surface[py, px]),
        float(surface[(py + 1) % height, px]),
    )
    dx = px + refine(
        float(surface[py, (px - 1) % width]),
        float(surface[py, px]),
        float(surface[py, (px + 1) % width]),
    )
    # The surface wraps around: shifts past half the frame are negative.
    dy = dy - height if dy > height / 2 else dy
    dx = dx - width if dx > width / 2 else dx
    return dy, dx


def shift_image(
    image: torch.Tensor, shift: tuple[float, float], padding: str = "zeros"
) -> torch.Tensor:
    """Move `(C, h, w)` by `(dy, dx)` pixels, bilinearly; uncovered pixels become 0
    (`padding="border"`: the nearest edge pixel's value)."""
    channels, height, width = image.shape
    dy, dx = shift
    ys = torch.arange(height, dtype=image.dtype) - dy
    xs = torch.arange(width, dtype=image.dtype) - dx
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    # grid_sample's coordinates: -1 and 1 are the centres of the corner pixels.
    grid = torch.stack(
        [grid_x * 2 / max(width - 1, 1) - 1, grid_y * 2 / max(height - 1, 1) - 1], dim=-1
    )
    return F.grid_sample(
        image[None], grid[None], mode="bilinear", padding_mode=padding, align_corners=True
    )[0]
