"""HTTP routes under /api."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from rechroma import __version__
from rechroma.errors import ImageTooLargeError, UnsupportedImageError
from rechroma.images import encode_photo, open_photo

router = APIRouter()

MEDIA_TYPES = {
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "webp": ("WEBP", "image/webp"),
}
READ_CHUNK = 1 << 20


@router.get("/health")
async def health(request: Request) -> dict[str, object]:
    """Liveness plus which model answers."""
    colorizer = request.app.state.colorizer
    return {
        "status": "ok",
        "version": __version__,
        "model": colorizer.info.model_name,
        "model_step": colorizer.info.step,
        "weights_sha256": colorizer.weights_sha256,
        "render_size": colorizer.render_size,
    }


@router.post(
    "/colorize",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}},
)
async def colorize(
    request: Request,
    file: Annotated[UploadFile, File(description="a grayscale or black-and-white photo")],
    output_format: Annotated[str, Form(alias="format")] = "png",
    render_size: Annotated[int | None, Form(ge=32, le=1024)] = None,
) -> Response:
    """Colorize one photo and return it at its original size."""
    settings = request.app.state.settings
    if output_format not in MEDIA_TYPES:
        raise UnsupportedImageError(
            f"format {output_format!r} is not offered; choose one of {sorted(MEDIA_TYPES)}"
        )
    data = await _read_limited(file, settings.max_upload_bytes)
    colorizer = request.app.state.colorizer

    def work() -> bytes:
        photo = open_photo(data, max_pixels=settings.max_pixels)
        result = colorizer.colorize(photo, render_size)
        format_name, _ = MEDIA_TYPES[output_format]
        options = {"quality": 95} if format_name in ("JPEG", "WEBP") else {}
        return encode_photo(photo, result, format_name, **options)

    # A bounded pool: at most `inference_workers` photos are colorized at once, off the loop.
    body = await anyio.to_thread.run_sync(work, limiter=request.app.state.inference_slots)
    return Response(body, media_type=MEDIA_TYPES[output_format][1])


async def _read_limited(file: UploadFile, limit: int) -> bytes:
    """Read the upload, refusing it as soon as it passes `limit` bytes."""
    chunks, size = [], 0
    while chunk := await file.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise ImageTooLargeError(
                f"{file.filename or 'upload'}: larger than the {limit // (1 << 20)} MB limit"
            )
        chunks.append(chunk)
    return b"".join(chunks)
