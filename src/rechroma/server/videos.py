"""Video jobs: a clip is uploaded, colorized in the background, polled, then downloaded.

A clip takes seconds to minutes, longer than an HTTP request should wait, so
`POST /api/videos` answers at once with a job id; the page polls `GET /api/videos/{id}`
for progress and fetches the result from `/api/videos/{id}/result`. One clip is colorized
at a time, on its own thread, so photos keep being answered meanwhile. Jobs, uploads and
results live in memory only: a result is dropped once downloaded, and every job
`video_job_ttl_s` after it finished (or after the server stops caring).
"""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from rechroma.errors import InvalidOptionError, RechromaError, VideoTooLongError
from rechroma.inference.colorizer import MAX_VIVIDNESS, Colorizer
from rechroma.inference.video import (
    DEFAULT_STABILIZE,
    VideoOptions,
    colorize_video_to,
    probe_video,
)
from rechroma.server.admission import ServerBusyError
from rechroma.server.routes import (
    Options,
    parse_reference_options,
    read_references,
    receive_upload,
    safe_stem,
)
from rechroma.server.settings import ServerSettings
from rechroma.server.uploads import BadUploadError

logger = logging.getLogger(__name__)

video_router = APIRouter()

VIDEO_FORMATS = {"mp4": (".mp4", "video/mp4"), "webm": (".webm", "video/webm")}

VIDEO_UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "one clip: MP4, MOV, MKV, AVI or WebM",
                        },
                        "format": {
                            "type": "string",
                            "enum": list(VIDEO_FORMATS),
                            "default": "mp4",
                            "description": "mp4 (H.264) or webm (VP9)",
                        },
                        "vividness": {"type": "number", "default": 1.0, "minimum": 0},
                        "stabilize": {
                            "type": "number",
                            "default": DEFAULT_STABILIZE,
                            "minimum": 0,
                            "exclusiveMaximum": 1,
                            "description": "weight of the previous frame's colour where the "
                            "picture is still; 0 colours every frame on its own",
                        },
                        "reference": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "colour stills of the film (at most 4, say one "
                            "per shot): their colours, matched to each frame, guide it",
                        },
                        "reference_strength": {
                            "type": "number",
                            "default": 1.0,
                            "minimum": 0,
                            "maximum": 1,
                        },
                    },
                }
            }
        },
    }
}


class VideoJobNotFound(RechromaError):
    """No such video job: never made, already downloaded, or expired."""


class VideoNotReady(RechromaError):
    """The job has not finished; poll its status until it has."""


class _Cancelled(Exception):
    """Raised inside a running job when the server shuts down."""


@dataclass
class VideoJob:
    """One clip's way through the queue; the worker thread updates it."""

    id: str
    filename: str
    media_type: str
    suffix: str
    options: VideoOptions
    upload: bytes | None
    state: str = "queued"  # queued, running, done, failed
    frames_done: int = 0
    frames_total: int | None = None
    error: str | None = None
    detail: str | None = None
    result: bytes | None = None
    created: float = field(default_factory=time.monotonic)
    finished: float | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def holds_memory(self) -> bool:
        """Whether the job still holds a clip: its upload, or a result not yet downloaded."""
        return self.state in ("queued", "running") or self.result is not None

    def status(self) -> dict[str, object]:
        """What `GET /api/videos/{id}` answers."""
        progress = None
        if self.state == "done":
            progress = 1.0
        elif self.frames_total:
            progress = min(self.frames_done / self.frames_total, 0.999)
        status: dict[str, object] = {
            "id": self.id,
            "filename": self.filename,
            "state": self.state,
            "progress": progress,
            "frames_done": self.frames_done,
            "frames_total": self.frames_total,
        }
        if self.state == "done":
            status["result_url"] = f"/api/videos/{self.id}/result"
            status["media_type"] = self.media_type
        if self.state == "failed":
            status["error"], status["detail"] = self.error, self.detail
        return status


class VideoJobs:
    """The job table and the one worker thread that colorizes clips in order."""

    def __init__(self, colorizer: Colorizer, settings: ServerSettings) -> None:
        self.colorizer = colorizer
        self.settings = settings
        self._jobs: dict[str, VideoJob] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rechroma-video")
        self._uploading = 0

    @contextmanager
    def receiving(self) -> Iterator[None]:
        """Hold one of `max_video_uploads` places while a clip's body arrives, or refuse.

        Each clip is held in memory whole (up to `max_video_bytes`), so uploads at once
        are bounded as jobs are. Called on the event loop only.
        """
        if self._uploading >= self.settings.max_video_uploads:
            raise ServerBusyError(
                f"{self._uploading} clips are already being uploaded; try again shortly"
            )
        self._uploading += 1
        try:
            yield
        finally:
            self._uploading -= 1

    def submit(self, job: VideoJob) -> VideoJob:
        """Queue a job, or refuse when `max_video_jobs` hold memory already.

        Jobs waiting, running, or done with a result not yet downloaded all count: a
        finished clip is held in memory as much as a queued one.
        """
        with self._lock:
            self._expire()
            held = sum(j.holds_memory for j in self._jobs.values())
            if held >= self.settings.max_video_jobs:
                raise ServerBusyError(
                    f"{held} videos are already waiting or ready to download; try again "
                    "when one has been downloaded"
                )
            self._jobs[job.id] = job
        self._worker.submit(self._run, job)
        return job

    def cancel(self, job_id: str) -> None:
        """End a job whatever its state: a queued one never runs, a running one stops at
        its next frame, a finished one's result is dropped."""
        with self._lock:
            job = self._jobs.pop(job_id, None)
        if job is None:
            raise VideoJobNotFound(f"no video job {job_id!r} (downloaded already, or expired)")
        job.cancelled.set()
        job.result = None

    def get(self, job_id: str) -> VideoJob:
        with self._lock:
            self._expire()
            job = self._jobs.get(job_id)
        if job is None:
            raise VideoJobNotFound(f"no video job {job_id!r} (downloaded already, or expired)")
        return job

    def take_result(self, job_id: str) -> VideoJob:
        """The finished job, removed from the table: a result is downloaded once."""
        job = self.get(job_id)
        if job.state != "done":
            raise VideoNotReady(f"video job {job_id!r} is {job.state}, not done")
        with self._lock:
            self._jobs.pop(job_id, None)
        return job

    def close(self) -> None:
        """Stop the running job and drop every queued one."""
        self._stopping.set()
        self._worker.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._jobs.clear()

    def _expire(self) -> None:
        now = time.monotonic()
        ttl = self.settings.video_job_ttl_s
        for job_id in [
            j.id for j in self._jobs.values() if j.finished is not None and now - j.finished > ttl
        ]:
            del self._jobs[job_id]

    def _run(self, job: VideoJob) -> None:
        if job.cancelled.is_set():
            job.upload = None
            return
        job.state = "running"

        def on_progress(done: int, total: int | None) -> None:
            if self._stopping.is_set() or job.cancelled.is_set():
                raise _Cancelled
            job.frames_done, job.frames_total = done, total

        output = io.BytesIO()
        try:
            colorize_video_to(
                self.colorizer,
                io.BytesIO(job.upload or b""),
                output,
                job.suffix,
                job.options,
                on_progress=on_progress,
                name=job.filename,
            )
            if not job.cancelled.is_set():
                job.result, job.state = output.getvalue(), "done"
        except _Cancelled:
            why = "cancelled" if job.cancelled.is_set() else "the server is stopping"
            job.state, job.error, job.detail = "failed", "Cancelled", why
        except RechromaError as exc:
            job.state, job.error, job.detail = "failed", type(exc).__name__, str(exc)
        except Exception as exc:  # a bug must fail the job, not the worker thread
            logger.exception("video job %s failed", job.id)
            job.state, job.error, job.detail = "failed", "InternalError", str(exc)
        finally:
            job.upload = None  # the clip is not kept a moment longer than needed
            job.finished = time.monotonic()


@video_router.post(
    "/videos",
    status_code=202,
    openapi_extra=VIDEO_UPLOAD_SCHEMA,
    responses={
        202: {"description": "queued: poll the status_url"},
        408: {"description": "the upload stalled or took too long"},
        413: {"description": "the clip is over the size or length limit"},
        422: {"description": "not a readable video, or an option out of range"},
        503: {
            "description": "too many clips uploading, waiting or not yet downloaded: retry "
            "after the Retry-After seconds"
        },
    },
)
async def submit_video(request: Request) -> JSONResponse:
    """Queue a clip to be colorized; answers at once with the job's id and status URL.

    The clip must be at most `max_video_mb` and `max_video_seconds` (see `/api/health`).
    It is held in memory until it is processed, never stored.
    """
    settings: ServerSettings = request.app.state.settings
    with request.app.state.videos.receiving():
        upload = await receive_upload(request, settings.max_video_bytes, 1)
    if not upload.files:
        raise BadUploadError("no clip in the request: send it as a `file` field")
    item = upload.files[0]
    suffix, media_type, options = parse_video_options(upload.fields, settings)
    name = item.filename or "upload"

    def probe() -> int | None:
        info = probe_video(io.BytesIO(item.data), name)
        if info.seconds > settings.max_video_seconds:
            raise VideoTooLongError(
                f"{name}: {info.seconds:.1f} s is longer than this server's limit of "
                f"{settings.max_video_seconds:g} s"
            )
        return info.frames

    # A clip that is no video, or too long, is refused now, not after it has waited; so
    # is a reference that cannot be used.
    frames = await anyio.to_thread.run_sync(probe)
    if upload.references:
        strength, fallback = parse_reference_options(upload.fields)
        reference = await anyio.to_thread.run_sync(
            lambda: read_references(
                request.app.state.colorizer,
                upload.references,
                Options(reference_strength=strength, reference_fallback=fallback),
                settings.max_pixels,
            )
        )
        options = replace(options, reference=reference)
    job = VideoJob(uuid.uuid4().hex, name, media_type, suffix, options, item.data)
    job.frames_total = frames
    request.app.state.videos.submit(job)
    return JSONResponse(
        {**job.status(), "status_url": f"/api/videos/{job.id}"},
        status_code=202,
        headers={"Location": f"/api/videos/{job.id}"},
    )


@video_router.get(
    "/videos/{job_id}",
    responses={404: {"description": "no such job (downloaded, expired or never made)"}},
)
async def video_status(job_id: str, request: Request) -> dict[str, object]:
    """A video job's state (queued, running, done, failed) and progress in [0, 1]."""
    return request.app.state.videos.get(job_id).status()


@video_router.delete(
    "/videos/{job_id}",
    status_code=204,
    responses={404: {"description": "no such job (downloaded, expired or never made)"}},
)
async def cancel_video(job_id: str, request: Request) -> Response:
    """Cancel a job: a queued clip never runs, a running one stops, a result is dropped."""
    request.app.state.videos.cancel(job_id)
    return Response(status_code=204)


@video_router.get(
    "/videos/{job_id}/result",
    response_class=Response,
    responses={
        200: {"content": {"video/mp4": {}, "video/webm": {}}, "description": "the clip"},
        404: {"description": "no such job (downloaded, expired or never made)"},
        409: {"description": "not finished yet"},
    },
)
async def video_result(job_id: str, request: Request) -> Response:
    """The colorized clip. Downloading it ends the job: the server keeps no copy."""
    job = request.app.state.videos.take_result(job_id)
    name = f"{safe_stem(job.filename, 'video')}-colour{job.suffix}"
    return Response(
        job.result,
        media_type=job.media_type,
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


def parse_video_options(
    fields: dict[str, str], settings: ServerSettings
) -> tuple[str, str, VideoOptions]:
    """Check the form's fields: `(suffix, media type, options)`."""
    output_format = (fields.get("format") or "mp4").lower()
    if output_format not in VIDEO_FORMATS:
        raise InvalidOptionError(f"format {output_format!r} is not one of {list(VIDEO_FORMATS)}")
    try:
        vividness = float(fields.get("vividness") or 1.0)
        stabilize = float(fields.get("stabilize") or DEFAULT_STABILIZE)
    except ValueError as exc:
        raise InvalidOptionError(f"vividness and stabilize must be numbers ({exc})") from exc
    if not 0.0 <= vividness <= MAX_VIVIDNESS:
        raise InvalidOptionError(f"vividness {vividness} is outside 0..{MAX_VIVIDNESS:g}")
    if not 0.0 <= stabilize < 1.0:
        raise InvalidOptionError(f"stabilize {stabilize} is outside [0, 1)")
    suffix, media_type = VIDEO_FORMATS[output_format]
    options = VideoOptions(
        vividness=vividness,
        stabilize=stabilize,
        max_seconds=settings.max_video_seconds,
        max_pixels=settings.max_video_pixels,
    )
    return suffix, media_type, options
