"""Web server settings: limits and model choice (plain data, importable without FastAPI)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerSettings:
    """Web server limits and model choice; every limit answers with a clear 4xx."""

    weights: Path | None = None
    detector: Path | None = None  # restoration's defect detector; the shipped one when None
    render_size: int | None = None
    threads: int | None = None  # torch threads for inference; PyTorch's default when None
    runtime: str = "auto"  # what runs the network (`Colorizer.load`)
    max_upload_bytes: int = 40 * 1024 * 1024  # per file
    max_pixels: int = 100_000_000
    max_files: int = 20  # per request
    # Photos colorized at once; more requests wait their turn, up to `max_queue` of them.
    inference_workers: int = 1
    # Requests admitted beyond the workers; the next one gets 503 with Retry-After.
    max_queue: int = 16
    retry_after_s: int = 5
    # A body must keep arriving (no gap over `upload_idle_timeout_s`) and be complete
    # within `upload_timeout_s`; a queue place is taken only once it is complete.
    upload_idle_timeout_s: float = 30.0
    upload_timeout_s: float = 600.0
    # Connections idle between requests are closed after this; request heads (line and
    # headers) may not exceed `max_header_bytes`.
    keep_alive_s: float = 5.0
    max_header_bytes: int = 64 * 1024
    # Video clips: one is colorized at a time, `max_video_jobs` may wait or run.
    max_video_bytes: int = 200 * 1024 * 1024
    max_video_seconds: float = 60.0
    max_video_pixels: int = 3840 * 2160
    max_video_jobs: int = 4  # waiting, running, or done and not yet downloaded
    max_video_uploads: int = 2  # clip bodies arriving at once (each held in memory)
    # A finished job (and its result, in memory) is dropped this long after it finished.
    video_job_ttl_s: float = 900.0
    # Origins allowed to call the API from other sites' pages; none (CORS off) by default.
    cors_origins: tuple[str, ...] = ()
