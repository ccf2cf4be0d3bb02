"""Retention in a server: apply an application's retention policies every so often, in
one process at a time.

:class:`RetentionSchedule` runs :func:`~eventledger.retention.apply_retention` with the
policies of an :class:`~eventledger.Application` (``Application(retention=[...])``) every
`every`, in a task of its own. The process that runs it holds the lease
:data:`LEASE_NAME` (the leases of the read side, as subscriptions use), taken for twice
the period and renewed at each run, so that of several server processes (workers,
machines) one applies the policies and another takes over within two periods after it
dies. A run that fails (the store down, say) is logged and tried again at the next
period; nothing is half done, since each transaction of :func:`truncate_stream` deletes
its events together with their tombstone.

>>> import asyncio
>>> from datetime import timedelta
>>> from eventledger import NewEvent, open_store
>>> from eventledger.retention import RetentionPolicy
>>> async def main() -> tuple[int, int]:
...     async with await open_store("memory://") as store:
...         for n in range(5):
...             await store.append("Reading-1", [NewEvent("Measured", {"n": n})])
...         schedule = RetentionSchedule(
...             store, [RetentionPolicy("Reading", max_count=2)], timedelta(seconds=60)
...         )
...         schedule.start()
...         await schedule.wait_for_run()
...         await schedule.stop()
...         left = [e async for e in store.read_stream("Reading-1")]
...         return schedule.last.deleted if schedule.last else -1, len(left)
>>> asyncio.run(main())
(3, 2)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from eventledger.errors import InvalidInput
from eventledger.failures import describe_error
from eventledger.retention import RetentionPolicy, apply_retention
from eventledger.stores.base import EventStore

__all__ = ["LEASE_NAME", "RetentionRun", "RetentionSchedule"]

log = logging.getLogger("eventledger.retention")

LEASE_NAME = "$retention"
"""The lease the process that applies retention policies holds."""


@dataclass(frozen=True, slots=True)
class RetentionRun:
    """What one run did: when it ended (a monotonic time), how many events it deleted
    in how many streams, or the error it failed with."""

    ended: float
    deleted: int
    streams: int
    error: str | None = None


class RetentionSchedule:
    """Applies `policies` to `store` every `every`, while this process holds the lease
    (see the module's docs). `owner` names this process in the lease."""

    def __init__(
        self,
        store: EventStore,
        policies: Sequence[RetentionPolicy],
        every: timedelta,
        *,
        owner: str | None = None,
    ) -> None:
        if not isinstance(every, timedelta) or every < timedelta(seconds=1):
            raise InvalidInput(f"retention runs at most once a second, not every {every!r}")
        if not policies:
            raise InvalidInput(
                "a retention schedule needs policies: Application(retention=[RetentionPolicy"
                '("Reading", max_age=timedelta(days=30))]) or [retention.<Category>] in'
                " eventledger.toml"
            )
        for policy in policies:
            if not isinstance(policy, RetentionPolicy):
                raise InvalidInput(f"expected a RetentionPolicy, not {policy!r}")
        store.require("retention", "read_side")
        self.store = store
        self.policies = list(policies)
        self.every = every
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.last: RetentionRun | None = None
        """The last run in this process (None: none yet)."""
        self.runs = 0
        self._ran = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        """Stop (after the transaction in flight) and give the lease up."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):  # the store may be down; the lease then expires
            await self.store.read_side().release_lease(LEASE_NAME, self.owner)

    async def wait_for_run(self, timeout: float = 30.0) -> RetentionRun:
        """Wait until this process has finished a run after now (for tests and tools)."""
        async with self._ran:
            seen = self.runs
            await asyncio.wait_for(self._ran.wait_for(lambda: self.runs > seen), timeout)
        assert self.last is not None
        return self.last

    async def _loop(self) -> None:
        period = self.every.total_seconds()
        while True:
            if await self._holds_lease(period):
                await self._run_once()
            await asyncio.sleep(period)

    async def _holds_lease(self, period: float) -> bool:
        try:
            return await self.store.read_side().acquire_lease(LEASE_NAME, self.owner, 2 * period)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("retention: cannot take the lease: %s", describe_error(error))
            return False

    async def _run_once(self) -> None:
        try:
            trimmed = await apply_retention(self.store, self.policies)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("retention: a run failed; it is tried again in %s", self.every)
            run = RetentionRun(time.monotonic(), 0, 0, describe_error(error))
        else:
            deleted = sum(t.deleted for t in trimmed)
            if deleted:
                log.info("retention: deleted %d events in %d streams", deleted, len(trimmed))
            run = RetentionRun(time.monotonic(), deleted, len(trimmed))
        async with self._ran:
            self.last = run
            self.runs += 1
            self._ran.notify_all()
