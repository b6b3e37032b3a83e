"""Colorize a video clip frame by frame, steadily, keeping its size, timing and sound.

Frames stream through: decode (PyAV, FFmpeg inside), the network at render size,
`ChromaStabilizer` so that still things keep their colour, the same guided upsampling
as photos, encode. Encoding and muxing run on their own thread (`_Writer`), so x264
works while the next frame is coloured. Nothing holds more than a few frames, so a clip
of any length runs in bounded memory. The output is written under a temporary name
beside the final one and renamed when complete: a failure never leaves a half-written
clip under that name.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import av
import numpy as np
from PIL import Image
from tqdm import tqdm

from rechroma.errors import (
    InvalidOptionError,
    OutputWriteError,
    VideoReadError,
    VideoTooLongError,
)
from rechroma.images import AI_NOTE, DEFAULT_MAX_PIXELS
from rechroma.inference.temporal import ChromaStabilizer
from rechroma.paths import check_writable

if TYPE_CHECKING:
    from rechroma.inference.colorizer import Colorizer
    from rechroma.inference.reference import ReferenceSet

logger = logging.getLogger(__name__)

DEFAULT_STABILIZE = 0.8
DEFAULT_NETWORK_EVERY = 3
# Errors that come from writing the output, not from reading the clip.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EFBIG})
# Constant-quality settings: visually lossless for H.264, the usual web setting for VP9.
DEFAULT_CRF = {"libx264": 18, "libvpx-vp9": 32}
# Audio codecs each output container is given when the input's cannot be copied into it.
AUDIO_FALLBACK = {"libx264": ("aac", None), "libvpx-vp9": ("libopus", 48_000)}
# Container tags that describe the input file's encoding, not its content.
TECHNICAL_TAGS = frozenset({"major_brand", "minor_version", "compatible_brands", "encoder"})
# PIL transposes that undo a display matrix's counter-clockwise rotation.
ROTATIONS = {
    90: Image.Transpose.ROTATE_90,
    -90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    -180: Image.Transpose.ROTATE_180,
}

ProgressCallback = Callable[[int, int | None], None]
VideoSource = str | Path | BinaryIO
# FFmpeg's demuxers for photos (besides the "*_pipe" ones).
STILL_IMAGE_DEMUXERS = frozenset({"image2", "gif", "webp_pipe", "apng"})
# FFmpeg's muxer for each output extension.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}


@dataclass(frozen=True)
class VideoOptions:
    """How a clip is colorized and encoded."""

    render_size: int | None = None  # the colorizer's own when None
    vividness: float = 1.0
    stabilize: float = DEFAULT_STABILIZE  # 0 colours every frame on its own, as a photo
    # On a steady shot the network runs on every n-th frame at least, and the frames
    # between carry the stabilised colour along the motion (`ChromaStabilizer.carry`);
    # 1 runs it on every frame. Cuts, motion and fast pans always run it.
    network_every: int = DEFAULT_NETWORK_EVERY
    crf: int | None = None  # encoder quality (lower is better); DEFAULT_CRF when None
    max_seconds: float | None = None  # refuse longer clips
    max_pixels: int = DEFAULT_MAX_PIXELS  # per frame
    # Reference photos (colour stills of the shoot, a keyframe per shot): each frame the
    # network colours takes the colours of the ones that match it.
    reference: ReferenceSet | None = None


@dataclass(frozen=True)
class VideoInfo:
    """What a clip is, as shown upright (rotation applied)."""

    width: int
    height: int
    fps: float
    seconds: float
    frames: int | None  # from the container, None when it does not say
    rotation: int  # degrees counter-clockwise the stored frames are turned for display
    audio: str | None  # the first audio stream's codec


@dataclass(frozen=True)
class VideoReport:
    """What `colorize_video` wrote."""

    path: Path | None  # None when written to a file object
    frames: int
    width: int
    height: int
    fps: float
    audio: str  # "copied", "re-encoded" or "none"
    scene_cuts: int
    seconds: float  # wall time
    carried: int = 0  # frames coloured by carrying the last colour, without the network

    @property
    def frames_per_second(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


def probe_video(source: VideoSource, name: str | None = None) -> VideoInfo:
    """Read a clip's size, rate, length and streams (decoding only its first frame).

    Args:
        source: a path, or a seekable binary file object (an upload in memory).
        name: what error messages call it; the file's name when None.

    Raises:
        VideoReadError: the file is not a video rechroma can read.
    """
    source = Path(source) if isinstance(source, str) else source
    name = name or _source_name(source)
    with _open_input(source, name) as container:
        stream = _video_stream(container, name)
        return _info(container, stream, source, name)


def colorize_video(
    colorizer: Colorizer,
    src: str | Path,
    dst: str | Path,
    options: VideoOptions = VideoOptions(),
    progress: bool = False,
    on_progress: ProgressCallback | None = None,
) -> VideoReport:
    """Colorize the clip `src` into `dst` (H.264 in MP4/MOV/MKV, VP9 in WebM, by extension).

    Args:
        colorizer: the loaded model.
        options: render size, vividness, stabilisation, quality and limits.
        progress: show a progress bar (frames/s, time left) on stderr.
        on_progress: called as `(frames_done, frames_total_or_None)` after every frame.

    Raises:
        VideoReadError: `src` is not a readable video, has no video stream, or ends early.
        VideoTooLongError: longer than `options.max_seconds`.
        InvalidOptionError: `dst` has an extension rechroma does not write.
    """
    src, dst = Path(src), Path(dst)
    video_codec_for(dst)  # an unwritable extension fails before the work, not after
    partial = dst.with_name(f".{dst.stem}.partial{dst.suffix}")
    check_writable(dst.parent)  # a read-only or missing folder is named, not the input blamed
    try:
        report = colorize_video_to(
            colorizer, src, partial, dst.suffix, options, progress, on_progress, src.name
        )
        os.replace(partial, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise
    return replace(report, path=dst)


def colorize_video_to(
    colorizer: Colorizer,
    source: VideoSource,
    output: Path | BinaryIO,
    suffix: str,
    options: VideoOptions | None = None,
    progress: bool = False,
    on_progress: ProgressCallback | None = None,
    name: str | None = None,
) -> VideoReport:
    """`colorize_video` for any source and output: paths or binary file objects in memory.

    Args:
        output: written in place (no temporary name); a file object must be seekable.
        suffix: the output's container by extension, as in `colorize_video` (".mp4", ".webm").
        name: what error messages call the source.
    """
    options = options or VideoOptions()
    if options.network_every < 1:
        raise InvalidOptionError(f"network_every {options.network_every} is below 1")
    codec = video_codec_for(Path(f"out{suffix}"))
    source = Path(source) if isinstance(source, str) else source
    name = name or _source_name(source)
    started = time.perf_counter()
    with _open_input(source, name) as container:
        stream = _video_stream(container, name)
        info = _info(container, stream, source, name)
        _check_limits(info, name, options)
        report = _transcode(
            colorizer,
            container,
            stream,
            info,
            output,
            suffix.lower(),
            codec,
            options,
            progress,
            on_progress,
            name,
        )
    return replace(report, seconds=time.perf_counter() - started)


def _source_name(source: Path | BinaryIO) -> str:
    return (
        source.name
        if isinstance(source, Path)
        else Path(getattr(source, "name", "") or "upload").name
    )


def video_codec_for(path: Path) -> str:
    """The video encoder for an output path's extension."""
    suffix = path.suffix.lower()
    if suffix == ".webm":
        return "libvpx-vp9"
    if suffix in (".mp4", ".m4v", ".mov", ".mkv"):
        return "libx264"
    raise InvalidOptionError(
        f"{path.name}: rechroma writes video as .mp4, .m4v, .mov, .mkv (H.264) or .webm (VP9)"
    )


@contextlib.contextmanager
def _open_input(source: Path | BinaryIO, name: str) -> Iterator[av.container.InputContainer]:
    if isinstance(source, Path):
        if not source.is_file():
            raise VideoReadError(f"{source}: no such file")
        target: str | BinaryIO = str(source)
    else:
        source.seek(0)
        target = source
    try:
        container = av.open(target, metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise VideoReadError(f"{name}: not a readable video ({_reason(exc)})") from exc
    # FFmpeg opens photos too, as one-frame "videos": they belong to the photo path.
    if container.format.name in STILL_IMAGE_DEMUXERS or container.format.name.endswith("_pipe"):
        container.close()
        raise VideoReadError(f"{name}: is a photo, not a video; colorize it as a photo")
    try:
        yield container
    finally:
        container.close()


def _video_stream(container: av.container.InputContainer, name: str) -> av.VideoStream:
    if not container.streams.video:
        raise VideoReadError(f"{name}: has no video stream")
    stream = container.streams.video[0]
    if stream.codec_context.width <= 0 or stream.codec_context.height <= 0:
        raise VideoReadError(f"{name}: its video stream has no picture size")
    return stream


def _info(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    source: Path | BinaryIO,
    name: str,
) -> VideoInfo:
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / av.time_base
    else:
        seconds = 0.0
    rotation = _first_frame_rotation(source, name)
    width, height = stream.codec_context.width, stream.codec_context.height
    if rotation in (90, -90):
        width, height = height, width
    audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
    return VideoInfo(width, height, float(rate), seconds, stream.frames or None, rotation, audio)


def _first_frame_rotation(source: Path | BinaryIO, name: str) -> int:
    """The display rotation of the clip's first frame, rounded to 90 degrees.

    PyAV exposes the display matrix per frame, and the output's size must be known
    before its first frame: so the first frame is decoded once, from a second handle.
    """
    position = None if isinstance(source, Path) else source.tell()
    with _open_input(source, name) as container:
        stream = _video_stream(container, name)
        try:
            for frame in container.decode(stream):
                return _round_rotation(frame.rotation)
        except av.FFmpegError:
            return 0  # the main pass reports the broken stream
        finally:
            if position is not None:
                source.seek(position)
    return 0


def _round_rotation(degrees: float) -> int:
    rounded = int(round(degrees / 90.0)) * 90
    return -90 if rounded == 270 else (90 if rounded == -270 else rounded)


def _check_limits(info: VideoInfo, name: str, options: VideoOptions) -> None:
    if options.max_seconds is not None and info.seconds > options.max_seconds:
        raise VideoTooLongError(
            f"{name}: {info.seconds:.1f} s is longer than the limit of {options.max_seconds:g} s"
        )
    if info.width * info.height > options.max_pixels:
        raise VideoTooLongError(
            f"{name}: frames of {info.width}x{info.height} are larger than the limit "
            f"of {options.max_pixels:,} pixels"
        )


def _transcode(
    colorizer: Colorizer,
    source: av.container.InputContainer,
    stream: av.VideoStream,
    info: VideoInfo,
    output_target: Path | BinaryIO,
    suffix: str,
    codec: str,
    options: VideoOptions,
    progress: bool,
    on_progress: ProgressCallback | None,
    name: str,
) -> VideoReport:
    stream.thread_type = "AUTO"
    audio_in = source.streams.audio[0] if source.streams.audio else None
    # The index first, so players start before the whole file has arrived; FFmpeg must
    # re-read the file for it, so only where the output is a file.
    faststart = isinstance(output_target, Path) and suffix in (".mp4", ".m4v", ".mov")
    container_options = {"movflags": "+faststart"} if faststart else {}
    target = str(output_target) if isinstance(output_target, Path) else output_target
    stabilizer = ChromaStabilizer(options.stabilize)
    total = info.frames or (round(info.seconds * info.fps) or None)
    frames = 0
    with (
        av.open(target, "w", format=CONTAINERS[suffix], options=container_options) as output,
        tqdm(total=total, unit="frame", disable=not progress, desc=name) as bar,
    ):
        output.metadata.update(
            {k: v for k, v in source.metadata.items() if k.lower() not in TECHNICAL_TAGS}
        )
        output.metadata["comment"] = AI_NOTE
        video_out = _add_video_stream(output, stream, info, codec, options)
        audio_out, audio_mode = _add_audio_stream(output, audio_in, codec)
        demuxed = [stream] + ([audio_in] if audio_in is not None else [])
        writer = _Writer(output, video_out, audio_out, audio_mode)
        try:
            for packet in source.demux(demuxed):
                if packet.stream.type == "audio":
                    writer.put(packet)
                    continue
                for frame in packet.decode():
                    if (
                        options.max_seconds is not None
                        and frame.time is not None
                        and (frame.time > options.max_seconds + 1.0)
                    ):
                        raise VideoTooLongError(
                            f"{name}: runs past the limit of {options.max_seconds:g} s"
                        )
                    colour = _colorize_frame(colorizer, frame, info.rotation, stabilizer, options)
                    colour.pts, colour.time_base = frame.pts, frame.time_base
                    if colour.pts is None:  # some AVI files carry no timestamps
                        colour.pts, colour.time_base = frames, Fraction(1) / Fraction(info.fps)
                    writer.put(colour)
                    frames += 1
                    bar.update()
                    if on_progress is not None:
                        on_progress(frames, total)
            if frames == 0:
                raise VideoReadError(f"{name}: has no frames that decode")
            if info.frames and frames + max(2, info.frames // 100) < info.frames:
                raise VideoReadError(
                    f"{name}: ends after {frames} of its {info.frames} frames "
                    "(the file is truncated)"
                )
            writer.close()
        except BaseException as exc:
            writer.abort()
            if isinstance(exc, av.FFmpegError):
                if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
                    raise OutputWriteError(
                        f"{name}: cannot write the output ({_reason(exc)})"
                    ) from exc
                raise VideoReadError(
                    f"{name}: damaged or truncated after {frames} frames ({_reason(exc)})"
                ) from exc
            raise
    return VideoReport(
        output_target if isinstance(output_target, Path) else None,
        frames,
        info.width,
        info.height,
        info.fps,
        audio_mode,
        stabilizer.cuts,
        0.0,
        stabilizer.carried,
    )


def _add_video_stream(
    output: av.container.OutputContainer,
    stream: av.VideoStream,
    info: VideoInfo,
    codec: str,
    options: VideoOptions,
) -> av.VideoStream:
    rate = stream.average_rate or stream.guessed_rate or Fraction(info.fps).limit_denominator(1001)
    video_out = output.add_stream(codec, rate=rate)
    video_out.width, video_out.height = info.width, info.height
    odd = info.width % 2 or info.height % 2
    # x264's 4:2:0 needs even sizes; 4:4:4 keeps an odd-sized clip's exact size.
    video_out.pix_fmt = "yuv444p" if odd and codec == "libx264" else "yuv420p"
    # The input's clock, so variable frame rates keep their exact timing.
    if stream.time_base is not None:
        video_out.time_base = stream.time_base
        video_out.codec_context.time_base = stream.time_base
    crf = options.crf if options.crf is not None else DEFAULT_CRF[codec]
    if codec == "libx264":
        # "superfast": half of veryfast's time at 720p, for a slightly larger file.
        video_out.options = {"crf": str(crf), "preset": "superfast"}
    else:
        video_out.options = {
            "crf": str(crf),
            "b": "0",
            "deadline": "realtime",
            "cpu-used": "8",
            "row-mt": "1",
        }
    return video_out


class _Writer:
    """Encodes and muxes on its own thread, in the order things are handed to it.

    PyAV releases the GIL while FFmpeg encodes, so the encoder overlaps the colouring of
    the next frame. Only this thread touches the output container (FFmpeg's muxer is
    not thread-safe); the queue is short, so memory stays bounded, and an error there
    (a full disk) is raised in the caller at its next `put` or at `close`.
    """

    DEPTH = 4

    def __init__(
        self,
        output: av.container.OutputContainer,
        video_out: av.VideoStream,
        audio_out: av.AudioStream | None,
        audio_mode: str,
    ) -> None:
        self._output, self._video_out = output, video_out
        self._audio_out, self._audio_mode = audio_out, audio_mode
        self._queue: queue.Queue = queue.Queue(self.DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="rechroma-video-writer")
        self._thread.start()

    def put(self, item: av.VideoFrame | av.Packet) -> None:
        """A coloured frame to encode, or an audio packet to copy or re-encode."""
        while True:
            self._raise()
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Flush the encoders and wait for the thread; raise what went wrong there."""
        self._queue.put(None)
        self._thread.join()
        self._raise()

    def abort(self) -> None:
        """Stop the thread without flushing (the clip failed)."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._queue.put(None)
        self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        flushing = False
        while True:
            item = self._queue.get()
            if self._error is not None:
                if item is None:
                    return
                continue
            try:
                if item is None:
                    flushing = True
                    self._output.mux(self._video_out.encode(None))
                    if self._audio_mode == "re-encoded":
                        self._output.mux(self._audio_out.encode(None))
                    return
                if isinstance(item, av.Packet):
                    _audio_packet(self._output, item, self._audio_out, self._audio_mode)
                else:
                    self._output.mux(self._video_out.encode(item))
            except BaseException as exc:  # handed to the caller's thread
                self._error = exc
                if flushing:
                    return


def _add_audio_stream(
    output: av.container.OutputContainer, audio_in: av.AudioStream | None, codec: str
) -> tuple[av.AudioStream | None, str]:
    if audio_in is None:
        return None, "none"
    if audio_in.codec_context.name in output.supported_codecs:
        with contextlib.suppress(av.FFmpegError, ValueError):
            return output.add_stream_from_template(audio_in), "copied"
    name, rate = AUDIO_FALLBACK[codec]
    audio_out = output.add_stream(name, rate=rate or audio_in.codec_context.sample_rate or 48_000)
    audio_in.thread_type = "AUTO"
    return audio_out, "re-encoded"


def _audio_packet(
    output: av.container.OutputContainer,
    packet: av.Packet,
    audio_out: av.AudioStream | None,
    mode: str,
) -> None:
    if audio_out is None:
        return
    if mode == "copied":
        if packet.dts is None:  # the demuxer's empty packet at the end
            return
        packet.stream = audio_out
        output.mux(packet)
        return
    for frame in packet.decode():
        frame.pts = None  # the encoder counts samples itself
        output.mux(audio_out.encode(frame))


def _colorize_frame(
    colorizer: Colorizer,
    frame: av.VideoFrame,
    rotation: int,
    stabilizer: ChromaStabilizer,
    options: VideoOptions,
) -> av.VideoFrame:
    gray = _frame_gray(frame)
    if rotation in ROTATIONS:
        gray = gray.transpose(ROTATIONS[rotation])
    from rechroma.inference.colorizer import Prediction

    prepared = colorizer.prepare(gray, options.render_size)
    ab = None
    if stabilizer.carried_in_a_row + 1 < options.network_every:
        ab = stabilizer.carry(prepared[2])
    if ab is None:
        prediction = colorizer.predict(
            gray, options.render_size, prepared=prepared, reference=options.reference
        )
        ab = stabilizer(prediction.lightness, prediction.ab)
    prediction = Prediction(*prepared, ab=ab)
    planes = colorizer.render_planes(prediction, options.vividness, space="ycbcr")
    # JPEG-style full-range YCbCr is FFmpeg's yuvj444p, planar like our planes (PyAV
    # copies them); the encoder converts it to 4:2:0.
    return av.VideoFrame.from_ndarray(planes, format="yuvj444p")


# 8-bit planar YUV: the luma is the first plane, limited range unless "yuvj" or tagged.
PLANAR_YUV = frozenset({"yuv420p", "yuv422p", "yuv444p", "yuv411p", "yuv440p"})
JPEG_RANGE = 2  # AVColorRange's AVCOL_RANGE_JPEG


@functools.cache
def _limited_to_full() -> list[int]:
    """FFmpeg's own limited-to-full-range gray level for each of the 256 luma values,
    taken once from swscale on a frame that holds them all, so the table is its answer."""
    planes = np.full((24, 16), 128, np.uint8)
    planes[:16] = np.arange(256, dtype=np.uint8).reshape(16, 16)
    frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    return frame.to_ndarray(format="gray").ravel().tolist()


def _frame_gray(frame: av.VideoFrame) -> Image.Image:
    """A frame's full-range gray, the luma the photo path would see: FFmpeg's conversion,
    but for 8-bit planar YUV as its luma plane through the same levels as a 256-entry
    table (0.7 ms against swscale's 8.7 ms at 720p)."""
    name = frame.format.name
    jpeg = name.startswith("yuvj")
    base = "yuv" + name[4:] if jpeg else name
    # Tagged full range without the "j" is rare: FFmpeg decides what it means there.
    if base not in PLANAR_YUV or (not jpeg and frame.color_range == JPEG_RANGE):
        return Image.fromarray(frame.to_ndarray(format="gray"))
    plane = frame.planes[0]
    luma = Image.frombuffer(
        "L", (frame.width, frame.height), bytes(plane), "raw", "L", plane.line_size, 1
    )
    return luma if jpeg else luma.point(_limited_to_full())


def _reason(exc: BaseException) -> str:
    """FFmpeg's own words ("Invalid data found when processing input"), without errno."""
    text = getattr(exc, "strerror", None) or str(exc).strip()
    return text[:200] or type(exc).__name__
