"""`rechroma restore`: repair scratches, dust, cracks and fading; the photo stays gray."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rechroma.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    add_detector_args,
    add_output_args,
    add_restore_args,
    float_in,
    int_in,
    print_json,
    restore_options,
    say,
)
from rechroma.cli.report import announce_skipped, summarise, write_failures
from rechroma.errors import InvalidOptionError, RechromaError
from rechroma.images import DEFAULT_MAX_PIXELS


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add `restore`."""
    restore = sub.add_parser(
        "restore",
        parents=[common],
        help="repair scratches, dust, cracks and fading of scanned prints (stays gray)",
        description="Find print damage in IN (a photo, or a folder searched recursively) "
        "with the defect detector, fill it from its surroundings, repair faded tone, and "
        "write the repaired gray photo to OUT at the input's size. Folders work as for "
        "colorize: the tree is mirrored, done outputs are skipped, failures are listed.",
    )
    restore.add_argument("input", type=Path, metavar="IN")
    restore.add_argument("output", metavar="OUT", help="output file or folder")
    add_restore_args(restore)
    add_output_args(restore)
    restore.add_argument(
        "--threads", type=int_in(1, 256), default=None, help="CPU threads for torch"
    )
    restore.set_defaults(func=run)

    evaluate = sub.add_parser(
        "eval-restore",
        parents=[common],
        help="score the repair on photos damaged by the seeded generator",
        description="Damage every photo of DATA (a folder or a .tar shard) with the seeded "
        "print-damage generator, repair it, and report PSNR/SSIM against the clean photo "
        "(beside the damaged one), mask precision/recall/F1, and the share of pixels the "
        "repair changes on the clean photos.",
    )
    evaluate.add_argument("data", type=Path, metavar="DATA")
    evaluate.add_argument("--out", type=Path, required=True, help="folder for the report")
    evaluate.add_argument("--limit", type=int_in(1), default=None, help="the first N only")
    evaluate.add_argument(
        "--max-side", type=int_in(64, 8192), default=1024, help="shrink larger photos to this"
    )
    evaluate.add_argument(
        "--enlarge-to",
        type=int_in(64, 8192),
        default=None,
        metavar="SIDE",
        help="enlarge smaller photos to this long side first, so the damage is drawn at a "
        "scan's scale (a detector chosen on thumbnails alone can miss a scan's wide damage)",
    )
    evaluate.add_argument(
        "--grain",
        type=float_in(0, 64),
        default=0.0,
        metavar="LEVELS",
        help="film grain of this standard deviation on every photo before its damage, as "
        "on a scan of a grainy print (the grain is to be kept)",
    )
    evaluate.add_argument("--grid", type=int_in(0), default=6, help="photos in grid.png")
    evaluate.add_argument(
        "--real",
        type=Path,
        default=None,
        metavar="DIR",
        help="also score real damaged prints against their hand-marked masks: DIR holds "
        "NAME-mask.png per print (white where damaged), the print beside it or named in "
        "DIR/sources.json",
    )
    add_detector_args(evaluate)
    evaluate.add_argument("--threads", type=int_in(1, 256), default=None)
    evaluate.set_defaults(func=run_eval)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rechroma.inference.files import BatchReport, failure_reason
    from rechroma.paths import check_writable, plan_outputs
    from rechroma.restoration.restorer import mask_path_for

    plan = plan_outputs(args.input, args.output, args.format)
    announce_skipped(plan, args.input)
    if plan.videos:
        raise InvalidOptionError("restore is for photos; clips are not repaired")
    if not plan.pairs:
        say(f"no photos to restore in {args.input}")
        return EXIT_FAILED
    for folder in sorted({dst.parent for _, dst in plan.pairs}):
        check_writable(folder)
    options = restore_options(args)
    restorer = options.load(args.threads)
    report = BatchReport()
    todo = []
    for src, dst in plan.pairs:
        if dst.exists() and not args.overwrite:
            report.skipped.append(dst)
        else:
            todo.append((src, dst))
    show = len(todo) > 1 and not args.quiet and sys.stderr.isatty()
    for src, dst in tqdm(todo, desc="restore", unit="photo", disable=not show):
        try:
            restorer.restore_file(
                src,
                dst,
                quality=args.quality,
                max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
                threshold=options.threshold,
                tone=options.tone,
                tone_strength=options.tone_strength,
                mask_path=mask_path_for(dst) if options.save_mask else None,
            )
        except (RechromaError, OSError, MemoryError) as exc:  # one file never stops a folder
            message = str(exc) if isinstance(exc, RechromaError) else f"{src}: {exc}"
            report.failed.append((src, failure_reason(exc), message))
            with tqdm.external_write_mode():  # the bar steps aside for the line
                say(f"failed: {message}")
            continue
        report.done.append(dst)
        if not args.json:
            with tqdm.external_write_mode():
                print(dst, flush=True)
    failures_file = write_failures(args, args.input, report)
    summarise(args, args.input, plan, report, failures_file)
    return EXIT_FAILED if report.failed else EXIT_OK


def run_eval(args: argparse.Namespace) -> int:
    from rechroma.evaluation.restore import evaluate_restoration, write_restore_report
    from rechroma.restoration import Restorer

    scales = tuple(args.defects_scales) if args.defects_scales else None
    restorer = Restorer.load(args.detector, args.defects_threshold, args.threads, scales=scales)
    result = evaluate_restoration(
        restorer,
        args.data,
        limit=args.limit,
        max_side=args.max_side,
        enlarge_to=args.enlarge_to,
        grain=args.grain,
        grid_count=args.grid,
        progress=not args.quiet,
        real=args.real,
    )
    write_restore_report(result, args.out)
    print_json(result.summary, indent=2)
    return EXIT_OK
