"""HTTP routes under /api."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import PurePath

import anyio
import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image

from rechroma import __version__
from rechroma.errors import InvalidOptionError, RechromaError
from rechroma.images import Photo, answer_format, encode_photo, open_photo
from rechroma.inference.colorizer import MAX_VIVIDNESS, Colorizer
from rechroma.inference.hints import MAX_HINTS, Hint, hints_from_json, hints_to_json
from rechroma.inference.reference import (
    ReferenceSet,
    load_reference,
)
from rechroma.memory import release_memory
from rechroma.restoration import Restorer
from rechroma.restoration.restorer import encode_mask
from rechroma.restoration.tone import TONE_MODES
from rechroma.server.uploads import (
    BadUploadError,
    Upload,
    UploadedFile,
    UploadLimits,
    paced,
    read_upload,
)

router = APIRouter()

MEDIA_TYPES = {
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "webp": ("WEBP", "image/webp"),
}
FORMATS = ("auto", *MEDIA_TYPES)


def multipart_form(required: list[str], properties: dict[str, object]) -> dict[str, object]:
    """An upload form's description for /docs (`openapi_extra`): the body itself is parsed
    by hand (see uploads.py)."""
    schema = {"type": "object", "required": required, "properties": properties}
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": schema}},
        }
    }


UPLOAD_SCHEMA = multipart_form(
    required=["file"],
    properties={
        "file": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "one or more photos (repeat the field)",
        },
        "vividness": {"type": "number", "default": 1.0, "minimum": 0},
        "render_size": {"type": "integer", "minimum": 32, "maximum": 1024},
        "format": {"type": "string", "enum": list(FORMATS), "default": "auto"},
        "batch": {
            "type": "boolean",
            "default": False,
            "description": "answer with JSON even for a single file",
        },
        "hints": {
            "type": "string",
            "description": "colour hints as JSON, "
            '{"hints": [{"x": 412, "y": 300, "color": "#2b4c9a"}]}: '
            "points in pixels of the uploaded photo, whose chroma the "
            "result takes there (the photo keeps its lightness); for one "
            "file, at most 256",
        },
        "reference": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "colour photos of the same things (at most 4): their colours, "
            "matched to each photo, guide the colouring",
        },
        "reference_strength": {"type": "number", "default": 1.0, "minimum": 0, "maximum": 1},
        "reference_fallback": {
            "type": "string",
            "enum": ["none", "global"],
            "default": "none",
            "description": "where nothing matches: keep the automatic colour, or move it to "
            "the reference's colour statistics",
        },
    },
)


@dataclass(frozen=True)
class Options:
    """Per-request colorizing options, checked."""

    vividness: float = 1.0
    render_size: int | None = None
    output_format: str = "auto"
    batch: bool = False
    hints: tuple[Hint, ...] = ()
    # Repair print damage first (the server's defect detector).
    restore: bool = False
    defects_threshold: float | None = None
    tone: str = "auto"
    reference_strength: float = 1.0
    reference_fallback: str = "none"


@router.get("/health")
async def health(request: Request) -> dict[str, object]:
    """Liveness, which model answers, and the limits uploads must respect."""
    colorizer = request.app.state.colorizer
    settings = request.app.state.settings
    return {
        "status": "ok",
        "version": __version__,
        "model": colorizer.info.model_name,
        "model_step": colorizer.info.step,
        "chroma_gain": colorizer.chroma_gain,
        "weights": colorizer.weights_path.name if colorizer.weights_path else None,
        "weights_sha256": colorizer.weights_sha256,
        "render_size": colorizer.render_size,
        "runtime": colorizer.runtime,
        "takes_hints": colorizer.takes_hints,
        "restores": request.app.state.restorer is not None,
        "limits": {
            "max_file_mb": settings.max_upload_bytes / 2**20,
            "max_files": settings.max_files,
            "max_megapixels": settings.max_pixels / 1e6,
            "max_vividness": MAX_VIVIDNESS,
            "max_hints": MAX_HINTS,
            "max_video_mb": settings.max_video_bytes / 2**20,
            "max_video_seconds": settings.max_video_seconds,
        },
    }


@router.post(
    "/colorize",
    response_class=Response,
    openapi_extra=UPLOAD_SCHEMA,
    responses={
        200: {
            "content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}},
            "description": "the colour photo (one file), or JSON results (several files)",
        },
        413: {"description": "a file, or the number of files, is over a limit"},
        415: {"description": "not an image, or a kind that cannot be read"},
        422: {"description": "a broken image or an option out of range"},
        408: {"description": "the upload stalled or took too long"},
        503: {"description": "busy: retry after the Retry-After seconds"},
    },
)
async def colorize(request: Request) -> Response:
    """Colorize one or more photos at their original size.

    One file gets the image back (format `auto`: JPEG for JPEG input, else PNG, which
    keeps transparency). Several files, or `batch=true`, get JSON with one result per
    file, each either the image (base64) or why it failed; one bad file does not fail
    the others. Uploads are held in memory only for the request, never stored.
    """
    settings = request.app.state.settings
    admission = request.app.state.admission
    # The whole body first, then a place in the queue: a client that stalls mid-upload
    # must not hold a place that others are refused for.
    upload = await receive_upload(request, settings.max_upload_bytes, settings.max_files)
    sizes: list[tuple[int, int]] = []
    try:
        async with admission.admit():
            return await _colorize_upload_files(request, upload, sizes)
    finally:
        largest = max((w * h for w, h in sizes), default=0)
        if admission.admitted == 0 and largest:
            # The server is idle now: hand the large photos' freed buffers back.
            await anyio.to_thread.run_sync(release_memory, largest)


async def _colorize_upload_files(
    request: Request, upload: Upload, sizes: list[tuple[int, int]]
) -> Response:
    """Colour an admitted request's photos; each one's size is added to `sizes`."""
    settings = request.app.state.settings
    admission = request.app.state.admission
    options = parse_options(upload.fields)
    if not upload.files:
        raise BadUploadError("no photo in the request: send it as a `file` field")
    if options.hints and len(upload.files) > 1:
        raise InvalidOptionError("hints are points of one photo: send one file with them")
    if options.hints and not request.app.state.colorizer.takes_hints:
        raise InvalidOptionError("this server's model does not take colour hints")
    if upload.mask is not None and (not options.restore or len(upload.files) > 1):
        raise InvalidOptionError("a mask is for restore=true with one photo")
    colorizer = request.app.state.colorizer
    reference = None
    if upload.references:
        reference = await anyio.to_thread.run_sync(
            lambda: read_references(colorizer, upload.references, options, settings.max_pixels),
            limiter=admission.workers,
        )

    async def run(item: UploadedFile) -> tuple[bytes, str, tuple[int, int]]:
        def work() -> tuple[bytes, str, tuple[int, int]]:
            return colorize_upload(
                colorizer,
                item,
                options,
                settings.max_pixels,
                request.app.state.restorer,
                upload.mask,
                reference,
            )

        # The bounded pool: inference never runs on the event loop.
        answer = await anyio.to_thread.run_sync(work, limiter=admission.workers)
        sizes.append(answer[2])
        return answer

    if len(upload.files) == 1 and not options.batch:
        item = upload.files[0]
        body, media_type, _size = await run(item)
        name = download_name(item.filename, media_type)
        return Response(
            body,
            media_type=media_type,
            headers={"Content-Disposition": f'inline; filename="{name}"'},
        )
    results = []
    for item in upload.files:
        try:
            body, media_type, (width, height) = await run(item)
        except RechromaError as exc:
            results.append(
                {
                    "filename": item.filename,
                    "ok": False,
                    "error": type(exc).__name__,
                    "detail": str(exc),
                }
            )
            continue
        results.append(
            {
                "filename": item.filename,
                "ok": True,
                "download_name": download_name(item.filename, media_type),
                "media_type": media_type,
                "width": width,
                "height": height,
                "data": base64.b64encode(body).decode("ascii"),
            }
        )
    return JSONResponse({"results": results})


async def receive_upload(request: Request, max_file_bytes: int, max_files: int) -> Upload:
    """The request's multipart body, read whole within the server's size and time limits."""
    settings = request.app.state.settings
    return await read_upload(
        request.headers.get("content-type"),
        request.headers.get("content-length"),
        paced(request.stream(), settings.upload_idle_timeout_s, settings.upload_timeout_s),
        UploadLimits(max_file_bytes, max_files),
    )


def parse_options(fields: dict[str, str]) -> Options:
    """Check the form's option fields; unknown fields are ignored."""
    try:
        vividness = float(fields.get("vividness") or 1.0)
        render_size = int(fields["render_size"]) if fields.get("render_size") else None
    except ValueError as exc:
        raise InvalidOptionError(f"vividness and render_size must be numbers ({exc})") from exc
    if not 0.0 <= vividness <= MAX_VIVIDNESS:
        raise InvalidOptionError(f"vividness {vividness} is outside 0..{MAX_VIVIDNESS:g}")
    if render_size is not None and not 32 <= render_size <= 1024:
        raise InvalidOptionError(f"render_size {render_size} is outside 32..1024")
    output_format = (fields.get("format") or "auto").lower()
    if output_format not in FORMATS:
        raise InvalidOptionError(f"format {output_format!r} is not one of {list(FORMATS)}")
    batch = _flag(fields, "batch")
    hints = tuple(hints_from_json(fields["hints"])) if fields.get("hints") else ()
    threshold, tone = parse_restore_options(fields)
    strength, fallback = parse_reference_options(fields)
    return Options(
        vividness, render_size, output_format, batch, hints, _flag(fields, "restore"),
        threshold, tone, strength, fallback,
    )  # fmt: skip


def parse_reference_options(fields: dict[str, str]) -> tuple[float, str]:
    """`reference_strength` (0..1, 1 when absent) and `reference_fallback` ("none")."""
    try:
        strength = float(fields.get("reference_strength") or 1.0)
    except ValueError as exc:
        raise InvalidOptionError(f"reference_strength must be a number ({exc})") from exc
    fallback = (fields.get("reference_fallback") or "none").lower()
    ReferenceSet((), strength, fallback)  # checks both
    return strength, fallback


def _flag(fields: dict[str, str], name: str) -> bool:
    return (fields.get(name) or "").lower() in ("1", "true", "yes", "on")


def parse_restore_options(fields: dict[str, str]) -> tuple[float | None, str]:
    """`defects_threshold` (0.01..0.99, the detector's own when absent) and `tone`."""
    threshold = None
    if fields.get("defects_threshold"):
        try:
            threshold = float(fields["defects_threshold"])
        except ValueError as exc:
            raise InvalidOptionError(f"defects_threshold must be a number ({exc})") from exc
        if not 0.01 <= threshold <= 0.99:
            raise InvalidOptionError(f"defects_threshold {threshold} is outside 0.01..0.99")
    tone = (fields.get("tone") or "auto").lower()
    if tone not in TONE_MODES:
        raise InvalidOptionError(f"tone {tone!r} is not one of {list(TONE_MODES)}")
    return threshold, tone


def colorize_upload(
    colorizer: Colorizer,
    item: UploadedFile,
    options: Options,
    max_pixels: int,
    restorer: Restorer | None = None,
    mask: UploadedFile | None = None,
    reference: ReferenceSet | None = None,
) -> tuple[bytes, str, tuple[int, int]]:
    """Decode, (repair,) colorize and encode one upload (in a worker thread); `mask` is the
    repair mask a person drew, used instead of the detector's; `reference` the request's
    reference photos."""
    name = item.filename or "upload"
    photo = open_photo(item.data, max_pixels=max_pixels, name=name)
    if options.restore:
        drawn = None if mask is None else decode_mask(mask, photo.gray.size)
        restored = require_restorer(restorer).restore(
            photo, options.defects_threshold, options.tone, mask=drawn
        )
        photo = restored.photo
    format_name, media_type, save_options = encoding_for(options.output_format, photo)
    result = colorizer.colorize_photo(
        photo,
        options.render_size,
        options.vividness,
        hints=options.hints,
        format_name=format_name,
        reference=reference,
    )
    return encode_photo(photo, result, format_name, **save_options), media_type, result.size


def read_references(
    colorizer: Colorizer,
    files: list[UploadedFile],
    options: Options,
    max_pixels: int,
) -> ReferenceSet:
    """The request's reference photos, read for matching (in a worker thread); `options`
    give their strength and fallback."""
    if not colorizer.takes_hints:
        raise InvalidOptionError("this server's model cannot take a reference photo")
    references = tuple(
        load_reference(colorizer, item.data, item.filename or "reference", max_pixels)
        for item in files
    )
    return ReferenceSet(references, options.reference_strength, options.reference_fallback)


def encoding_for(chosen: str, photo: Photo) -> tuple[str, str, dict[str, object]]:
    """`(Pillow format, media type, save options)` of the `format` field's choice; "auto"
    answers in the photo's own kind (`answer_format`)."""
    key = answer_format(photo).lower() if chosen == "auto" else chosen
    format_name, media_type = MEDIA_TYPES[key]
    return format_name, media_type, {"quality": 95} if format_name in ("JPEG", "WEBP") else {}


def download_name(filename: str, media_type: str, suffix: str = "colour") -> str:
    """`<stem>-<suffix>.<ext>`, with only characters safe in a header."""
    extension = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}[media_type]
    return f"{safe_stem(filename, 'photo')}-{suffix}.{extension}"


def safe_stem(filename: str, fallback: str) -> str:
    """The file name's stem with only characters safe in a header, or `fallback`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", PurePath(filename or fallback).stem)[:80] or fallback


def decode_mask(upload: UploadedFile, size: tuple[int, int]) -> np.ndarray:
    """A drawn mask (any image: repair where it is white and opaque), at the photo's `size`.

    The page draws it on its preview, so it is scaled up, nearest neighbour, to full size.
    """
    drawn = open_photo(upload.data, name=upload.filename or "mask")
    repair = np.asarray(drawn.gray.resize(size, Image.Resampling.NEAREST)) > 127
    if drawn.alpha is not None:
        repair &= np.asarray(drawn.alpha.resize(size, Image.Resampling.NEAREST)) > 127
    return repair


def require_restorer(restorer: Restorer | None) -> Restorer:
    """The server's Restorer, or a 422 saying it has none."""
    if restorer is None:
        raise InvalidOptionError("this server has no defect detector, so it cannot restore")
    return restorer


RESTORE_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "defects_threshold": {"type": "number", "minimum": 0.01, "maximum": 0.99},
                        "tone": {"type": "string", "enum": list(TONE_MODES), "default": "auto"},
                        "answer": {
                            "type": "string",
                            "enum": ["photo", "mask"],
                            "default": "photo",
                            "description": "the repaired gray photo, or the mask (PNG, white "
                            "where the photo was repaired)",
                        },
                        "format": {"type": "string", "enum": list(FORMATS), "default": "auto"},
                        "mask": {
                            "type": "string",
                            "format": "binary",
                            "description": "repair exactly here instead of the detector's "
                            "mask: an image, white (and opaque) where to repair, any size",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/restore",
    response_class=Response,
    openapi_extra=RESTORE_SCHEMA,
    responses={
        200: {"content": {"image/png": {}, "image/jpeg": {}}, "description": "photo or mask"},
        408: {"description": "the upload stalled or took too long"},
        413: {"description": "the file is over a limit"},
        415: {"description": "not an image, or a kind that cannot be read"},
        422: {"description": "a broken image, an option out of range, or no detector"},
        503: {"description": "busy: retry after the Retry-After seconds"},
    },
)
async def restore(request: Request) -> Response:
    """Repair scratches, dust, cracks and fading of one photo; it stays gray, full size.

    `X-Repaired-Pixels` says how many pixels were filled.
    """
    settings = request.app.state.settings
    admission = request.app.state.admission
    upload = await receive_upload(request, settings.max_upload_bytes, 1)
    if not upload.files:
        raise BadUploadError("no photo in the request: send it as a `file` field")
    threshold, tone = parse_restore_options(upload.fields)
    answer = (upload.fields.get("answer") or "photo").lower()
    if answer not in ("photo", "mask"):
        raise InvalidOptionError(f"answer {answer!r} is not 'photo' or 'mask'")
    output_format = (upload.fields.get("format") or "auto").lower()
    if output_format not in FORMATS:
        raise InvalidOptionError(f"format {output_format!r} is not one of {list(FORMATS)}")
    restorer = require_restorer(request.app.state.restorer)
    item = upload.files[0]

    def work() -> tuple[bytes, str, int]:
        photo = open_photo(item.data, max_pixels=settings.max_pixels, name=item.filename)
        drawn = None if upload.mask is None else decode_mask(upload.mask, photo.gray.size)
        result = restorer.restore(photo, threshold, tone, mask=drawn)
        if answer == "mask":
            return encode_mask(result.mask), "image/png", int(result.mask.sum())
        format_name, media_type, save_options = encoding_for(output_format, photo)
        body = encode_photo(result.photo, result.photo.gray, format_name, **save_options)
        return body, media_type, int(result.mask.sum())

    async with admission.admit():
        body, media_type, repaired = await anyio.to_thread.run_sync(work, limiter=admission.workers)
    name = download_name(item.filename, media_type, "mask" if answer == "mask" else "restored")
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'inline; filename="{name}"',
            "X-Repaired-Pixels": str(repaired),
        },
    )


MATCH_SCHEMA = multipart_form(
    required=["file", "reference"],
    properties={
        "file": {"type": "string", "format": "binary"},
        "reference": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "colour photos of the same things (at most 4)",
        },
    },
)


@router.post(
    "/match",
    openapi_extra=MATCH_SCHEMA,
    responses={
        413: {"description": "a file is over a limit"},
        422: {"description": "a broken photo, or a reference that is gray or unreadable"},
        503: {"description": "busy: retry after the Retry-After seconds"},
    },
)
async def match(request: Request) -> JSONResponse:
    """Where the reference photos' colours match one photo: the hints the colouring takes
    from them, in pixels of the upright photo, for a person to see and edit as pins."""
    settings = request.app.state.settings
    admission = request.app.state.admission
    upload = await receive_upload(request, settings.max_upload_bytes, 1)
    if not upload.files:
        raise BadUploadError("no photo in the request: send it as a `file` field")
    if not upload.references:
        raise BadUploadError("no reference photo in the request: send it as `reference`")
    colorizer = request.app.state.colorizer
    item = upload.files[0]

    def work() -> dict[str, object]:
        photo = open_photo(item.data, max_pixels=settings.max_pixels, name=item.filename)
        reference = read_references(colorizer, upload.references, Options(), settings.max_pixels)
        hints = reference.hints_for(colorizer, photo.gray)
        return {
            "width": photo.gray.width,
            "height": photo.gray.height,
            **json.loads(hints_to_json(hints)),
        }

    async with admission.admit():
        answer = await anyio.to_thread.run_sync(work, limiter=admission.workers)
    return JSONResponse(answer)
