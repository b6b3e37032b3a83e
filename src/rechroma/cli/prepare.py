"""`rechroma prepare`: pack a folder of photos into training shards."""

from __future__ import annotations

import argparse
from pathlib import Path

from rechroma.cli.options import EXIT_OK, int_in, print_json, say


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add `prepare` and `prepare-collections`."""
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
    register_collections(sub, common)


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


def register_collections(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add `prepare-collections`."""
    parser = sub.add_parser(
        "prepare-collections",
        parents=[common],
        help="make training and validation shards from the photo collections in Git mirrors",
        description=(
            "Read each collection of a sources.json out of its bare Git directory under "
            "MIRRORS (named OWNER+NAME) at its pinned commit, drop excluded, unreadable, gray "
            "and duplicate photos (also against the shared shards), and write OUT/<name>/"
            "val-000.tar (the held-out photos), train-NNN.tar, index.tsv and OUT/report.json. "
            "The same inputs give byte-identical shards."
        ),
    )
    parser.add_argument("mirrors", type=Path, metavar="MIRRORS")
    parser.add_argument("out", type=Path, metavar="OUT_DIR")
    shared = Path("../shared/data")
    parser.add_argument(
        "--sources",
        type=Path,
        default=shared / "more-photos" / "sources.json",
        help="the collections to read (default: %(default)s)",
    )
    parser.add_argument(
        "--shared-data",
        type=Path,
        default=shared,
        help="shards and photos-val the new photos must not duplicate (default: %(default)s)",
    )
    parser.add_argument(
        "--no-shared-dedup", action="store_true", help="do not deduplicate against --shared-data"
    )
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these collections")
    parser.add_argument("--size", type=int_in(32), default=256, help="short side of stored photos")
    parser.add_argument("--quality", type=int_in(1, 100), default=90, help="JPEG quality")
    parser.add_argument(
        "--holdout", type=int_in(1), default=300, help="validation photos per collection"
    )
    parser.add_argument(
        "--cap",
        action="append",
        default=[],
        metavar="NAME=N",
        help="at most N training photos of collection NAME (repeatable); default: "
        + ", ".join(f"{k}={v}" for k, v in DEFAULT_CAPS.items()),
    )
    parser.add_argument("--shard-size", type=int_in(1), default=5000, help="photos per shard")
    parser.add_argument("--workers", type=int_in(1), default=2, help="decoding processes")
    parser.set_defaults(func=run_collections)


# Cats and dogs are about half of the collections' photos: together about 10,000.
DEFAULT_CAPS = {"catsdogs": 6000, "catsdogs-200": 4000}


def _parse_caps(items: list[str]) -> dict[str, int]:
    from rechroma.errors import DataError

    caps = dict(DEFAULT_CAPS)
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value.isdigit():
            raise DataError(f"--cap {item!r} is not NAME=N")
        caps[name] = int(value)
    return caps


def run_collections(args: argparse.Namespace) -> int:
    from rechroma.data.collections import build_collection_shards, load_collections
    from rechroma.errors import DataError

    caps = _parse_caps(args.cap)
    collections = load_collections(args.sources)
    unknown = set(caps) - {c.name for c in collections} - set(DEFAULT_CAPS)
    if unknown:
        raise DataError(f"--cap names collections that are not listed: {sorted(unknown)}")
    if args.only:
        missing = set(args.only) - {c.name for c in collections}
        if missing:
            raise DataError(f"not in {args.sources}: {sorted(missing)}")
        collections = [c for c in collections if c.name in args.only]
    caps = {name: cap for name, cap in caps.items() if name in {c.name for c in collections}}
    reports = build_collection_shards(
        collections,
        args.mirrors,
        args.out,
        args.sources.parent,
        None if args.no_shared_dedup else args.shared_data,
        size=args.size,
        quality=args.quality,
        holdout=args.holdout,
        caps=caps,
        shard_size=args.shard_size,
        workers=args.workers,
        progress=not args.quiet,
    )
    print_json(
        {
            "out": str(args.out),
            "train": sum(r.train for r in reports),
            "val": sum(r.val for r in reports),
            "collections": {r.name: {"train": r.train, "val": r.val} for r in reports},
        }
    )
    return EXIT_OK
