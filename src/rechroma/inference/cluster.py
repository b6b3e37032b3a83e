"""Colorize an archive on a Ray cluster: Ray Data feeds the files to a pool of actors.

Each actor loads the model once and runs the very code the local batch runs
(`files.colorize_one`: the same Colorizer, options and writer), so an output is
byte-for-byte the file `rechroma colorize` writes without Ray. Actors read inputs from,
and write outputs to, paths every node sees (NFS, a mounted bucket): no photo travels
through Ray's object store, which matters for 60-megapixel TIFFs.

Ray is optional (`pip install 'rechroma[cluster]'`) and imported only here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rechroma.errors import InvalidOptionError
from rechroma.inference.files import BatchOptions, Result, colorize_one

logger = logging.getLogger(__name__)

# CPUs left free of actors on the cluster, so Ray Data's own tasks always find room to
# run: with every CPU taken by actors the job stalls (seen with 2 one-CPU actors on a
# 2-CPU machine).
RESERVED_CPUS = 0.5


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray job runs."""

    address: str | None = None  # None: a local Ray; "auto" or "ray://host:10001": a cluster
    actors: int | None = None  # None: one per `threads` CPUs of the cluster (one per GPU)
    threads: int = 1  # torch threads per actor


class _ColorizeActor:
    """A Ray actor: one model, loaded once, colorizing the rows it is given."""

    def __init__(self, options: BatchOptions, threads: int, device: str) -> None:
        from rechroma.inference.colorizer import Colorizer

        self.options = options
        self.colorizer = Colorizer.load(
            options.weights, options.render_size, threads, device, runtime=options.runtime
        )
        self.restorer = options.restore.load(threads) if options.restore else None

    def __call__(self, rows: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"src": [], "dst": [], "reason": [], "message": []}
        for src, dst in zip(rows["src"], rows["dst"], strict=True):
            _, _, error = colorize_one(
                Path(src), Path(dst), self.options, self.colorizer, self.restorer
            )
            reason, message = error or ("", "")
            for key, value in zip(out, (src, dst, reason, message), strict=True):
                out[key].append(value)
        return out


def run_on_ray(
    todo: list[tuple[Path, Path]], options: BatchOptions, ray_options: RayOptions
) -> Iterator[Result]:
    """Colorize `(src, dst)` pairs on Ray, yielding each result as it finishes."""
    if not todo:
        return  # a resumed folder with nothing left: no Ray to start
    try:
        import ray
    except ImportError as exc:
        raise InvalidOptionError("--ray needs Ray: pip install 'rechroma[cluster]'") from exc
    from rechroma.inference.colorizer import DEFAULT_WEIGHTS
    from rechroma.models.checkpoint import read_info

    read_info(options.weights or DEFAULT_WEIGHTS)  # bad weights fail here, once, clearly
    if ray_options.threads < 1:
        raise InvalidOptionError(f"--ray-threads must be at least 1, got {ray_options.threads}")
    started_here = not ray.is_initialized()
    if started_here:
        _start_ray(ray, ray_options.address)
    try:
        yield from _run(ray, todo, options, ray_options)
    finally:
        if started_here:
            ray.shutdown()


def _start_ray(ray, address: str | None) -> None:
    # Our own progress bar and log lines; Ray's would interleave with them.
    common = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:
        # A Ray of this machine alone, on loopback: nothing listens on other addresses.
        ray.init(num_cpus=os.cpu_count() or 1, _node_ip_address="127.0.0.1", **common)
    else:
        ray.init(address=address, **common)


def _run(
    ray, todo: list[tuple[Path, Path]], options: BatchOptions, ray_options: RayOptions
) -> Iterator[Result]:
    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 1.0), int(resources.get("GPU", 0))
    threads = ray_options.threads
    if gpus:
        actors = ray_options.actors or gpus
        device = "cuda"
    else:
        actors = ray_options.actors or max(1, int(cpus // threads))
        device = "cpu"
    per_actor: dict[str, float] = {
        "num_cpus": min(threads, max(cpus - RESERVED_CPUS, 0.1) / actors)
    }
    if gpus:
        per_actor["num_gpus"] = 1
    actors = min(actors, len(todo))
    logger.info("ray: %d actors, %s each, on %s", actors, per_actor, resources)

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.execution_options.preserve_order = False  # results as soon as they are ready
    dataset = ray.data.from_items([{"src": str(src), "dst": str(dst)} for src, dst in todo])
    results = dataset.map_batches(
        _ColorizeActor,
        fn_constructor_kwargs={"options": options, "threads": threads, "device": device},
        batch_size=1,  # photos of any size: one at a time keeps each actor's memory bounded
        concurrency=actors,  # a fixed pool of actors, each with the model loaded once
        **per_actor,
    )
    for row in results.iter_rows():
        error = (row["reason"], row["message"]) if row["reason"] else None
        yield Path(row["src"]), Path(row["dst"]), error
