"""Colorize thousands of files: worker processes, resume, and a report of what failed.

Each worker process loads the model once and colorizes whole files, so `jobs` workers
use `jobs` CPU cores without sharing a Python interpreter. A bad file is recorded and
the batch goes on.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from rechroma.errors import ImageReadError, ImageTooLargeError, RechromaError, UnsupportedImageError
from rechroma.images import DEFAULT_MAX_PIXELS
from rechroma.inference.hints import Hint, HintError, read_hints_file

if TYPE_CHECKING:
    from rechroma.inference.cluster import RayOptions
    from rechroma.inference.colorizer import Colorizer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchOptions:
    """How every file of a batch is colorized."""

    weights: Path | None = None
    render_size: int | None = None
    vividness: float = 1.0
    quality: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    threads: int | None = None  # torch threads per worker; cores / jobs when None
    hints: tuple[Hint, ...] = ()  # colour hints for every file (one photo's, in practice)
    # A folder of `<name>.json` hint files mirroring the tree under `input_root`; a photo
    # without one is colourised automatically.
    hints_dir: Path | None = None
    input_root: Path | None = None

    def hints_for(self, src: Path) -> tuple[Hint, ...]:
        """The hints that apply to `src`."""
        if self.hints_dir is None:
            return self.hints
        relative = src.relative_to(self.input_root) if self.input_root else Path(src.name)
        path = self.hints_dir / relative.with_suffix(".json")
        return (*self.hints, *read_hints_file(path)) if path.is_file() else self.hints


@dataclass
class BatchReport:
    """What happened to every file: outputs written, skipped and failed with reasons."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str, str]] = field(default_factory=list)  # (src, reason, message)

    def summary(self) -> str:
        """One line: counts, and failures grouped by reason."""
        line = f"{len(self.done)} done, {len(self.skipped)} skipped (output exists)"
        line += f", {len(self.failed)} failed"
        if self.failed:
            reasons = Counter(reason for _, reason, _ in self.failed)
            line += " (" + ", ".join(f"{n} {reason}" for reason, n in reasons.most_common()) + ")"
        return line

    def write_failures(self, path: Path) -> None:
        """A tab-separated list of failed inputs: path, reason, message."""
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["path\treason\tmessage"]
        for src, reason, message in self.failed:
            lines.append(f"{src}\t{reason}\t{' '.join(message.split())}")
        path.write_text("\n".join(lines) + "\n")


def failure_reason(exc: BaseException) -> str:
    """A short, groupable label for why a file failed."""
    if isinstance(exc, HintError):
        return "bad hints"
    if isinstance(exc, ImageTooLargeError):
        return "too large"
    if isinstance(exc, UnsupportedImageError):
        return "not a supported image"
    if isinstance(exc, ImageReadError):
        return "unreadable"
    if isinstance(exc, RechromaError):
        return "invalid"
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OSError):
        return "file error"
    return "internal error"


def colorize_many(
    pairs: Sequence[tuple[Path, Path]],
    options: BatchOptions,
    jobs: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    on_done: Callable[[Path], None] | None = None,
    on_failed: Callable[[Path, str], None] | None = None,
    ray: RayOptions | None = None,
) -> BatchReport:
    """Colorize every `(src, dst)` pair; existing outputs are skipped unless `overwrite`.

    Args:
        pairs: inputs and where their outputs go (format from the extension).
        options: model and output settings, the same for every file.
        jobs: worker processes; 1 runs in this process.
        overwrite: redo outputs that already exist (otherwise a rerun resumes).
        progress: show a progress bar with files/s and the time left.
        on_done: called with each written output, as it is written.
        on_failed: called with each failed input and the error message, as it fails.
        ray: run on a Ray cluster's actors instead of local processes (`jobs` unused).
    """
    report = BatchReport()
    todo = []
    for src, dst in pairs:
        if dst.exists() and not overwrite:
            report.skipped.append(dst)
        else:
            todo.append((src, dst))
    bar = tqdm(total=len(todo), desc="colorize", unit="photo", disable=not progress)
    if ray is not None:
        from rechroma.inference.cluster import run_on_ray

        results = run_on_ray(todo, options, ray)
    elif jobs <= 1:
        results = _run_serial(todo, options)
    else:
        results = _run_pool(todo, options, jobs)
    for src, dst, error in results:
        if error is None:
            report.done.append(dst)
            if on_done is not None:
                on_done(dst)
        else:
            report.failed.append((src, *error))
            if on_failed is not None:
                on_failed(src, error[1])
        bar.update(1)
    bar.close()
    return report


Result = tuple[Path, Path, tuple[str, str] | None]

# The worker process's colorizer, built once by `_init_worker`. Module state only in
# worker processes, which exist to hold exactly this.
_worker_colorizer: Colorizer | None = None


def _init_worker(options: BatchOptions, threads: int) -> None:
    global _worker_colorizer
    from rechroma.inference.colorizer import Colorizer

    _worker_colorizer = Colorizer.load(options.weights, options.render_size, threads)


def _colorize_one(
    src: Path, dst: Path, options: BatchOptions, colorizer: Colorizer | None = None
) -> Result:
    colorizer = colorizer or _worker_colorizer
    assert colorizer is not None, "worker used before _init_worker"
    try:
        colorizer.colorize_file(
            src,
            dst,
            quality=options.quality,
            max_pixels=options.max_pixels,
            vividness=options.vividness,
            hints=options.hints_for(src),
        )
    except Exception as exc:  # one file must never stop the batch; the reason is reported
        message = str(exc) if isinstance(exc, RechromaError) else f"{src}: {exc!r}"
        if not isinstance(exc, RechromaError | OSError | MemoryError):
            logger.exception("unexpected error on %s", src)
        return src, dst, (failure_reason(exc), message)
    return src, dst, None


def _run_serial(todo: list[tuple[Path, Path]], options: BatchOptions) -> Iterator[Result]:
    from rechroma.inference.colorizer import Colorizer

    colorizer = Colorizer.load(options.weights, options.render_size, options.threads)
    for src, dst in todo:
        yield _colorize_one(src, dst, options, colorizer)


def _run_pool(todo: list[tuple[Path, Path]], options: BatchOptions, jobs: int) -> Iterator[Result]:
    from rechroma.inference.colorizer import DEFAULT_WEIGHTS
    from rechroma.models.checkpoint import read_info

    read_info(options.weights or DEFAULT_WEIGHTS)  # bad weights fail here, once, clearly
    threads = options.threads or max(1, (os.cpu_count() or 1) // jobs)
    # "spawn": a forked child would inherit torch's thread pool state, which can hang.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=jobs, mp_context=context, initializer=_init_worker, initargs=(options, threads)
    ) as pool:
        futures: dict[Future[Result], tuple[Path, Path]] = {
            pool.submit(_colorize_one, src, dst, options): (src, dst) for src, dst in todo
        }
        for future in as_completed(futures):
            src, dst = futures[future]
            try:
                yield future.result()
            except BrokenProcessPool as exc:
                # A worker died (killed, or out of memory in C code): the pool is gone,
                # so this and every unfinished file are reported, not lost silently.
                yield src, dst, ("worker crashed", f"{src}: worker process died ({exc})")
