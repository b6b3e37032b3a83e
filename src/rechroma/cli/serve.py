"""`rechroma serve`: the page, the API and /docs on one port."""

from __future__ import annotations

import argparse
from pathlib import Path

from rechroma.cli.options import (
    EXIT_OK,
    add_model_args,
    float_in,
    int_in,
    load_colorizer,
    require_extra,
)
from rechroma.server.settings import ServerSettings


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add `serve`."""
    serve = sub.add_parser(
        "serve", parents=[common], help="start the web server (page, API, /docs)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int_in(0, 65535), default=8000)
    add_model_args(serve)
    serve.add_argument(
        "--detector", type=Path, default=None, help="defect detector weights (the shipped one)"
    )
    defaults = ServerSettings()
    serve.add_argument(
        "--max-upload-mb",
        type=float_in(0.001, 1e6),
        default=defaults.max_upload_bytes / 2**20,
        help="per file",
    )
    serve.add_argument(
        "--max-files", type=int_in(1), default=defaults.max_files, help="per request"
    )
    serve.add_argument(
        "--max-megapixels",
        type=float_in(0.001, 1e4),
        default=defaults.max_pixels / 1e6,
        help="per photo",
    )
    serve.add_argument(
        "--workers",
        type=int_in(1),
        default=defaults.inference_workers,
        help="photos colorized at once (threads split between them)",
    )
    serve.add_argument(
        "--queue",
        type=int_in(0),
        default=defaults.max_queue,
        help="requests that may wait; beyond that the server answers 503 with Retry-After",
    )
    serve.add_argument(
        "--max-video-mb",
        type=float_in(0.001, 1e6),
        default=defaults.max_video_bytes / 2**20,
        help="per uploaded clip",
    )
    serve.add_argument(
        "--max-video-seconds",
        type=float_in(0.001, 1e6),
        default=defaults.max_video_seconds,
        help="longest clip accepted",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        help="allow the API to be called from this origin's pages (off by default)",
    )
    serve.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require_extra(("fastapi", "uvicorn", "multipart"), "serve", "rechroma serve")
    import uvicorn

    from rechroma.server.app import create_app, uvicorn_limits

    settings = ServerSettings(
        weights=args.weights,
        detector=args.detector,
        render_size=args.render_size,
        threads=args.threads,
        runtime=args.runtime,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=int(args.max_megapixels * 1e6),
        max_files=args.max_files,
        inference_workers=args.workers,
        max_queue=args.queue,
        max_video_bytes=int(args.max_video_mb * 2**20),
        max_video_seconds=args.max_video_seconds,
        cors_origins=tuple(args.cors_origin),
    )
    app = create_app(settings, colorizer=load_colorizer(args))
    print(f"rechroma: serving on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning" if args.quiet else "info",
        **uvicorn_limits(settings),
    )
    return EXIT_OK
