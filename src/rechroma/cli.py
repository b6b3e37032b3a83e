"""The `rechroma` command line. Thin: parse, call the library, map errors to exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from rechroma import __version__
from rechroma.errors import InvalidOptionError, RechromaError
from rechroma.images import (
    FORMATS,
    PHOTO_OUTPUT_FOR,
    PHOTO_SUFFIXES,
    VIDEO_OUTPUT_FOR,
    VIDEO_SUFFIXES,
)
from rechroma.server.settings import ServerSettings

if TYPE_CHECKING:
    from rechroma.inference.batch import BatchReport
    from rechroma.inference.colorizer import Colorizer
    from rechroma.inference.hints import Hint

T = TypeVar("T")
logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1  # some inputs failed, the rest were done
# 2 is argparse's: the command line itself was wrong.
EXIT_ERROR = 3  # nothing could be done (bad config, missing weights, ...)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `rechroma` console script."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except RechromaError as exc:
        print(f"rechroma: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("rechroma: interrupted", file=sys.stderr)
        return 130


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rechroma", description="Colorize grayscale and faded black-and-white photos."
    )
    parser.add_argument("--version", action="version", version=f"rechroma {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info logs")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a colorizer on tar shards")
    _add_config_args(train, "train.steps=2000")
    train.add_argument("--run-dir", type=Path, default=Path("runs/default"))
    train.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in --run-dir"
    )
    train.set_defaults(func=_cmd_train)

    pretrain = sub.add_parser(
        "pretrain",
        help="pretrain a classifier on the shards' class labels (encoder init, perceptual loss)",
    )
    _add_config_args(pretrain, "classifier.input=rgb")
    pretrain.add_argument("--run-dir", type=Path, default=Path("runs/pretrain"))
    pretrain.set_defaults(func=_cmd_pretrain)

    colorize = sub.add_parser(
        "colorize",
        help="colorize a photo, a video clip, or a folder of them",
        description="Colorize IN (a photo, a clip, or a folder searched recursively) into OUT. "
        "Colour input is treated as its lightness: its own colours are replaced. Clips "
        "(.mp4 .mov .mkv .avi .webm) keep their size, timing and sound; out as H.264 "
        "(.mp4 .mov .mkv) or VP9 (.webm) by extension.",
    )
    colorize.add_argument("input", type=Path, metavar="IN")
    colorize.add_argument(
        "output",
        metavar="OUT",
        help="output file (format from its extension) or folder (mirrors IN's tree)",
    )
    _add_model_args(colorize)
    colorize.add_argument("--quality", type=int, default=None, help="JPEG/WebP quality (95)")
    colorize.add_argument(
        "--format",
        choices=sorted(s.lstrip(".") for s in FORMATS),
        default=None,
        help="output format for folders (default: the input's, else png)",
    )
    colorize.add_argument("--overwrite", action="store_true", help="redo outputs that exist")
    colorize.add_argument("--max-pixels", type=int, default=None, help="refuse larger images")
    colorize.add_argument(
        "--vividness",
        type=float,
        default=1.0,
        help="chroma multiplier: 0 gray, 1 as predicted (default), up to 4",
    )
    colorize.add_argument(
        "--hint",
        dest="hint_texts",
        action="append",
        default=[],
        metavar="X,Y,#RRGGBB[,R]",
        help="a known colour at pixel (X, Y) of the photo, radius R (repeatable; one photo)",
    )
    colorize.add_argument(
        "--hints",
        type=Path,
        default=None,
        metavar="JSON|FOLDER",
        help="hints JSON for one photo, or for a folder a folder of <name>.json files "
        "mirroring the input tree",
    )
    colorize.add_argument(
        "--stabilize",
        type=float,
        default=None,
        metavar="S",
        help="clips: weight in [0, 1) of the previous frame's colour where the picture is "
        "still (default 0.8; 0 colours every frame on its own)",
    )
    colorize.add_argument(
        "--crf", type=int, default=None, help="clips: encoder quality, lower is better (18/32)"
    )
    colorize.add_argument(
        "--max-seconds", type=float, default=None, help="clips: refuse longer ones"
    )
    colorize.add_argument(
        "--jobs", "-j", type=int, default=1, help="worker processes for folders (default 1)"
    )
    colorize.add_argument(
        "--failures",
        type=Path,
        default=None,
        help="write failed inputs here as TSV (default: OUT/rechroma-failures.tsv for folders)",
    )
    colorize.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="colorize a folder on Ray: alone, a local Ray; 'auto' or ray://host:10001, "
        "a cluster (pip install 'rechroma[cluster]'; put it after IN and OUT)",
    )
    colorize.add_argument(
        "--ray-actors", type=int, default=None, help="Ray actors (default: CPUs / threads)"
    )
    colorize.add_argument(
        "--ray-threads", type=int, default=1, help="torch threads per Ray actor (default 1)"
    )
    colorize.set_defaults(func=_cmd_colorize)

    prepare = sub.add_parser("prepare", help="pack a folder of photos into training shards")
    prepare.add_argument("src", type=Path, metavar="SRC_DIR")
    prepare.add_argument("out", type=Path, metavar="OUT_DIR")
    prepare.add_argument("--size", type=int, default=256, help="short side of stored photos")
    prepare.add_argument("--shard-size", type=int, default=5000, help="photos per shard")
    prepare.add_argument("--quality", type=int, default=95, help="JPEG quality in the shards")
    prepare.add_argument("--prefix", default="train", help="shard file name prefix")
    prepare.set_defaults(func=_cmd_prepare)

    evaluate = sub.add_parser(
        "eval",
        help="score the model on colour photos",
        description="Remove the colour of every photo in DATA (a folder or a .tar shard), "
        "colorize it again and compare with the original, beside the all-gray baseline.",
    )
    evaluate.add_argument("data", type=Path, metavar="DATA")
    evaluate.add_argument("--out", type=Path, required=True, help="folder for the report")
    evaluate.add_argument("--size", type=int, default=256, help="evaluation size (square)")
    evaluate.add_argument(
        "--compare",
        type=Path,
        action="append",
        default=[],
        metavar="WEIGHTS",
        help="another weights file or checkpoint to score in the same table (repeatable)",
    )
    evaluate.add_argument("--grid", type=int, default=8, help="photos in grid.png/worst.png")
    evaluate.add_argument("--seed", type=int, default=0, help="which photos go in the grid")
    evaluate.add_argument("--limit", type=int, default=None, help="evaluate the first N only")
    evaluate.add_argument(
        "--hints",
        type=int,
        default=0,
        metavar="N",
        help="give the model N colour hints per photo, sampled from its truth (seeded)",
    )
    evaluate.add_argument(
        "--lpips-weights",
        type=Path,
        default=None,
        metavar="ALEXNET",
        help="torchvision's AlexNet weights for LPIPS, .pth or .safetensors (default: "
        "$RECHROMA_LPIPS_WEIGHTS, else the fetch-weights cache)",
    )
    evaluate.add_argument(
        "--fid-weights",
        type=Path,
        default=None,
        metavar="INCEPTION_PTH",
        help="torchvision Inception-v3 weights for FID (default: the fetch-weights cache)",
    )
    _add_model_args(evaluate)
    evaluate.set_defaults(func=_cmd_eval)

    eval_video = sub.add_parser(
        "eval-video",
        help="measure flicker: colorize a clip frame by frame and stabilised, compare",
        description="Colorize CLIP twice, every frame on its own and with temporal "
        "stabilisation, and report each one's flicker (mean |delta ab| between consecutive "
        "frames where the lightness is still) and mean chroma. Without CLIP, a test clip "
        "is made: a slow pan with film grain across --photo.",
    )
    eval_video.add_argument("clip", type=Path, nargs="?", metavar="CLIP")
    eval_video.add_argument("--out", type=Path, required=True, help="folder for clips and report")
    eval_video.add_argument("--photo", type=Path, default=None, help="photo for the test clip")
    eval_video.add_argument("--stabilize", type=float, default=None, help="strength (0.8)")
    _add_model_args(eval_video)
    eval_video.set_defaults(func=_cmd_eval_video)

    fetch = sub.add_parser(
        "fetch-weights",
        help="download third-party weights that metrics need (checksum-verified)",
    )
    fetch.add_argument(
        "name",
        choices=["lpips", "fid"],
        help="lpips: torchvision's ImageNet AlexNet; fid: torchvision's Inception-v3",
    )
    fetch.add_argument("--cache-dir", type=Path, default=None, help="default ~/.cache/rechroma")
    fetch.set_defaults(func=_cmd_fetch_weights)

    export = sub.add_parser(
        "export-onnx",
        help="export the model to ONNX (checked against PyTorch when onnxruntime is installed)",
    )
    export.add_argument("out", type=Path, metavar="OUT.onnx")
    export.add_argument(
        "--weights", "--model", type=Path, default=None, help="weights file (the shipped one)"
    )
    export.set_defaults(func=_cmd_export_onnx)

    shrink = sub.add_parser(
        "export-weights",
        help="copy a checkpoint's weights and description to a file to ship (optionally fp16)",
    )
    shrink.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")
    shrink.add_argument("out", type=Path, metavar="OUT.safetensors")
    shrink.add_argument(
        "--fp16", action="store_true", help="store half precision (half the size; loads as fp32)"
    )
    shrink.set_defaults(func=_cmd_export_weights)

    plot = sub.add_parser("plot-log", help="draw a training run's loss curves to PNG")
    plot.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    plot.add_argument("--out", type=Path, default=None, help="PNG path (RUN_DIR/curves.png)")
    plot.set_defaults(func=_cmd_plot_log)

    serve = sub.add_parser("serve", help="start the web server (page, API, /docs)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    _add_model_args(serve)
    defaults = ServerSettings()
    serve.add_argument(
        "--max-upload-mb", type=float, default=defaults.max_upload_bytes / 2**20, help="per file"
    )
    serve.add_argument("--max-files", type=int, default=defaults.max_files, help="per request")
    serve.add_argument(
        "--max-megapixels", type=float, default=defaults.max_pixels / 1e6, help="per photo"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=defaults.inference_workers,
        help="photos colorized at once (threads split between them)",
    )
    serve.add_argument(
        "--queue",
        type=int,
        default=defaults.max_queue,
        help="requests that may wait; beyond that the server answers 503 with Retry-After",
    )
    serve.add_argument(
        "--max-video-mb",
        type=float,
        default=defaults.max_video_bytes / 2**20,
        help="per uploaded clip",
    )
    serve.add_argument(
        "--max-video-seconds",
        type=float,
        default=defaults.max_video_seconds,
        help="longest clip accepted",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        help="allow the API to be called from this origin's pages (off by default)",
    )
    serve.set_defaults(func=_cmd_serve)
    return parser


def _add_config_args(parser: argparse.ArgumentParser, example: str) -> None:
    parser.add_argument("--config", type=Path, help="TOML file; code defaults otherwise")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help=f"override one config value, e.g. --set {example} (repeatable)",
    )


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights", "--model", type=Path, default=None, help="weights file (the shipped one)"
    )
    parser.add_argument(
        "--render-size",
        type=int,
        default=None,
        help="short side, in pixels, at which the network sees the photo",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")


def _load_colorizer(args: argparse.Namespace) -> Colorizer:
    from rechroma.inference.colorizer import Colorizer

    return Colorizer.load(args.weights, render_size=args.render_size, threads=args.threads)


def _cmd_colorize(args: argparse.Namespace) -> int:
    from rechroma.images import DEFAULT_MAX_PIXELS
    from rechroma.inference.batch import BatchOptions, BatchReport, colorize_many

    if args.jobs < 1:
        raise InvalidOptionError(f"--jobs must be at least 1, got {args.jobs}")
    jobs = _colorize_jobs(args.input, args.output, args.format)
    pairs = jobs.pairs
    if jobs.not_images:
        print(f"rechroma: {_describe_not_images(jobs.not_images, args.input)}", file=sys.stderr)
    if not pairs and not jobs.videos:
        # A folder with nothing to colorize must never look like success.
        print(f"rechroma: no photos or clips to colorize in {args.input}", file=sys.stderr)
        return EXIT_FAILED
    hints, hints_dir = _colorize_hints(args)
    if hints and jobs.videos:
        raise InvalidOptionError("--hint/--hints are for photos, not video clips")
    options = BatchOptions(
        weights=args.weights,
        render_size=args.render_size,
        vividness=args.vividness,
        quality=args.quality,
        max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
        threads=args.threads,
        hints=hints,
        hints_dir=hints_dir,
        input_root=args.input if args.input.is_dir() else None,
    )
    ray = None
    if args.ray is not None:
        from rechroma.inference.cluster import RayOptions

        address = None if args.ray == "local" else args.ray
        ray = RayOptions(address=address, actors=args.ray_actors, threads=args.ray_threads)
    report = BatchReport()
    if pairs:
        report = colorize_many(
            pairs,
            options,
            jobs=min(args.jobs, max(1, len(pairs))),
            ray=ray,
            overwrite=args.overwrite,
            progress=len(pairs) > 1 and not args.quiet and sys.stderr.isatty(),
            on_done=lambda dst: print(dst, flush=True),
            on_failed=lambda _src, message: print(f"rechroma: failed: {message}", file=sys.stderr),
        )
    if jobs.videos:
        _colorize_videos(args, jobs.videos, report)
    failures_file = args.failures or (
        Path(args.output) / "rechroma-failures.tsv" if args.input.is_dir() else None
    )
    if failures_file is not None:
        if report.failed:
            report.write_failures(failures_file)
        elif args.failures is None:
            failures_file.unlink(missing_ok=True)  # a stale list from an earlier run would mislead
    if args.input.is_dir() or len(pairs) + len(jobs.videos) > 1 or report.skipped:
        summary = report.summary()
        if jobs.not_images:
            summary += f", {len(jobs.not_images)} not images"
        if report.skipped:
            summary += "; --overwrite redoes skipped files"
        if report.failed and failures_file is not None:
            summary += f"; failures listed in {failures_file}"
        print(f"rechroma: {summary}", file=sys.stderr)
    return EXIT_FAILED if report.failed else EXIT_OK


def _colorize_videos(
    args: argparse.Namespace, videos: list[tuple[Path, Path]], report: BatchReport
) -> None:
    """Colorize clips one after another in this process, each with every thread."""
    from rechroma.inference.batch import failure_reason
    from rechroma.inference.video import DEFAULT_STABILIZE, VideoOptions, colorize_video

    stabilize = DEFAULT_STABILIZE if args.stabilize is None else args.stabilize
    if not 0.0 <= stabilize < 1.0:
        raise InvalidOptionError(f"--stabilize must be in [0, 1), got {stabilize}")
    options = VideoOptions(
        render_size=args.render_size,
        vividness=args.vividness,
        stabilize=stabilize,
        crf=args.crf,
        max_seconds=args.max_seconds,
    )
    colorizer = _load_colorizer(args)
    for src, dst in videos:
        if dst.exists() and not args.overwrite:
            report.skipped.append(src)
            continue
        try:
            result = colorize_video(
                colorizer, src, dst, options, progress=not args.quiet and sys.stderr.isatty()
            )
        except (RechromaError, OSError) as exc:
            report.failed.append((src, failure_reason(exc), str(exc)))
            print(f"rechroma: failed: {exc}", file=sys.stderr)
            continue
        report.done.append(dst)
        logger.info(
            "%s: %d frames in %.1f s (%.1f frames/s), audio %s",
            dst,
            result.frames,
            result.seconds,
            result.frames_per_second,
            result.audio,
        )
        print(dst, flush=True)


def _colorize_hints(args: argparse.Namespace) -> tuple[tuple[Hint, ...], Path | None]:
    """`--hint`/`--hints` as (hints for the one photo, folder of per-photo hint files)."""
    from rechroma.inference.hints import HintError, parse_hint, read_hints_file

    if args.input.is_dir():
        if args.hint_texts:
            raise HintError("--hint is for one photo; for a folder, --hints FOLDER of <name>.json")
        if args.hints is not None and not args.hints.is_dir():
            raise HintError(f"--hints {args.hints}: for a folder of photos, name a folder")
        return (), args.hints
    hints = [parse_hint(text) for text in args.hint_texts]
    if args.hints is not None:
        hints += read_hints_file(args.hints)
    return tuple(hints), None


@dataclass
class _Jobs:
    """What `rechroma colorize` will do: (input, output) pairs, and files it passes over."""

    pairs: list[tuple[Path, Path]]
    not_images: list[Path] = field(default_factory=list)
    videos: list[tuple[Path, Path]] = field(default_factory=list)


def _colorize_jobs(src: Path, out: str, fmt: str | None) -> _Jobs:
    """Pair every input with its output path; folders mirror their tree.

    In a folder, files that are not photos by their extension are listed in
    `not_images` (never silently ignored); hidden files (".DS_Store") are left alone.
    """
    from rechroma.errors import ImageReadError

    dst = Path(out)
    if src.is_dir():
        if dst.exists() and not dst.is_dir():
            raise ImageReadError(f"{dst}: input is a folder, so the output must be a folder")
        # Our own outputs and failure lists, when OUT is inside IN, are not inputs.
        output_root = dst.resolve()
        files = sorted(
            p
            for p in src.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(src).parts)
            and not p.resolve().is_relative_to(output_root)
        )
        photos = [p for p in files if p.suffix.lower() in PHOTO_SUFFIXES]
        clips = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
        others = [p for p in files if p.suffix.lower() not in (*PHOTO_SUFFIXES, *VIDEO_SUFFIXES)]
        pairs = [(p, _output_name(dst / p.relative_to(src), fmt)) for p in photos]
        videos = [(p, _video_output_name(dst / p.relative_to(src))) for p in clips]
        return _Jobs(pairs, others, videos)
    if not src.exists():
        raise ImageReadError(f"{src}: no such file")
    is_clip = src.suffix.lower() in VIDEO_SUFFIXES
    if dst.is_dir() or out.endswith(("/", os.sep)):
        if is_clip:
            return _Jobs([], videos=[(src, _video_output_name(dst / src.name))])
        return _Jobs([(src, _output_name(dst / src.name, fmt))])
    return _Jobs([], videos=[(src, dst)]) if is_clip else _Jobs([(src, dst)])


def _output_name(path: Path, fmt: str | None) -> Path:
    if fmt:
        return path.with_suffix(f".{fmt}")
    suffix = path.suffix.lower()
    if suffix in FORMATS:
        return path
    return path.with_suffix(PHOTO_OUTPUT_FOR.get(suffix, ".png"))


def _video_output_name(path: Path) -> Path:
    suffix = path.suffix.lower()
    return path.with_suffix(VIDEO_OUTPUT_FOR.get(suffix, suffix))


def _describe_not_images(files: list[Path], root: Path, shown: int = 5) -> str:
    """ "3 files skipped: not images: notes.txt, a/b.pdf, scan.xcf" (the first few names)."""
    names = [str(p.relative_to(root)) for p in files[:shown]]
    more = f", ... ({len(files) - shown} more)" if len(files) > shown else ""
    noun = "file" if len(files) == 1 else "files"
    return f"{len(files)} {noun} skipped: not images: {', '.join(names)}{more}"


def _cmd_prepare(args: argparse.Namespace) -> int:
    from rechroma.data.prepare import prepare_shards

    report = prepare_shards(
        args.src,
        args.out,
        args.size,
        args.shard_size,
        args.quality,
        args.prefix,
        progress=not args.quiet,
    )
    print(
        json.dumps(
            {
                "written": report.written,
                "skipped": len(report.skipped),
                "shards": [str(p) for p in report.shards],
            }
        )
    )
    if report.skipped:
        print(f"rechroma: skipped {len(report.skipped)} unreadable files", file=sys.stderr)
    return EXIT_OK


def _cmd_eval(args: argparse.Namespace) -> int:
    from rechroma.evaluation.evaluate import evaluate, write_report
    from rechroma.evaluation.fid import load_inception
    from rechroma.evaluation.lpips import load_lpips
    from rechroma.inference.colorizer import Colorizer

    colorizers = [_load_colorizer(args)]
    colorizers += [
        Colorizer.load(path, render_size=colorizers[0].render_size) for path in args.compare
    ]
    if args.hints < 0:
        raise InvalidOptionError(f"--hints must be 0 or more, got {args.hints}")
    if args.hints and not all(c.takes_hints for c in colorizers):
        names = [c.info.model_name for c in colorizers if not c.takes_hints]
        raise InvalidOptionError(f"--hints: model {names[0]!r} does not take colour hints")
    methods, models = {}, {}
    for colorizer in colorizers:
        name = _unique_name(Path(str(colorizer.weights_path)).stem, methods)
        methods[name] = colorizer.colorize
        models[name] = {
            "weights": str(colorizer.weights_path),
            "sha256": colorizer.weights_sha256,
            "step": colorizer.info.step,
            "render_size": colorizer.render_size,
        }
    lpips, lpips_status = _optional_metric("LPIPS", load_lpips, args.lpips_weights)
    inception, fid_status = _optional_metric("FID", load_inception, args.fid_weights)
    result = evaluate(
        methods,
        args.data,
        size=args.size,
        grid_count=args.grid,
        seed=args.seed,
        limit=args.limit,
        lpips=lpips,
        lpips_status=lpips_status,
        inception=inception,
        fid_status=fid_status,
        progress=not args.quiet,
        hints=args.hints,
    )
    write_report(result, args.out, extra={"models": models})
    print(json.dumps(json.loads((args.out / "metrics.json").read_text()), indent=2))
    return EXIT_OK


def _cmd_eval_video(args: argparse.Namespace) -> int:
    from PIL import Image

    from rechroma.evaluation.video import compare_stabilization, make_pan_clip
    from rechroma.inference.video import DEFAULT_STABILIZE, VideoOptions

    clip = args.clip
    if clip is None:
        if args.photo is None:
            raise InvalidOptionError("give a CLIP, or --photo to make a test clip from")
        args.out.mkdir(parents=True, exist_ok=True)
        with Image.open(args.photo) as photo:
            clip = make_pan_clip(photo, args.out / "test-clip.mp4")
    stabilize = DEFAULT_STABILIZE if args.stabilize is None else args.stabilize
    if not 0.0 < stabilize < 1.0:
        raise InvalidOptionError(f"--stabilize must be in (0, 1), got {stabilize}")
    report = compare_stabilization(
        _load_colorizer(args),
        clip,
        args.out,
        VideoOptions(render_size=args.render_size, stabilize=stabilize),
        progress=not args.quiet and sys.stderr.isatty(),
    )
    print(json.dumps(report, indent=2))
    return EXIT_OK


def _optional_metric(
    label: str, load: Callable[[Path | None], T], weights: Path | None
) -> tuple[T | None, str]:
    """Load a metric's network, or say on stderr (and in the report) why it is unavailable."""
    from rechroma.errors import MetricUnavailable

    try:
        return load(weights), "available"
    except MetricUnavailable as exc:
        status = f"unavailable ({exc})"
        print(f"rechroma: {label}: {status}", file=sys.stderr)
        return None, status


def _unique_name(name: str, taken: dict[str, object]) -> str:
    candidate, index = name, 2
    while candidate in taken:
        candidate, index = f"{name}-{index}", index + 1
    return candidate


def _cmd_fetch_weights(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rechroma.evaluation.downloads import KNOWN_FILES, fetch

    remote = KNOWN_FILES[args.name]
    with tqdm(total=remote.size, unit="B", unit_scale=True, disable=args.quiet) as bar:

        def progress(received: int, total: int | None) -> None:
            bar.total = total
            bar.update(received - bar.n)

        path = fetch(remote, args.cache_dir, progress=progress)
    print(path)
    return EXIT_OK


def _cmd_export_weights(args: argparse.Namespace) -> int:
    import torch

    from rechroma.models.checkpoint import file_sha256, load_generator, save_weights

    model, info = load_generator(args.checkpoint)
    dtype = torch.float16 if args.fp16 else None
    save_weights(
        args.out, model, info.model_name, info.model_kwargs, info.step, info.config, dtype=dtype
    )
    size = args.out.stat().st_size
    print(json.dumps({"weights": str(args.out), "bytes": size, "sha256": file_sha256(args.out)}))
    return EXIT_OK


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    from rechroma.inference.colorizer import DEFAULT_WEIGHTS
    from rechroma.inference.onnx_export import check_onnx, export_onnx

    weights = args.weights or DEFAULT_WEIGHTS
    path = export_onnx(weights, args.out)
    report: dict[str, object] = {"onnx": str(path)}
    try:
        check = check_onnx(path, weights)
    except ModuleNotFoundError:
        report["check"] = "not run: onnxruntime is not installed"
    else:
        report["check"] = {"input_shape": list(check.shape), "max_abs_diff": check.max_abs_diff}
    print(json.dumps(report))
    return EXIT_OK


def _cmd_plot_log(args: argparse.Namespace) -> int:
    from rechroma.evaluation.plots import plot_training_log

    print(plot_training_log(args.run_dir, args.out))
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from rechroma.server.app import create_app

    settings = ServerSettings(
        weights=args.weights,
        render_size=args.render_size,
        threads=args.threads,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=int(args.max_megapixels * 1e6),
        max_files=args.max_files,
        inference_workers=args.workers,
        max_queue=args.queue,
        max_video_bytes=int(args.max_video_mb * 2**20),
        max_video_seconds=args.max_video_seconds,
        cors_origins=tuple(args.cors_origin),
    )
    app = create_app(settings, colorizer=_load_colorizer(args))
    print(f"rechroma: serving on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info")
    return EXIT_OK


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from rechroma.training.config import PretrainConfig, load_config
    from rechroma.training.pretrain import pretrain

    cfg = load_config(args.config, args.overrides, cls=PretrainConfig)
    result = pretrain(cfg, args.run_dir, progress=not args.quiet)
    print(
        json.dumps(
            {
                "weights": str(result.weights),
                "top1": result.top1,
                "top5": result.top5,
                "test_images": result.test_images,
            }
        )
    )
    return EXIT_OK


def _cmd_train(args: argparse.Namespace) -> int:
    from rechroma.training.config import config_to_dict, load_config
    from rechroma.training.train import load_run_config, train

    # A resumed run starts from its own saved config; --config and --set still apply on top.
    base = config_to_dict(load_run_config(args.run_dir)) if args.resume else None
    cfg = load_config(args.config, args.overrides, base=base)
    final = train(cfg, args.run_dir, resume=args.resume, progress=not args.quiet)
    print(json.dumps({"checkpoint": str(final)}))
    return EXIT_OK
