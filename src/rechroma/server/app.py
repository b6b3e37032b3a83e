"""FastAPI application factory; maps rechroma errors to HTTP answers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from rechroma import __version__
from rechroma.config import ServerSettings
from rechroma.errors import ImageReadError, ImageTooLargeError, RechromaError, UnsupportedImageError
from rechroma.inference import DEFAULT_RENDER_SIZE, Colorizer
from rechroma.server.routes import router

logger = logging.getLogger(__name__)


def create_app(
    settings: ServerSettings | None = None, colorizer: Colorizer | None = None
) -> FastAPI:
    """Build the app; the model loads once at start-up unless a `colorizer` is given."""
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.colorizer = colorizer or Colorizer.load(
            settings.weights, render_size=settings.render_size or DEFAULT_RENDER_SIZE
        )
        app.state.inference_slots = anyio.CapacityLimiter(settings.inference_workers)
        yield

    app = FastAPI(title="rechroma", version=__version__, lifespan=lifespan)
    app.include_router(router, prefix="/api")

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.exception_handler(RechromaError)
    async def rechroma_error(request: Request, exc: RechromaError) -> JSONResponse:
        status = _status_for(exc)
        if status >= 500:
            logger.exception("internal error on %s", request.url.path, exc_info=exc)
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=status)

    return app


def _status_for(exc: RechromaError) -> int:
    if isinstance(exc, ImageTooLargeError):
        return 413
    if isinstance(exc, UnsupportedImageError):
        return 415
    if isinstance(exc, ImageReadError):
        return 422
    return 500
