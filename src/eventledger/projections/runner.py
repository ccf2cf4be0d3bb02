"""Running projections and process managers: one subscription each, with status, waits,
queries and the operator's operations.

One :class:`ProjectionRunner` runs many projections, each as a
:class:`~eventledger.subscriptions.Subscription` in a task of its own: it reads
the log after the projection's checkpoint in batches, and a batch's read-model
writes commit with the new checkpoint in one transaction, so no event is
applied twice or missed, whenever the process dies. When several processes run
the same projection, a lease lets exactly one of them work; another takes over
within `lease_ttl` seconds after the holder dies.

In-memory projections are rebuilt from the log at start by every process that
runs them; they keep no checkpoint and take no lease.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from eventledger.errors import InvalidInput, ProjectionTimeout
from eventledger.projections import partitions, rebuild
from eventledger.projections.base import Projection, RunScope
from eventledger.projections.consumers import projection_of
from eventledger.projections.documents import DocumentQueries
from eventledger.projections.queries import ReadModelQueries
from eventledger.storage import DeadLetter
from eventledger.stores.base import EventStore
from eventledger.subscriptions import (
    RebuildProgress,
    Subscription,
    SubscriptionSettings,
    SubscriptionStatus,
)

if TYPE_CHECKING:
    from eventledger.commands import CommandBus
    from eventledger.projections.caching import ReadModelCache

__all__ = [
    "ProjectionRunner",
    "ProjectionStatus",
    "ProjectionTimeout",
    "RebuildProgress",
    "wait_until",
]

ProjectionStatus = SubscriptionStatus
"""The status of a projection or process manager (see :meth:`ProjectionRunner.status`)."""


class ProjectionRunner:
    """Runs projections against one store until stopped.

    >>> import asyncio
    >>> from eventledger import NewEvent, RecordedEvent, open_store
    >>> from eventledger.projections import InMemoryProjection, on
    >>> class Tally(InMemoryProjection):
    ...     def __init__(self) -> None:
    ...         super().__init__()
    ...         self.count = 0
    ...     @on("Counted")
    ...     def counted(self, event: RecordedEvent) -> None:
    ...         self.count += 1
    >>> async def main() -> int:
    ...     async with await open_store("memory://") as store:
    ...         async with ProjectionRunner(store, [Tally()]) as runner:
    ...             result = await store.append("Tally-1", [NewEvent("Counted", {})])
    ...             await runner.wait_until("tally", result.position, timeout=5)
    ...             return runner.get("tally").count
    >>> asyncio.run(main())
    1
    """

    def __init__(
        self,
        store: EventStore,
        projections: Iterable[Projection],
        *,
        batch_size: int = 1000,
        lease_ttl: float = 5.0,
        poll_interval: float = 1.0,
        rebuild_batches_per_step: int = 10,
        owner: str | None = None,
        commands: CommandBus | None = None,
        cache: ReadModelCache | None = None,
    ) -> None:
        # `cache`: a query cache (eventledger.cache.QueryCache) that queries go through and
        # that this runner tells of every change (see eventledger.projections.caching).
        self.store = store
        self.commands = commands
        self.batch_size = batch_size
        self.lease_ttl = lease_ttl
        self.poll_interval = poll_interval
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.settings = SubscriptionSettings(
            self.owner, batch_size, lease_ttl, poll_interval, rebuild_batches_per_step
        )
        store.require("read_side")
        sql = store.sql_tables() if "sql_tables" in store.capabilities else None
        self.scope = RunScope(store, store.read_side(), sql, commands, cache)
        self.queries = ReadModelQueries(self.scope)
        self._subscriptions: dict[str, Subscription] = {}
        for projection in projections:
            self._add(projection)

    def _add(self, projection: Projection) -> None:
        if not isinstance(projection, Projection):
            raise InvalidInput(f"expected a Projection, not {projection!r}")
        name = projection.name
        if name in self._subscriptions:
            raise InvalidInput(f"two projections are named {name!r}")
        missing = [c for c in projection.needs if c not in self.store.capabilities]
        if "sql_tables" in missing:
            raise InvalidInput(
                f"{name}: SQL projections need a SQLite or PostgreSQL store (or another backend"
                f" that keeps SQL tables); {self.store.url} does not"
            )
        self.store.require(*projection.needs)
        if "command_log" in projection.needs and self.commands is None:
            raise InvalidInput(
                f"{name} is a process manager: give the runner the command bus it sends with"
                " (ProjectionRunner(..., commands=bus))"
            )
        if partitions.is_partitioned(projection):  # N subscriptions shared by processes
            self._subscriptions[name] = partitions.partitioned_subscription(
                projection, self.scope, self.settings
            )
            return
        consumer = projection.consumer(self.scope)
        subscription = Subscription(self.store, self.scope.read_side, consumer, self.settings)
        subscription.on_activated = self._resume_rebuild
        self._subscriptions[name] = subscription

    async def _resume_rebuild(self, subscription: Subscription) -> None:
        await rebuild.resume_interrupted(subscription, self.scope)

    async def start(self) -> None:
        for subscription in self._subscriptions.values():
            subscription.start()

    async def stop(self) -> None:
        """Stop after the batches in flight; release the leases."""
        await asyncio.gather(*(s.stop() for s in self._subscriptions.values()))

    async def __aenter__(self) -> ProjectionRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def names(self) -> list[str]:
        """The names of the projections and processes this runner runs."""
        return list(self._subscriptions)

    def subscription(self, name: str) -> Subscription:
        """The subscription that runs projection `name` (or partition ``name#k`` of one)."""
        try:
            return self._subscriptions[name]
        except KeyError:
            part = partitions.find_partition(self._subscriptions.values(), name)
            if part is not None:  # its dead letters are retried and skipped through it
                return part
            known = ", ".join(self._subscriptions) or "none"
            raise InvalidInput(f"no projection named {name!r} here; known: {known}") from None

    # --- reading the read models ------------------------------------------------------------

    def get(self, name: str) -> Projection:
        """The projection object (for an in-memory one, its current state)."""
        return projection_of(self.subscription(name).consumer).projection

    def documents(self, name: str) -> DocumentQueries:
        """Queries on a document read model (the generation queries see)."""
        return self.queries.documents(self.get(name))

    async def query(self, name: str, sql: str, *args: Any) -> list[Sequence[Any]]:
        """Run a query on a SQL projection's tables, named as placeholders
        (``"SELECT * FROM {daily_sales}"``), in the store's own SQL."""
        return await self.queries.query(self.get(name), sql, *args)

    async def rows(
        self,
        name: str,
        table: str,
        *,
        order_by: Sequence[str] = (),
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """One page of a SQL projection's table (as queries see it): its column names and
        rows. `order_by` names columns (``"-revenue_cents"`` for descending)."""
        return await self.queries.rows(
            self.get(name), table, order_by=order_by, limit=limit, offset=offset
        )

    # --- waiting, status, operations --------------------------------------------------------

    async def wait_until(self, name: str, position: int, timeout: float = 10.0) -> None:
        """Wait until projection `name` has handled everything up to `position` (the
        position of your append). Raises :class:`~eventledger.ProjectionTimeout` after
        `timeout` seconds, :class:`~eventledger.ProjectionFailed` at once if it stopped on
        a failure."""
        await self.subscription(name).wait_until(position, timeout)

    async def status(self, name: str | None = None) -> list[ProjectionStatus]:
        chosen = [self.subscription(name)] if name else list(self._subscriptions.values())
        horizon = await self.store.horizon()
        return [await s.status(projection_of(s.consumer).generation, horizon) for s in chosen]

    async def rebuild(self, name: str) -> int:
        """Rebuild a read model from the start into a fresh copy while the old one keeps
        serving; returns the new generation once queries see it. Progress is in
        :meth:`status`."""
        subscription = self.subscription(name)
        finished: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await subscription.submit(lambda: rebuild.start_rebuild(subscription, self.scope, finished))
        return await finished

    async def reset(self, name: str) -> None:
        """Empty a read model and start it again from the beginning (queries see it fill)."""
        subscription = self.subscription(name)
        await subscription.submit(lambda: rebuild.reset(subscription, self.scope))

    async def dead_letters(
        self, name: str | None = None, *, after: int = 0, limit: int | None = None
    ) -> list[DeadLetter]:
        """Events parked after their handler kept failing (not yet retried or skipped),
        oldest first; `after` (a letter id) and `limit` give one page."""
        if name is not None:
            self.subscription(name)
        return await self.scope.read_side.dead_letters(name, "parked", after=after, limit=limit)

    async def retry(self, name: str, letter_id: int) -> None:
        """Apply a parked event again (after a fix); a stopped projection goes on."""
        subscription = self.subscription(name)
        await subscription.submit(lambda: subscription.retry_letter(letter_id))

    async def skip(self, name: str, letter_id: int) -> None:
        """Give up on a parked event; a projection stopped on it goes on after it."""
        subscription = self.subscription(name)
        await subscription.submit(lambda: subscription.skip_letter(letter_id))


async def wait_until(store: EventStore, name: str, position: int, timeout: float = 10.0) -> None:
    """Wait until the projection `name` (run anywhere) has checkpointed `position`."""
    read_side = store.read_side()
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        reached = await read_side.get_checkpoint(name) or 0
        if reached >= position:
            return
        if time.monotonic() >= deadline:
            raise ProjectionTimeout(
                f"{name} reached position {reached}, not {position}, within {timeout} s"
            )
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.1)
