"""`rechroma prepare`: pack a folder of photos into training shards."""

from __future__ import annotations

import argparse
from pathlib import Path

from rechroma.cli.options import EXIT_OK, int_in, print_json, say


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add `prepare`."""
    prepare = sub.add_parser(
        "prepare", parents=[common], help="pack a folder of photos into training shards"
    )
    prepare.add_argument("src", type=Path, metavar="SRC_DIR")
    prepare.add_argument("out", type=Path, metavar="OUT_DIR")
    prepare.add_argument("--size", type=int_in(16), default=256, help="short side of stored photos")
    prepare.add_argument("--shard-size", type=int_in(1), default=5000, help="photos per shard")
    prepare.add_argument(
        "--quality", type=int_in(1, 100), default=95, help="JPEG quality in the shards"
    )
    prepare.add_argument("--prefix", default="train", help="shard file name prefix")
    prepare.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
    print_json(
        {
            "written": report.written,
            "skipped": len(report.skipped),
            "shards": [str(p) for p in report.shards],
        }
    )
    if report.skipped:
        say(f"skipped {len(report.skipped)} unreadable files")
    return EXIT_OK
