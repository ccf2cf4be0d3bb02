"""Recent throughput for the admin page: the log's and each projection's.

Every `every` seconds the sampler counts the events appended since its last look
(between the two head positions, so none is counted twice or missed) and, for each
projection and process, the events it handled (between its two positions). It keeps
the last `keep` samples in memory: the overview's chart and the projections'
sparklines. It is one small query per subscription per sample; nothing is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from eventledger.app import Service

__all__ = ["Sample", "Sampler"]

log = logging.getLogger("eventledger.admin")


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    """When the sample was taken (seconds since the epoch)."""
    seconds: float
    """How long since the sample before."""
    appended: int
    handled: dict[str, int] = field(default_factory=dict)

    def rate(self, count: int) -> float:
        return count / self.seconds if self.seconds > 0 else 0.0


class Sampler:
    def __init__(self, service: Service, *, every: float = 5.0, keep: int = 120) -> None:
        self.service = service
        self.every = every
        self.samples: deque[Sample] = deque(maxlen=keep)
        self._head: int | None = None
        self._positions: dict[str, tuple[int, int]] = {}  # name: (generation, position)
        self._taken: float = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the store is down, say: the next sample tries again
                log.debug("admin sampler: %s", error)
            await asyncio.sleep(self.every)

    async def sample(self) -> Sample | None:
        """Take one sample (the first only sets where counting starts)."""
        store = self.service.store
        now = time.time()
        head = await store.head_position()
        statuses = await self.service.runner.status()
        handled: dict[str, int] = {}
        for status in statuses:
            before = self._positions.get(status.name)
            if (
                before is not None
                and before[0] == status.generation
                and status.position > before[1]
            ):
                handled[status.name] = await store.count_events(
                    after=before[1], upto=status.position
                )
            elif before is not None:
                handled[status.name] = 0
            self._positions[status.name] = (status.generation, status.position)
        sample = None
        if self._head is not None:
            appended = (
                await store.count_events(after=self._head, upto=head) if head > self._head else 0
            )
            sample = Sample(now, now - self._taken, appended, handled)
            self.samples.append(sample)
        self._head, self._taken = head, now
        return sample

    def appended_per_second(self) -> list[float]:
        return [s.rate(s.appended) for s in self.samples]

    def handled_per_second(self, name: str) -> list[float]:
        return [s.rate(s.handled.get(name, 0)) for s in self.samples]
