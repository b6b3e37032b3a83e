"""`rechroma colorize`: a photo, a clip, a folder of them, or stdin to stdout."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rechroma.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    add_model_args,
    add_output_args,
    add_restore_args,
    float_in,
    int_in,
    load_colorizer,
    restore_options,
    say,
)
from rechroma.cli.report import announce_skipped, summarise, write_failures
from rechroma.errors import InvalidOptionError, OutputWriteError, RechromaError
from rechroma.images import DEFAULT_MAX_PIXELS
from rechroma.paths import STDIO

if TYPE_CHECKING:
    from rechroma.inference.files import BatchReport
    from rechroma.inference.hints import Hint
    from rechroma.inference.reference import ReferenceOptions

logger = logging.getLogger(__name__)

MAX_VIVIDNESS = 4.0  # the Colorizer's own bound, checked here once for a whole folder
MAX_CRF = 63


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add `colorize`."""
    colorize = sub.add_parser(
        "colorize",
        aliases=["colourize"],
        parents=[common],
        help="colorize a photo, a video clip, or a folder of them",
        description="Colorize IN (a photo, a clip, or a folder searched recursively) into OUT. "
        "Colour input is treated as its lightness: its own colours are replaced. Clips "
        "(.mp4 .mov .mkv .avi .webm) keep their size, timing and sound; out as H.264 "
        "(.mp4 .mov .mkv) or VP9 (.webm) by extension. '-' as IN reads one photo from "
        "stdin, as OUT writes it to stdout.",
    )
    colorize.add_argument("input", metavar="IN", help="photo, clip, folder, or - for stdin")
    colorize.add_argument(
        "output",
        metavar="OUT",
        nargs="?",
        default=None,
        help="output file (format from its extension), folder (mirrors IN's tree), or - for "
        "stdout; default: beside IN, photo.jpg -> photo-colour.jpg, scans/ -> scans-colour/",
    )
    # Shown in this order by --help: what most people change first.
    colour = colorize.add_argument_group("colour")
    files = colorize.add_argument_group("output files")
    repair = colorize.add_argument_group("repair of old prints")
    model = colorize.add_argument_group("model and speed")
    clips = colorize.add_argument_group("video clips")
    many = colorize.add_argument_group("many photos: worker processes, Ray")
    add_output_args(files)
    add_model_args(model)
    colour.add_argument(
        "--vividness",
        type=float_in(0.0, MAX_VIVIDNESS),
        default=1.0,
        help=f"chroma multiplier: 0 gray, 1 as predicted (default), up to {MAX_VIVIDNESS:g}",
    )
    colour.add_argument(
        "--hint",
        dest="hint_texts",
        action="append",
        default=[],
        metavar="X,Y,COLOUR[,R]",
        help="a known colour (#rrggbb or a CSS name such as navy) at pixel (X, Y) of the "
        "photo, radius R (repeatable; one photo)",
    )
    colour.add_argument(
        "--hints",
        type=Path,
        default=None,
        metavar="JSON|FOLDER",
        help="hints JSON for one photo, or for a folder a folder of <name>.json files "
        "mirroring the input tree",
    )
    colour.add_argument(
        "--reference",
        dest="references",
        type=Path,
        action="append",
        default=[],
        metavar="PHOTO|FOLDER",
        help="a colour photo of the same things (a folder: several, pooled); its colours, "
        "matched to each photo, guide the colouring (repeatable)",
    )
    colour.add_argument(
        "--reference-strength",
        type=float_in(0.0, 1.0),
        default=1.0,
        metavar="S",
        help="0 the automatic colour, 1 the reference's in full (default)",
    )
    colour.add_argument(
        "--reference-fallback",
        choices=("none", "global"),
        default="none",
        help="where nothing in a photo matches the reference: keep the automatic colour "
        "(none, default) or move it to the reference's colour statistics (global)",
    )
    colour.add_argument(
        "--consistent",
        action="store_true",
        help="a folder: colour it twice, so that what recurs across its photos (a coat, a "
        "house) keeps one colour in all of them",
    )
    clips.add_argument(
        "--stabilize",
        type=float_in(0.0, 1.0, high_open=True),
        default=None,
        metavar="S",
        help="clips: weight in [0, 1) of the previous frame's colour where the picture is "
        "still (default 0.8; 0 colours every frame on its own)",
    )
    clips.add_argument(
        "--network-every",
        type=int_in(1, 12),
        default=None,
        metavar="N",
        help="clips: on a steady shot, run the network on every N-th frame and carry the "
        "colour along the motion between (default 3; 1: every frame)",
    )
    clips.add_argument(
        "--crf",
        type=int_in(0, MAX_CRF),
        default=None,
        help="clips: encoder quality, lower is better (18/32)",
    )
    clips.add_argument(
        "--max-seconds", type=float_in(0.001, 1e7), default=None, help="clips: refuse longer ones"
    )
    many.add_argument(
        "--jobs", "-j", type=int_in(1, 256), default=1, help="worker processes for folders (1)"
    )
    repair.add_argument(
        "--restore",
        action="store_true",
        help="repair scratches, dust, cracks and fading first (see rechroma restore)",
    )
    add_restore_args(repair, prefix="with --restore: ")
    many.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="colorize a folder on Ray: alone, a local Ray; 'auto' or ray://host:10001, "
        "a cluster (pip install 'rechroma[cluster]'; put it after IN and OUT)",
    )
    many.add_argument(
        "--ray-actors", type=int_in(1), default=None, help="Ray actors (default: CPUs / threads)"
    )
    many.add_argument(
        "--ray-threads", type=int_in(1), default=1, help="torch threads per Ray actor (default 1)"
    )
    colorize.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.output is None:
        from rechroma.paths import default_output

        source = args.input
        args.output = STDIO if source == STDIO else str(default_output(Path(source), args.format))
    if STDIO in (args.input, args.output):
        return _run_stdio(args)
    from rechroma.inference.batch import BatchOptions, BatchReport, colorize_many
    from rechroma.paths import check_writable, plan_outputs

    source = Path(args.input)
    plan = plan_outputs(source, args.output, args.format)
    announce_skipped(plan, source)
    if plan.empty:
        # A folder with nothing to colorize must never look like success.
        say(f"no photos or clips to colorize in {source}")
        return EXIT_FAILED
    hints, hints_dir = _hints(args, source)
    if hints and plan.videos:
        raise InvalidOptionError("--hint/--hints are for photos, not video clips")
    if hints:
        _check_hints_fit(hints, source)
    if args.restore and plan.videos:
        raise InvalidOptionError("--restore is for photos; clips are coloured as they are")
    reference = _reference_options(args)
    if args.consistent:
        if not source.is_dir() or hints or hints_dir or reference:
            raise InvalidOptionError(
                "--consistent is for a folder of photos, without --hint(s) or --reference"
            )
        hints_dir = _consistent_hints_dir(args, source, plan.pairs)
    # Every output folder must take files before the first photo is coloured.
    for folder in sorted({dst.parent for _, dst in (*plan.pairs, *plan.videos)}):
        check_writable(folder)
    options = BatchOptions(
        weights=args.weights,
        render_size=args.render_size,
        vividness=args.vividness,
        quality=args.quality,
        max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
        threads=args.threads,
        runtime=args.runtime,
        hints=hints,
        hints_dir=hints_dir,
        input_root=source if source.is_dir() else None,
        restore=restore_options(args) if args.restore else None,
        reference=reference,
    )
    ray = None
    if args.ray is not None:
        from rechroma.inference.cluster import RayOptions

        address = None if args.ray == "local" else args.ray
        ray = RayOptions(address=address, actors=args.ray_actors, threads=args.ray_threads)
    report = BatchReport()
    if plan.pairs:
        report = colorize_many(
            plan.pairs,
            options,
            jobs=min(args.jobs, max(1, len(plan.pairs))),
            ray=ray,
            overwrite=args.overwrite,
            progress=len(plan.pairs) > 1 and not args.quiet and sys.stderr.isatty(),
            on_done=None if args.json else (lambda dst: print(dst, flush=True)),
            on_failed=lambda _src, message: say(f"failed: {message}"),
        )
    if plan.videos:
        _colorize_videos(args, plan.videos, report, reference)
    failures_file = write_failures(args, source, report)
    summarise(args, source, plan, report, failures_file)
    return EXIT_FAILED if report.failed else EXIT_OK


def _run_stdio(args: argparse.Namespace) -> int:
    """One photo from stdin and/or to stdout: `rechroma colorize - - < old.jpg > new.jpg`."""
    from rechroma.images import (
        answer_format,
        encode_photo,
        open_photo,
        output_format,
        write_atomically,
    )

    if args.input != STDIO and Path(args.input).is_dir():
        raise InvalidOptionError("a folder's outputs cannot go to stdout; name an OUT folder")
    hints, _ = _hints(args, None)
    if args.input == STDIO:
        data, name = sys.stdin.buffer.read(), "stdin"
    else:
        data, name = Path(args.input).read_bytes(), args.input
    photo = open_photo(data, max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, name=name)
    if args.output == STDIO:
        default = "jpg" if answer_format(photo) == "JPEG" else "png"
        target = Path(f"stdout.{args.format or default}")
    else:
        target = Path(args.output)
    format_name, save_options = output_format(target)
    if args.quality is not None and "quality" in save_options:
        save_options = {**save_options, "quality": args.quality}
    colorizer = load_colorizer(args)
    reference = _reference_options(args)
    result = colorizer.colorize_photo(
        photo,
        vividness=args.vividness,
        hints=hints,
        format_name=format_name,
        reference=reference.load(colorizer) if reference else None,
    )
    encoded = encode_photo(photo, result, format_name, **save_options)
    if args.output == STDIO:
        try:
            sys.stdout.buffer.write(encoded)
            sys.stdout.buffer.flush()
        except OSError as exc:
            raise OutputWriteError(f"stdout: cannot write the output ({exc})") from exc
    else:
        write_atomically(target, encoded)
        print(target, flush=True)
    return EXIT_OK


def _colorize_videos(
    args: argparse.Namespace,
    videos: list[tuple[Path, Path]],
    report: BatchReport,
    reference: ReferenceOptions | None = None,
) -> None:
    """Colorize clips one after another in this process, each with every thread."""
    from rechroma.inference.files import failure_reason
    from rechroma.inference.video import (
        DEFAULT_NETWORK_EVERY,
        DEFAULT_STABILIZE,
        VideoOptions,
        colorize_video,
    )

    options = VideoOptions(
        render_size=args.render_size,
        vividness=args.vividness,
        stabilize=DEFAULT_STABILIZE if args.stabilize is None else args.stabilize,
        network_every=args.network_every or DEFAULT_NETWORK_EVERY,
        crf=args.crf,
        max_seconds=args.max_seconds,
    )
    colorizer = load_colorizer(args)
    if reference is not None:
        options = replace(options, reference=reference.load(colorizer))
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
            say(f"failed: {exc}")
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
        if not args.json:
            print(dst, flush=True)


def _consistent_hints_dir(
    args: argparse.Namespace, source: Path, pairs: list[tuple[Path, Path]]
) -> Path:
    """`--consistent`'s first pass: every photo coloured small, the colours the folder
    agrees on found, and written as a hints file per photo (mirroring the folder) in a
    temporary folder that the second pass, the ordinary colouring, reads."""
    import atexit
    import shutil
    import tempfile

    from tqdm import tqdm

    from rechroma.images import open_photo
    from rechroma.inference.consistent import consistent_hints, first_pass_copy
    from rechroma.inference.hints import hints_to_json

    colorizer = load_colorizer(args)
    photos, readable = [], []
    for src, _ in pairs:
        try:
            photo = open_photo(src, max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS)
        except RechromaError:
            continue  # the second pass reports it
        photos.append((first_pass_copy(photo.gray), photo.gray.size))
        readable.append(src)
    folder = Path(tempfile.mkdtemp(prefix="rechroma-consistent-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    with tqdm(
        total=2 * len(photos), desc="consistent colours", unit="step",
        disable=args.quiet or not sys.stderr.isatty(),
    ) as bar:  # fmt: skip
        answers = consistent_hints(colorizer, photos, bar.update)
    for src, hints in zip(readable, answers, strict=True):
        if hints:
            path = folder / src.relative_to(source).with_suffix(".json")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(hints_to_json(hints))
    logger.info(
        "--consistent: %d of %d photos get the folder's colours",
        sum(map(bool, answers)),
        len(answers),
    )
    return folder


def _reference_options(args: argparse.Namespace) -> ReferenceOptions | None:
    """`--reference` and its options, the references checked before any photo is coloured."""
    if not args.references:
        if args.reference_strength != 1.0 or args.reference_fallback != "none":
            raise InvalidOptionError("--reference-strength/--reference-fallback need --reference")
        return None
    from rechroma.inference.reference import ReferenceOptions, check_reference_files

    check_reference_files(args.references, args.max_pixels or DEFAULT_MAX_PIXELS)
    return ReferenceOptions(
        tuple(args.references), args.reference_strength, args.reference_fallback
    )


def _check_hints_fit(hints: tuple[Hint, ...], photo: Path) -> None:
    """Refuse hints outside the photo before any work, as every other bad hint is."""
    from rechroma.images import upright_size
    from rechroma.inference.hints import validate_hints

    size = upright_size(photo)
    if size is not None:  # an unreadable photo fails with its own reason
        validate_hints(hints, *size)


def _hints(args: argparse.Namespace, source: Path | None) -> tuple[tuple[Hint, ...], Path | None]:
    """`--hint`/`--hints` as (hints for the one photo, folder of per-photo hint files)."""
    from rechroma.inference.hints import HintError, parse_hint, read_hints_file

    if source is not None and source.is_dir():
        if args.hint_texts:
            raise HintError("--hint is for one photo; for a folder, --hints FOLDER of <name>.json")
        if args.hints is not None and not args.hints.is_dir():
            raise HintError(f"--hints {args.hints}: for a folder of photos, name a folder")
        return (), args.hints
    hints = [parse_hint(text) for text in args.hint_texts]
    if args.hints is not None:
        hints += read_hints_file(args.hints)
    return tuple(hints), None
