"""Colorize thousands of files: worker processes, resume, and a report of what failed.

Each worker process loads the model once and colorizes whole files, so `jobs` workers
use `jobs` CPU cores without sharing a Python interpreter. A bad file is recorded and
the batch goes on. Workers exit when the process that started them dies, so a killed
batch never leaves 350 MB processes writing on behind it.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from rechroma.inference.files import (
    BatchOptions,
    BatchReport,
    Result,
    colorize_one,
    failure_reason,
)
from rechroma.memory import tune_malloc

if TYPE_CHECKING:
    from rechroma.inference.cluster import RayOptions
    from rechroma.inference.colorizer import Colorizer
    from rechroma.restoration import Restorer

__all__ = ["BatchOptions", "BatchReport", "colorize_many", "failure_reason"]

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# How often a worker checks that its parent is alive where prctl is not available.
PARENT_POLL_SECONDS = 1.0


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
        # The callbacks print (paths on stdout, reasons on stderr): the bar steps aside
        # while they do, so no line runs into it on a terminal.
        with tqdm.external_write_mode():
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


# The worker process's colorizer, built once by `_init_worker`. Module state only in
# worker processes, which exist to hold exactly this.
_worker_colorizer: Colorizer | None = None
_worker_restorer: Restorer | None = None


def _init_worker(options: BatchOptions, threads: int, parent_pid: int) -> None:
    global _worker_colorizer, _worker_restorer
    _exit_with_parent(parent_pid)
    tune_malloc()  # a worker process is an entry point of its own
    from rechroma.inference.colorizer import Colorizer

    _worker_colorizer = Colorizer.load(
        options.weights, options.render_size, threads, runtime=options.runtime
    )
    if options.restore is not None:
        _worker_restorer = options.restore.load(threads)


def _exit_with_parent(parent_pid: int) -> None:
    """End this worker as soon as `parent_pid` is gone (killed with -9 included).

    On Linux the kernel sends SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG);
    everywhere, a daemon thread also watches the parent's pid, for other systems and for
    a parent that died before the prctl took effect.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            logger.debug("prctl unavailable; watching the parent's pid instead")

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)  # no cleanup to run: the files in flight are written atomically

    threading.Thread(target=watch, name="rechroma-parent-watch", daemon=True).start()


def _colorize_in_worker(src: Path, dst: Path, options: BatchOptions) -> Result:
    assert _worker_colorizer is not None, "worker used before _init_worker"
    return colorize_one(src, dst, options, _worker_colorizer, _worker_restorer)


def _run_serial(todo: list[tuple[Path, Path]], options: BatchOptions) -> Iterator[Result]:
    if not todo:
        return
    from rechroma.inference.colorizer import Colorizer

    colorizer = Colorizer.load(
        options.weights, options.render_size, options.threads, runtime=options.runtime
    )
    restorer = options.restore.load(options.threads) if options.restore else None
    for src, dst in todo:
        yield colorize_one(src, dst, options, colorizer, restorer)


def _run_pool(todo: list[tuple[Path, Path]], options: BatchOptions, jobs: int) -> Iterator[Result]:
    if not todo:
        return
    from rechroma.inference.colorizer import DEFAULT_WEIGHTS
    from rechroma.models.checkpoint import read_info

    read_info(options.weights or DEFAULT_WEIGHTS)  # bad weights fail here, once, clearly
    threads = options.threads or max(1, (os.cpu_count() or 1) // jobs)
    # "spawn": a forked child would inherit torch's thread pool state, which can hang.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=context,
        initializer=_init_worker,
        initargs=(options, threads, os.getpid()),
    ) as pool:
        futures: dict[Future[Result], tuple[Path, Path]] = {
            pool.submit(_colorize_in_worker, src, dst, options): (src, dst) for src, dst in todo
        }
        for future in as_completed(futures):
            src, dst = futures[future]
            try:
                yield future.result()
            except BrokenProcessPool as exc:
                # A worker died (killed, or out of memory in C code): the pool is gone,
                # so this and every unfinished file are reported, not lost silently.
                yield src, dst, ("worker crashed", f"{src}: worker process died ({exc})")
