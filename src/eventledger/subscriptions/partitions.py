"""Partitioned subscriptions: one consumer split by a hash of the stream id into N
partitions, each a subscription of its own, shared out between the processes that run it.

- **Partition of an event**: ``crc32(stream id as UTF-8) mod N`` (:func:`partition_of`),
  the same in every process and every Python; so all events of one stream go to one
  partition, in their order.
- **Partition** ``k`` of subscription ``name`` is the subscription ``name#k``: its own
  checkpoint, its own lease, its own dead letters. It reads the whole log and handles
  only its own partition's events (so each partition reads every event: see
  docs/partitions.md for what that costs).
- **Membership**: each process running the subscription holds one of N member leases,
  ``name@member/<slot>`` (slots 0 to N-1), renewed every ``lease_ttl / 3`` seconds. The
  live members are the slots whose lease has not expired; a process that finds no free
  slot (more processes than partitions) holds none and takes only partitions no one holds.
- **Fair share**: a process holds at most ``ceil(N / live members)`` partitions. Above
  it, it releases partitions (their leases are deleted, so another process takes them at
  its next try); below it, its idle partitions try to take their leases. So processes
  that join or leave are balanced within about a lease period, and the partitions of a
  killed process are taken over once their leases (and its member lease) expire.

>>> [partition_of(f"Order-{n}", 4) for n in range(6)]
[1, 3, 1, 3, 0, 2]
>>> partition_name("order_list", 3), member_name("order_list", 0)
('order_list#3', 'order_list@member/0')
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import zlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

from eventledger.errors import InvalidInput
from eventledger.failures import describe_error
from eventledger.observability.logs import working_on
from eventledger.records import Horizon, RecordedEvent
from eventledger.storage import ReadSideStorage
from eventledger.stores.base import EventStore, StoreTransaction
from eventledger.subscriptions.consumer import (
    Batch,
    Consumer,
    SubscriptionSettings,
    SubscriptionStatus,
)
from eventledger.subscriptions.subscription import Subscription, retrieved

__all__ = [
    "MAX_PARTITIONS",
    "PartitionConsumer",
    "PartitionedSubscription",
    "find_partition",
    "member_name",
    "partition_name",
    "partition_of",
]

log = logging.getLogger("eventledger.subscriptions")

MAX_PARTITIONS = 256
"""The most partitions a subscription may have."""
JOIN_SETTLE = 1.0
"""At most how long a starting process waits, after joining, for others that start at the
same moment, before it takes its share (``lease_ttl / 3`` when shorter)."""
PAGES_KEPT = 4
"""How many full pages of the log a process keeps for its partitions to share."""

T = TypeVar("T")


def partition_of(stream_id: str, partitions: int) -> int:
    """The partition (0 to `partitions` - 1) of the events of `stream_id`: stable across
    processes, machines and Python versions (CRC-32 of the UTF-8 stream id)."""
    return zlib.crc32(stream_id.encode("utf-8")) % partitions


def partition_name(name: str, partition: int) -> str:
    """The subscription (checkpoint, lease, dead letters) of one partition of `name`."""
    return f"{name}#{partition}"


def member_name(name: str, slot: int) -> str:
    """The lease that marks a process as a live member of `name`'s group."""
    return f"{name}@member/{slot}"


def find_partition(subscriptions: Iterable[Subscription], name: str) -> Subscription | None:
    """The subscription of partition `name` (``<whole>#<k>``) among `subscriptions`, or
    None."""
    whole = name.rpartition("#")[0]
    for subscription in subscriptions:
        if isinstance(subscription, PartitionedSubscription) and subscription.name == whole:
            for part in subscription.parts:
                if part.name == name:
                    return part
    return None


def check_partitions(name: str, partitions: object) -> int:
    """`partitions` as a count, or :class:`~eventledger.InvalidInput` naming the value."""
    if (
        not isinstance(partitions, int)
        or isinstance(partitions, bool)
        or not 1 <= partitions <= MAX_PARTITIONS
    ):
        raise InvalidInput(
            f"{name}: partitions must be a whole number from 1 to {MAX_PARTITIONS},"
            f" not {partitions!r}"
        )
    return partitions


class PartitionConsumer:
    """One partition of a consumer: the events of the streams that hash to `partition`."""

    def __init__(self, inner: Consumer, partition: int, partitions: int) -> None:
        self.inner = inner
        self.partition = partition
        self.partitions = partitions
        self.name = partition_name(inner.name, partition)
        self.retry = inner.retry
        self.durable = inner.durable

    def handles(self, record: RecordedEvent) -> bool:
        mine = partition_of(record.stream_id, self.partitions) == self.partition
        return mine and self.inner.handles(record)

    async def activate(self, tx: StoreTransaction | None) -> None:
        await self.inner.activate(tx)

    def batch(self, records: Sequence[RecordedEvent]) -> Batch:
        return self.inner.batch(records)

    async def before_step(self) -> None:
        await self.inner.before_step()

    def memory_bytes(self) -> int | None:
        return self.inner.memory_bytes()


class _Partition(Subscription):
    """A partition's subscription: takes its lease only while its process is below its fair
    share, and wakes the group's waiters when it moves."""

    def __init__(self, group: PartitionedSubscription, consumer: PartitionConsumer) -> None:
        super().__init__(group.store, group.read_side, consumer, group.settings)
        self.group = group
        self.partition = consumer.partition
        self.acquiring = False

    async def _become_active(self) -> bool:
        if not self.group.may_take(self):
            return False
        self.acquiring = True
        try:
            return await super()._become_active()
        finally:
            self.acquiring = False

    async def announce(self) -> None:
        await super().announce()
        await self.group.announce()

    async def _read(self, after: int, fresh: bool = False) -> list[RecordedEvent]:
        return await self.group.read_page(after, fresh=fresh)

    async def release(self) -> None:
        """Give the partition up (its lease is deleted) and go back to standby."""
        await self.stop()
        self.start()


class PartitionedSubscription(Subscription):
    """Runs the partitions of one consumer that this process holds (see the module's docs).

    `consumers[k]` runs partition k (a fresh consumer of the whole, say a projection's
    :class:`~eventledger.projections.consumers.StoredConsumer`; it is wrapped in a
    :class:`PartitionConsumer`). As a :class:`Subscription` it stands for the whole: its
    :meth:`reached` is the lowest of its partitions' checkpoints, its status sums them up.
    Operations (:meth:`submit`: rebuild, reset, dead-letter retries) are refused.
    """

    def __init__(
        self,
        store: EventStore,
        read_side: ReadSideStorage,
        consumers: Sequence[Consumer],
        settings: SubscriptionSettings,
    ) -> None:
        if not consumers:
            raise InvalidInput("a partitioned subscription needs at least one partition")
        super().__init__(store, read_side, consumers[0], settings)
        if not self.durable:
            raise InvalidInput(
                f"{self.name}: only durable (checkpointed and leased) consumers can be split"
            )
        self.count = check_partitions(self.name, len(consumers))
        self.parts = [
            _Partition(self, PartitionConsumer(consumer, k, self.count))
            for k, consumer in enumerate(consumers)
        ]
        self.slot: int | None = None
        self.balance_error: str | None = None
        self.members = 1
        self.share = self.count
        self._pages: dict[int, asyncio.Task[list[RecordedEvent]]] = {}

    # --- reading the log once for all partitions held here ---------------------------------

    async def read_page(self, after: int, *, fresh: bool = False) -> list[RecordedEvent]:
        """The page of the log after `after`, read once for all the partitions of this
        process that ask for it (partitions that start from the same checkpoint move in
        step). Only full pages are kept, a few of them: the first `batch_size` events
        after a position stay the same events (the log's order is gap-free), a shorter
        page may grow. `fresh` reads the log again, for a partition coming back from a
        failure or a stand-by: what a kept page reads as may have changed meanwhile (a
        subject forgotten, a stream deleted for good)."""
        if fresh:
            # Every kept page may read as before the failure: none is handed on now
            # (whoever awaits one already keeps it); what is read from here on is new.
            self._pages.clear()
        task = self._pages.get(after)
        if task is None:
            task = asyncio.ensure_future(self._read(after))
            task.add_done_callback(retrieved)  # whoever asked may have been stopped since
            self._pages[after] = task
            while len(self._pages) > PAGES_KEPT:
                del self._pages[next(iter(self._pages))]  # the oldest asked for
        try:
            page = await asyncio.shield(task)
        except Exception:
            self._pages.pop(after, None)
            raise
        if len(page) < self.settings.batch_size and self._pages.get(after) is task:
            del self._pages[after]
        return page

    # --- sharing out ------------------------------------------------------------------------

    def held(self) -> list[_Partition]:
        """The partitions this process runs now."""
        return [p for p in self.parts if p.active]

    def may_take(self, partition: _Partition) -> bool:
        """Whether `partition` may try to take its lease: this process is below its share."""
        if self._stopping:
            return False
        taken = sum(1 for p in self.parts if p is not partition and (p.active or p.acquiring))
        return taken < self.share

    async def _run(self) -> None:
        with working_on(projection=self.name):
            started = False
            while not self._stopping:
                try:
                    await self.balance()
                    self.balance_error = None
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # the store is down, say: the partitions say so
                    self.balance_error = describe_error(error)
                    log.warning("%s: balancing partitions failed: %s", self.name, error)
                if not started:
                    # Others may be starting at this moment: look again before taking.
                    await asyncio.sleep(min(self.settings.lease_ttl / 3, JOIN_SETTLE))
                    with contextlib.suppress(Exception):  # if it fails, the loop says so
                        await self.balance()
                    for part in self.parts:
                        part.start()
                    started = True
                self._sum_up()
                self.settled.set()
                await asyncio.sleep(self.settings.lease_ttl / 3)

    async def balance(self) -> None:
        """Renew this process's membership, count the live members, and release the
        partitions above this process's fair share."""
        await self._renew_membership()
        live = 0
        for slot in range(self.count):
            if slot == self.slot or await self.read_side.lease(member_name(self.name, slot)):
                live += 1
        self.members = max(live, 1)
        self.share = math.ceil(self.count / self.members)
        held = self.held()
        for part in held[self.share :]:
            log.info(
                "%s: releasing partition %d (%d held, fair share %d of %d for %d processes)",
                self.name,
                part.partition,
                len(held),
                self.share,
                self.count,
                self.members,
            )
            await part.release()

    async def _renew_membership(self) -> None:
        owner, ttl = self.settings.owner, self.settings.lease_ttl
        if self.slot is not None and not await self.read_side.acquire_lease(
            member_name(self.name, self.slot), owner, ttl
        ):
            self.slot = None
        if self.slot is None:
            for slot in range(self.count):
                if await self.read_side.acquire_lease(member_name(self.name, slot), owner, ttl):
                    self.slot = slot
                    break

    def _sum_up(self) -> None:
        self.active = any(p.active for p in self.parts)
        states = {p.state for p in self.parts if p.active}
        for state in ("failed", "stalled", "catching_up"):
            if state in states:
                self.state = state
                break
        else:
            self.state = "running" if self.active else "standby"
        errors = [p.last_error for p in self.parts if p.active and p.last_error]
        self.last_error = self.balance_error or (errors[0] if errors else None)

    # --- life -------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop every partition (releasing their leases) and leave the group."""
        self._stopping = True
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        await asyncio.gather(*(p.stop() for p in self.parts))
        for task in self._pages.values():
            task.cancel()
        self._pages.clear()
        if self.slot is not None:
            with contextlib.suppress(Exception):
                await self.read_side.release_lease(
                    member_name(self.name, self.slot), self.settings.owner
                )
            self.slot = None
        self.state = "stopped"
        self.active = False

    # --- the whole --------------------------------------------------------------------------

    async def reached(self) -> int:
        """The position every partition has handled (a read model of a partitioned
        projection is at P only when each of its partitions is at P or beyond)."""
        self._sum_up()  # the state, for waiters that ask it next
        stored = await self.read_side.checkpoints()
        return min(p.position if p.active else stored.get(p.name, 0) for p in self.parts)

    async def status(self, generation: int, horizon: Horizon | None = None) -> SubscriptionStatus:
        parts = [await p.status(generation, horizon) for p in self.parts]
        self._sum_up()
        lowest = min(parts, key=lambda s: s.position)
        return SubscriptionStatus(
            self.name,
            self.state,
            lowest.position,
            max(s.head_position for s in parts),
            lowest.events_behind,
            lowest.seconds_behind,
            generation,
            self.last_error,
            self.active,
            None,
            None,
            lowest.held_back,
            behind_capped=lowest.behind_capped,
            partitions=tuple(parts),
        )

    async def submit(self, operation: Callable[[], Awaitable[T]]) -> T:
        raise InvalidInput(
            f"{self.name} is partitioned ({self.count} partitions): rebuild and reset are not"
            " supported for it yet (to start it again from the beginning, stop every process"
            " that runs it, drop its read model and delete the checkpoints"
            f" {partition_name(self.name, 0)} to {partition_name(self.name, self.count - 1)});"
            " retry or skip a dead letter through its partition's name, the letter's"
            " subscription"
        )
