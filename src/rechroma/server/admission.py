"""Admission control: a bounded worker pool and a bounded queue in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from rechroma.errors import RechromaError


class ServerBusyError(RechromaError):
    """Every worker is busy and the queue is full; the client should retry later."""


class Admission:
    """At most `workers` photos are colorized at once and `max_queue` requests wait.

    A request beyond that is refused at once (503 with Retry-After) instead of piling
    up memory and latency for everyone. Counting happens on the event loop, so it needs
    no lock.
    """

    def __init__(self, workers: int, max_queue: int) -> None:
        self.workers = anyio.CapacityLimiter(workers)
        self.capacity = workers + max_queue
        self.admitted = 0

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Hold a place for the whole request, or raise `ServerBusyError`."""
        if self.admitted >= self.capacity:
            raise ServerBusyError(
                f"the server is busy with {self.admitted} requests; try again shortly"
            )
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1
