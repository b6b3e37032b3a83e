"""Which files a command works on, where their outputs go, and the checks that keep inputs safe.

Shared by every command that turns IN into OUT (`colorize`, and the batch and cluster
runs behind it): a folder's tree is mirrored, links to folders are followed (a loop is
visited once), and nothing is passed over without a word: files that are not photos and
links that lead nowhere are listed. An output may never be an input.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from rechroma.errors import ImageReadError, InvalidOptionError, OutputWriteError
from rechroma.images import (
    FORMATS,
    PHOTO_OUTPUT_FOR,
    PHOTO_SUFFIXES,
    VIDEO_OUTPUT_FOR,
    VIDEO_SUFFIXES,
)

STDIO = "-"  # a single photo read from stdin or written to stdout


def default_cache_dir() -> Path:
    """Where rechroma keeps what it fetches or builds once (third-party weights, ONNX
    graphs): `$RECHROMA_CACHE`, else `$XDG_CACHE_HOME/rechroma`, else `~/.cache/rechroma`."""
    if "RECHROMA_CACHE" in os.environ:
        return Path(os.environ["RECHROMA_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rechroma"


@dataclass
class Plan:
    """(input, output) pairs for photos and clips, and what a folder walk passed over."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    videos: list[tuple[Path, Path]] = field(default_factory=list)
    not_images: list[Path] = field(default_factory=list)
    broken_links: list[Path] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing to do: no photo and no clip."""
        return not self.pairs and not self.videos


def plan_outputs(src: Path, out: str, fmt: str | None = None) -> Plan:
    """Pair every input with its output path; folders mirror their tree.

    In a folder, files that are not photos or clips by their extension are listed in
    `not_images` and dangling links in `broken_links` (never silently ignored); hidden
    files and folders (".DS_Store", ".git") are left alone. Raises `InvalidOptionError`
    when an output would be an input (the same file, also through a link, or OUT = IN).
    """
    dst = Path(out)
    if src.is_dir():
        plan = _plan_folder(src, dst, fmt)
    elif not src.exists():
        raise ImageReadError(f"{src}: no such file")
    else:
        plan = _plan_file(src, dst, out, fmt)
    _refuse_overwriting_inputs(plan)
    return plan


def _plan_file(src: Path, dst: Path, out: str, fmt: str | None) -> Plan:
    is_clip = src.suffix.lower() in VIDEO_SUFFIXES
    if dst.is_dir() or out.endswith(("/", os.sep)):
        if is_clip:
            return Plan(videos=[(src, video_output_name(dst / src.name))])
        return Plan(pairs=[(src, photo_output_name(dst / src.name, fmt))])
    return Plan(videos=[(src, dst)]) if is_clip else Plan(pairs=[(src, dst)])


def _plan_folder(src: Path, dst: Path, fmt: str | None) -> Plan:
    if dst.exists() and not dst.is_dir():
        raise ImageReadError(f"{dst}: input is a folder, so the output must be a folder")
    src_real, dst_real = src.resolve(), dst.resolve()
    if src_real == dst_real:
        raise InvalidOptionError(
            f"{dst}: OUT is the input folder itself, so every output would replace its "
            "photo; name another folder"
        )
    # Our own outputs and failure lists, when OUT is inside IN, are not inputs.
    skip_root = dst_real if dst_real.is_relative_to(src_real) else None
    plan = Plan()
    for path in _walk(src, skip_root, plan.broken_links):
        relative = path.relative_to(src)
        suffix = path.suffix.lower()
        if suffix in PHOTO_SUFFIXES:
            plan.pairs.append((path, photo_output_name(dst / relative, fmt)))
        elif suffix in VIDEO_SUFFIXES:
            plan.videos.append((path, video_output_name(dst / relative)))
        else:
            plan.not_images.append(path)
    return plan


def _walk(root: Path, skip_root: Path | None, broken_links: list[Path]) -> list[Path]:
    """Every non-hidden file under `root`, following links to folders, each folder once."""
    files: list[Path] = []
    seen: set[Path] = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        here = Path(folder)
        real = here.resolve()
        if real in seen or (skip_root is not None and real.is_relative_to(skip_root)):
            subfolders[:] = []  # a link loop, or our own output folder
            continue
        seen.add(real)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = here / name
            if path.is_file():
                files.append(path)
            elif path.is_symlink() and not path.exists():
                broken_links.append(path)
    return sorted(files)


def _refuse_overwriting_inputs(plan: Plan) -> None:
    inputs = {src.resolve() for src, _ in (*plan.pairs, *plan.videos)}
    for src, dst in (*plan.pairs, *plan.videos):
        if str(dst) == STDIO:
            continue
        same = dst.resolve() in inputs
        if not same and dst.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(src, dst)
        if same:
            raise InvalidOptionError(
                f"{dst}: the output would overwrite an input ({src}); name another output"
            )


def default_output(src: Path, fmt: str | None = None) -> Path:
    """Where the output goes when none is named: beside the input, `scan.tif` ->
    `scan-colour.tif` (formats we read but do not write as `photo_output_name` says), a
    clip likewise, a folder `scans` -> `scans-colour`."""
    if src.is_dir():
        folder = src.resolve()
        return folder.with_name(f"{folder.name}-colour")
    beside = src.with_name(f"{src.stem}-colour{src.suffix}")
    if src.suffix.lower() in VIDEO_SUFFIXES:
        return video_output_name(beside)
    return photo_output_name(beside, fmt)


def photo_output_name(path: Path, fmt: str | None) -> Path:
    """A photo's output path in a folder: `fmt`'s extension, else the input's when we
    write that format, else `.jpg` for HEIC/AVIF and `.png` for the rest."""
    if fmt:
        return path.with_suffix(f".{fmt}")
    suffix = path.suffix.lower()
    if suffix in FORMATS:
        return path
    return path.with_suffix(PHOTO_OUTPUT_FOR.get(suffix, ".png"))


def video_output_name(path: Path) -> Path:
    """A clip's output path in a folder: the same container, or MP4 for AVI."""
    suffix = path.suffix.lower()
    return path.with_suffix(VIDEO_OUTPUT_FOR.get(suffix, suffix))


def check_writable(folder: Path) -> None:
    """Make `folder` (and its parents) and prove a file can be created there, before any work.

    Raises `OutputWriteError` naming the folder and why (read-only, no permission, full).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rechroma-write-test-"):
            pass
    except OSError as exc:
        raise OutputWriteError(f"{folder}: cannot write there ({exc.strerror or exc})") from exc
