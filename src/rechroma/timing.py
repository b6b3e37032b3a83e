"""Wall time per stage, for the benchmarks: `timed(timings, "stage")` around a block."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def timed(timings: dict[str, float] | None, name: str) -> Iterator[None]:
    """Add the wall time of the block to `timings[name]`, when a dict is given."""
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
