"""Small real clips for the video tests, written with PyAV (FFmpeg's encoders)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_clip(
    path: Path,
    frames: int = 12,
    size: tuple[int, int] = (96, 64),
    fps: int = 24,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int = 0,
    audio: bool = False,
    options: dict[str, str] | None = None,
    colour: bool = False,
) -> Path:
    """A moving gradient with a bright square, optionally with odd timing, rotation, sound.

    Args:
        pts: each frame's timestamp in `time_base` units (variable frame rate); 0, 1, 2...
            in 1/fps when None.
        rotation: degrees counter-clockwise in the display matrix.
    """
    width, height = size
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if options:
            video.options = options
        if time_base is not None:
            video.time_base = video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=48_000) if audio else None
        ys, xs = np.mgrid[0:height, 0:width]
        for index in range(frames):
            gray = (xs * 200 / width + 20).astype(np.uint8)
            left = (index * 3) % max(1, width - 16)
            gray[8:24, left : left + 16] = 240
            if colour:  # a red square on a blue-to-yellow ramp
                rgb = np.stack([gray, gray, 255 - gray], axis=-1)
                rgb[8:24, left : left + 16] = (230, 30, 30)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            else:
                frame = av.VideoFrame.from_ndarray(gray, format="gray")
            if pts is None:
                frame.pts, frame.time_base = index, Fraction(1, fps)
            else:
                frame.pts, frame.time_base = pts[index], time_base
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            samples = round(frames / fps * 48_000)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48_000)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    tone[None, start : start + 1024].copy(), format="flt", layout="mono"
                )
                chunk.sample_rate = 48_000
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return path


def write_audio_only(path: Path, seconds: float = 0.5) -> Path:
    """An MP4 with an AAC track and no video stream."""
    with av.open(str(path), "w") as container:
        sound = container.add_stream("aac", rate=48_000)
        samples = np.zeros((1, round(seconds * 48_000)), dtype=np.float32)
        for start in range(0, samples.shape[1], 1024):
            chunk = av.AudioFrame.from_ndarray(
                samples[:, start : start + 1024].copy(), format="flt", layout="mono"
            )
            chunk.sample_rate = 48_000
            container.mux(sound.encode(chunk))
        container.mux(sound.encode(None))
    return path


def probe(path: Path) -> dict[str, object]:
    """What the tests compare: frames, size, rate, times, streams, metadata."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = list(container.decode(video))
        return {
            "frames": len(frames),
            "size": (frames[0].width, frames[0].height),
            "rotation": frames[0].rotation,
            "fps": float(video.average_rate),
            "times": [round(float(f.time), 4) for f in frames],
            "codec": video.codec_context.name,
            "audio": [s.codec_context.name for s in container.streams.audio],
            "metadata": dict(container.metadata),
            "rgb": [f.to_ndarray(format="rgb24") for f in frames[:: max(1, len(frames) // 4)]],
        }
