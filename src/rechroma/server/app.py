"""FastAPI application factory: model on app.state, limits, errors as HTTP, the web page."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.requests import ClientDisconnect

from rechroma import __version__
from rechroma.errors import (
    ImageReadError,
    ImageTooLargeError,
    InvalidOptionError,
    RechromaError,
    UnsupportedImageError,
    VideoTooLongError,
)
from rechroma.inference.colorizer import Colorizer
from rechroma.restoration import DEFAULT_DETECTOR, Restorer
from rechroma.server.admission import Admission, ServerBusyError
from rechroma.server.routes import router
from rechroma.server.settings import ServerSettings
from rechroma.server.uploads import BadUploadError, TooManyFilesError, UploadTimeoutError
from rechroma.server.videos import VideoJobNotFound, VideoJobs, VideoNotReady, video_router

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# The page uses only its own scripts, styles and images (no CDN: it works offline);
# result images are shown from blob: URLs.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; "
        "style-src 'self'; connect-src 'self'; media-src 'self' blob:; object-src 'none'; "
        "base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

DOCS_ASSETS = "/docs-assets"
# /docs alone: its own scripts and styles plus the one inline script that starts it.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; connect-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'"
)


def create_app(
    settings: ServerSettings | None = None,
    colorizer: Colorizer | None = None,
    restorer: Restorer | None = None,
) -> FastAPI:
    """Build the app; the models load once at start-up unless given (`colorizer`, and the
    defect detector `restorer`: the shipped one, or `settings.detector`, where present)."""
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.colorizer = colorizer or Colorizer.load(
            settings.weights,
            render_size=settings.render_size,
            threads=settings.threads,
            runtime=settings.runtime,
        )
        app.state.restorer = restorer if restorer is not None else _load_restorer(settings)
        app.state.admission = Admission(settings.inference_workers, settings.max_queue)
        app.state.videos = VideoJobs(app.state.colorizer, settings)
        try:
            yield
        finally:
            app.state.videos.close()

    # FastAPIOffline is FastAPI with /docs served from the fastapi-offline wheel's own
    # Swagger UI files: FastAPI's loads them from a CDN and is blank offline.
    app = FastAPIOffline(
        title="rechroma",
        version=__version__,
        description="Colorize grayscale and faded black-and-white photos, and old film clips. "
        "Uploads are processed in memory and never stored.",
        lifespan=lifespan,
        redoc_url=None,
        static_url=DOCS_ASSETS,
    )
    app.include_router(router, prefix="/api")
    app.include_router(video_router, prefix="/api")

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path == "/docs":
            # Swagger UI's page starts itself with an inline script (its assets are ours).
            response.headers["Content-Security-Policy"] = DOCS_CSP
        return response

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
        )

    @app.exception_handler(RechromaError)
    async def rechroma_error(request: Request, exc: RechromaError) -> JSONResponse:
        status = status_for(exc)
        headers = {}
        if isinstance(exc, ServerBusyError):
            headers["Retry-After"] = str(settings.retry_after_s)
        if status == 500:
            logger.error("internal error on %s", request.url.path, exc_info=exc)
        elif status == 503:
            # Ordinary back-pressure, not a fault: one line, no traceback.
            logger.warning("busy, answered 503 on %s: %s", request.url.path, exc)
        return JSONResponse(
            {"error": type(exc).__name__, "detail": str(exc)}, status_code=status, headers=headers
        )

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # Nobody is left to read an answer; a hang-up mid-upload is ordinary on the web.
        logger.info("client hung up during %s %s", request.method, request.url.path)
        return Response(status_code=400)

    # Last, so /api and /docs win; StaticFiles never lists directories.
    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="page")
    return app


def _load_restorer(settings: ServerSettings) -> Restorer | None:
    """The defect detector, or None (restore answers 422) when no weights file is there."""
    path = settings.detector or DEFAULT_DETECTOR
    if settings.detector is None and not path.is_file():
        logger.warning("no defect detector at %s: restoring is off", path)
        return None
    return Restorer.load(path, threads=settings.threads)


def status_for(exc: RechromaError) -> int:
    """The HTTP status that tells the client what went wrong."""
    if isinstance(exc, ServerBusyError):
        return 503
    if isinstance(exc, ImageTooLargeError | TooManyFilesError | VideoTooLongError):
        return 413
    if isinstance(exc, VideoJobNotFound):
        return 404
    if isinstance(exc, VideoNotReady):
        return 409
    if isinstance(exc, UnsupportedImageError):
        return 415
    if isinstance(exc, ImageReadError | InvalidOptionError):
        return 422
    if isinstance(exc, BadUploadError):
        return 400
    if isinstance(exc, UploadTimeoutError):
        return 408
    return 500


def uvicorn_limits(settings: ServerSettings) -> dict[str, object]:
    """uvicorn's own connection limits for `settings` (`uvicorn.run(app, **these)`)."""
    return {
        "timeout_keep_alive": settings.keep_alive_s,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }
