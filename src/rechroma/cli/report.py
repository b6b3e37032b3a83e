"""What a command over many files prints and writes at the end: the failures TSV and the
summary line (or `--json`). Shared by `colorize` and `restore`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rechroma.cli.options import print_json, say
from rechroma.errors import OutputWriteError

if TYPE_CHECKING:
    from rechroma.inference.files import BatchReport
    from rechroma.paths import Plan


def announce_skipped(plan: Plan, source: Path) -> None:
    """Name, on stderr, what a folder walk passed over."""
    if plan.not_images:
        say(describe_skipped(plan.not_images, source, "not images"))
    if plan.broken_links:
        say(describe_skipped(plan.broken_links, source, "links that lead nowhere"))


def write_failures(args: argparse.Namespace, source: Path, report: BatchReport) -> Path | None:
    """The failures TSV (folders, or --failures); None when there is none to point at."""
    failures_file = args.failures or (
        Path(args.output) / "rechroma-failures.tsv" if source.is_dir() else None
    )
    if failures_file is None:
        return None
    try:
        if report.failed:
            report.write_failures(failures_file)
            return failures_file
        if args.failures is None:
            failures_file.unlink(missing_ok=True)  # a stale list from an earlier run would mislead
    except OutputWriteError as exc:  # already names the file and why
        say(f"cannot write the failures list: {exc}")
    except OSError as exc:  # removing a stale list
        say(f"cannot write the failures list {failures_file} ({exc.strerror or exc})")
    return None


def summarise(
    args: argparse.Namespace,
    source: Path,
    plan: Plan,
    report: BatchReport,
    failures_file: Path | None,
) -> None:
    if args.json:
        summary = report.as_dict()
        summary["not_images"] = [str(p) for p in plan.not_images]
        summary["broken_links"] = [str(p) for p in plan.broken_links]
        summary["failures_file"] = str(failures_file) if failures_file else None
        print_json(summary)
    if not (source.is_dir() or len(plan.pairs) + len(plan.videos) > 1 or report.skipped):
        return
    line = report.summary()
    if plan.not_images:
        line += f", {len(plan.not_images)} not images"
    if plan.broken_links:
        line += f", {len(plan.broken_links)} broken links"
    if report.skipped:
        # Options are not compared with an earlier run's: say so, or a new --vividness
        # would look as if it had no effect.
        line += "; skipped outputs were not redone with this run's options (--overwrite does)"
    if failures_file is not None:
        line += f"; failures listed in {failures_file}"
    say(line)


def describe_skipped(files: list[Path], root: Path, why: str, shown: int = 5) -> str:
    """ "3 files skipped: not images: notes.txt, a/b.pdf, scan.xcf" (the first few names)."""
    names = [str(p.relative_to(root)) for p in files[:shown]]
    more = f", ... ({len(files) - shown} more)" if len(files) > shown else ""
    noun = "file" if len(files) == 1 else "files"
    return f"{len(files)} {noun} skipped: {why}: {', '.join(names)}{more}"
