"""How steady a colorized clip is: flicker, colourfulness, and a synthetic test clip.

Flicker is the mean change of chroma (|delta ab|, in Lab units) between consecutive
frames over the pixels whose lightness did not change: where the picture is still, its
colour should be too. It is measured on frames scaled down to `METRIC_SHORT_SIDE`, which
averages out film grain and JPEG-like noise that is not colour flicker.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
import torch
from PIL import Image

from rechroma.color import rgb_to_lab
from rechroma.errors import VideoReadError
from rechroma.inference.video import VideoOptions, colorize_video

if TYPE_CHECKING:
    from rechroma.inference.colorizer import Colorizer

METRIC_SHORT_SIDE = 180
# L* change (0..100) below which a pixel counts as still between two frames.
STILL_LUMA = 2.0


@dataclass(frozen=True)
class ClipStability:
    """Flicker and colour of one clip."""

    frames: int
    flicker: float  # mean |delta ab| between consecutive frames where L* stayed still
    still_fraction: float  # share of pixels that counted as still
    chroma: float  # mean chroma sqrt(a^2 + b^2) over all frames
    per_frame: tuple[float, ...] = ()  # flicker from each frame to the next


def clip_stability(path: str | Path, still_luma: float = STILL_LUMA) -> ClipStability:
    """Measure a clip's flicker and mean chroma (decoded frame by frame)."""
    previous: torch.Tensor | None = None
    series: list[float] = []
    flicker_sum = still = pixels = 0.0
    chroma_sum = 0.0
    frames = 0
    for lab in _lab_frames(Path(path)):
        chroma_sum += float(lab[1:].norm(dim=0).mean())
        if previous is not None:
            mask = (lab[0] - previous[0]).abs() < still_luma
            change = (lab[1:] - previous[1:]).norm(dim=0)
            flicker_sum += float(change[mask].sum())
            still += float(mask.sum())
            series.append(float(change[mask].mean()) if mask.any() else 0.0)
            pixels += mask.numel()
        previous = lab
        frames += 1
    if frames == 0:
        raise VideoReadError(f"{path}: has no frames that decode")
    return ClipStability(
        frames=frames,
        flicker=flicker_sum / max(still, 1.0),
        still_fraction=still / max(pixels, 1.0),
        chroma=chroma_sum / frames,
        per_frame=tuple(series),
    )


def _lab_frames(path: Path) -> Iterator[torch.Tensor]:
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                scale = METRIC_SHORT_SIDE / min(frame.width, frame.height)
                small = frame.reformat(
                    width=max(2, round(frame.width * scale)),
                    height=max(2, round(frame.height * scale)),
                    format="rgb24",
                    interpolation="AREA",
                )
                rgb = torch.from_numpy(small.to_ndarray()).permute(2, 0, 1).float() / 255.0
                yield rgb_to_lab(rgb)
    except (av.FFmpegError, IndexError) as exc:
        raise VideoReadError(f"{path.name}: not a readable video ({exc})") from exc


def compare_stabilization(
    colorizer: Colorizer,
    clip: str | Path,
    out_dir: str | Path,
    options: VideoOptions | None = None,
    progress: bool = False,
) -> dict[str, object]:
    """Colorize `clip` frame by frame and stabilised; measure both; write both clips.

    Returns:
        A JSON-able report: each variant's `ClipStability` and wall time, and the ratios
        the video bar is stated in (flicker and chroma, stabilised over per-frame).
    """
    options = options or VideoOptions()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    strength = options.stabilize if options.stabilize > 0 else VideoOptions().stabilize
    suffix = ".webm" if Path(clip).suffix.lower() == ".webm" else ".mp4"
    report: dict[str, object] = {"clip": str(clip)}
    series: dict[str, tuple[float, ...]] = {}
    for name, stabilize in (("per_frame", 0.0), ("stabilised", strength)):
        target = out_dir / f"{name}{suffix}"
        run = colorize_video(
            colorizer,
            clip,
            target,
            VideoOptions(**{**asdict(options), "stabilize": stabilize}),
            progress=progress,
        )
        stats = clip_stability(target)
        series[name] = stats.per_frame
        report[name] = {
            **{k: v for k, v in asdict(stats).items() if k != "per_frame"},
            "stabilize": stabilize,
            "seconds": round(run.seconds, 2),
            "frames_per_second": round(run.frames_per_second, 2),
        }
    per_frame, stabilised = report["per_frame"], report["stabilised"]
    report["flicker_ratio"] = stabilised["flicker"] / max(per_frame["flicker"], 1e-9)
    report["chroma_ratio"] = stabilised["chroma"] / max(per_frame["chroma"], 1e-9)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    with contextlib.suppress(ModuleNotFoundError):  # matplotlib comes with the train extra
        report["plot"] = str(plot_flicker(series, out_dir / "flicker.png"))
    return report


def plot_flicker(series: dict[str, tuple[float, ...]], out: Path) -> Path:
    """Flicker from each frame to the next, one line per variant; returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3.2), dpi=120)
    for name, values in series.items():
        axes.plot(range(1, len(values) + 1), values, label=name.replace("_", " "))
    axes.set_xlabel("frame")
    axes.set_ylabel("mean |Δab| where L* is still")
    axes.set_ylim(bottom=0)
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)
    return out


def make_pan_clip(
    photo: Image.Image,
    dst: str | Path,
    size: tuple[int, int] = (640, 360),
    seconds: float = 2.0,
    fps: int = 24,
    pan_pixels: float = 120.0,
    grain: float = 6.0,
    audio: bool = True,
    seed: int = 0,
) -> Path:
    """Write a gray test clip: a slow pan across `photo` with film grain, and a tone.

    Args:
        photo: any image; it is scaled to cover the frame plus the pan.
        size: `(width, height)` of the clip.
        pan_pixels: how far the view moves, left to right, over the clip.
        grain: standard deviation of the per-frame Gaussian grain, in 0..255 units.
        audio: add a 440 Hz AAC (MP4) or Opus (WebM) track of the same length.
    """
    dst = Path(dst)
    width, height = size
    scale = max((width + pan_pixels) / photo.width, height / photo.height)
    canvas = photo.convert("L").resize(
        (round(photo.width * scale) + 1, round(photo.height * scale) + 1), Image.Resampling.LANCZOS
    )
    rng = np.random.default_rng(seed)
    count = round(seconds * fps)
    top = (canvas.height - height) // 2
    with av.open(str(dst), "w") as container:
        video = container.add_stream("libvpx-vp9" if dst.suffix == ".webm" else "libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = None
        if audio:
            sound = container.add_stream("libopus" if dst.suffix == ".webm" else "aac", rate=48_000)
        for index in range(count):
            left = pan_pixels * index / max(count - 1, 1)
            # Sub-pixel pan: a crop box with a fractional origin, resampled.
            view = canvas.transform(
                (width, height),
                Image.Transform.AFFINE,
                (1, 0, left, 0, 1, top),
                Image.Resampling.BILINEAR,
            )
            pixels = np.asarray(view, dtype=np.float32) + rng.normal(0, grain, (height, width))
            frame = av.VideoFrame.from_ndarray(np.clip(pixels, 0, 255).astype(np.uint8), "gray")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            samples = round(seconds * 48_000)
            tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48_000)
            for start in range(0, samples, 960):
                chunk = tone[start : start + 960].astype(np.float32)[None]
                frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                frame.sample_rate = 48_000
                container.mux(sound.encode(frame))
            container.mux(sound.encode(None))
    return dst
