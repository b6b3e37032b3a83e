"""`rechroma eval` (photos against their truth) and `rechroma eval-video` (flicker)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from rechroma.cli.options import (
    EXIT_OK,
    add_model_args,
    float_in,
    int_in,
    load_colorizer,
    print_json,
    say,
)
from rechroma.errors import InvalidOptionError

T = TypeVar("T")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add `eval` and `eval-video`."""
    evaluate = sub.add_parser(
        "eval",
        parents=[common],
        help="score the model on colour photos",
        description="Remove the colour of every photo in DATA (a folder or a .tar shard), "
        "colorize it again and compare with the original, beside the all-gray baseline.",
    )
    evaluate.add_argument("data", type=Path, metavar="DATA")
    evaluate.add_argument("--out", type=Path, required=True, help="folder for the report")
    evaluate.add_argument("--size", type=int_in(16, 4096), default=256, help="evaluation size")
    evaluate.add_argument(
        "--compare",
        type=Path,
        action="append",
        default=[],
        metavar="WEIGHTS",
        help="another weights file or checkpoint to score in the same table (repeatable)",
    )
    evaluate.add_argument("--grid", type=int_in(0), default=8, help="photos in grid.png/worst.png")
    evaluate.add_argument("--seed", type=int, default=0, help="which photos go in the grid")
    evaluate.add_argument("--limit", type=int_in(1), default=None, help="the first N only")
    evaluate.add_argument(
        "--hints",
        type=int_in(0),
        default=0,
        metavar="N",
        help="give the model N colour hints per photo, sampled from its truth (seeded)",
    )
    evaluate.add_argument(
        "--reference",
        choices=("counterfactual", "frames", "unrelated"),
        default=None,
        metavar="MODE",
        help="score colour from a reference photo made for each photo: counterfactual (its "
        "truth with the chroma turned, cropped and mirrored), frames (another view of the "
        "scene) or unrelated (another photo of the set), beside no reference, the global "
        "transfer and an oracle",
    )
    evaluate.add_argument(
        "--turn",
        type=float_in(-180.0, 180.0),
        default=90.0,
        metavar="DEGREES",
        help="--reference counterfactual: how far the truth's chroma is turned in Lab (90)",
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
    add_model_args(evaluate)
    evaluate.set_defaults(func=run_eval)

    eval_video = sub.add_parser(
        "eval-video",
        parents=[common],
        help="measure flicker: colorize a clip frame by frame and stabilised, compare",
        description="Colorize CLIP twice, every frame on its own and with temporal "
        "stabilisation, and report each one's flicker (mean |delta ab| between consecutive "
        "frames where the lightness is still) and mean chroma. Without CLIP, a test clip "
        "is made: a slow pan with film grain across --photo.",
    )
    eval_video.add_argument("clip", type=Path, nargs="?", metavar="CLIP")
    eval_video.add_argument("--out", type=Path, required=True, help="folder for clips and report")
    eval_video.add_argument("--photo", type=Path, default=None, help="photo for the test clip")
    eval_video.add_argument(
        "--stabilize",
        type=float_in(0.0, 1.0, high_open=True),
        default=None,
        help="strength in (0, 1), default 0.8",
    )
    add_model_args(eval_video)
    eval_video.set_defaults(func=run_eval_video)


def run_eval(args: argparse.Namespace) -> int:
    from rechroma.evaluation.evaluate import evaluate, write_report
    from rechroma.evaluation.fid import load_inception
    from rechroma.evaluation.lpips import load_lpips
    from rechroma.inference.colorizer import Colorizer

    colorizers = [load_colorizer(args)]
    colorizers += [
        Colorizer.load(path, render_size=colorizers[0].render_size) for path in args.compare
    ]
    if args.hints and not all(c.takes_hints for c in colorizers):
        names = [c.info.model_name for c in colorizers if not c.takes_hints]
        raise InvalidOptionError(f"--hints: model {names[0]!r} does not take colour hints")
    methods, models = {}, {}
    for colorizer in colorizers:
        name = _unique_name(Path(str(colorizer.weights_path)).stem, methods)
        methods[name] = colorizer  # re-renderable: the report gets its colour frontier
        models[name] = {
            "weights": str(colorizer.weights_path),
            "sha256": colorizer.weights_sha256,
            "step": colorizer.info.step,
            "chroma_gain": colorizer.chroma_gain,
            "render_size": colorizer.render_size,
        }
    lpips, lpips_status = _optional_metric("LPIPS", load_lpips, args.lpips_weights)
    if args.reference is not None:
        return _run_eval_reference(args, colorizers, lpips, lpips_status)
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
    print_json(json.loads((args.out / "metrics.json").read_text()), indent=2)
    return EXIT_OK


def _run_eval_reference(args: argparse.Namespace, colorizers, lpips, lpips_status: str) -> int:
    from rechroma.evaluation.reference import evaluate_reference, write_reference_report

    if args.compare or args.hints:
        raise InvalidOptionError("--reference scores one model, without --compare or --hints")
    if not colorizers[0].takes_hints:
        raise InvalidOptionError(
            f"--reference: model {colorizers[0].info.model_name!r} does not take colour hints"
        )
    result = evaluate_reference(
        colorizers[0],
        args.data,
        args.reference,
        size=args.size,
        limit=args.limit,
        seed=args.seed,
        turn=args.turn,
        lpips=lpips,
        lpips_status=lpips_status,
        grid_count=args.grid,
        progress=not args.quiet,
    )
    write_reference_report(result, args.out)
    print_json(result.summary, indent=2)
    return EXIT_OK


def run_eval_video(args: argparse.Namespace) -> int:
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
    if stabilize == 0.0:
        raise InvalidOptionError("--stabilize must be in (0, 1): 0 has nothing to compare")
    report = compare_stabilization(
        load_colorizer(args),
        clip,
        args.out,
        VideoOptions(render_size=args.render_size, stabilize=stabilize),
        progress=not args.quiet and sys.stderr.isatty(),
    )
    print_json(report, indent=2)
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
        say(f"{label}: {status}")
        return None, status


def _unique_name(name: str, taken: dict[str, object]) -> str:
    candidate, index = name, 2
    while candidate in taken:
        candidate, index = f"{name}-{index}", index + 1
    return candidate
