"""What a subscription feeds and reports: the consumer protocol, its batches, settings,
status, and catch-up copies (see :mod:`eventledger.subscriptions`)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from eventledger.failures import RetryPolicy, describe_error
from eventledger.records import Horizon, RecordedEvent
from eventledger.stores.base import StoreTransaction

__all__ = [
    "Batch",
    "CatchUpCopy",
    "Consumer",
    "HandlerFailed",
    "RebuildProgress",
    "SubscriptionSettings",
    "SubscriptionStatus",
]


class HandlerFailed(Exception):
    """A batch failed at ``records[index]`` with `error` (raised by a :class:`Batch`)."""

    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error
        self.text = describe_error(error)
        self.trace = "".join(traceback.format_exception(error))


class Batch(Protocol):
    """What a consumer does with one batch of events."""

    async def prepare(self) -> None:
        """Work done before the transaction (a process manager sends its commands here)."""
        ...

    async def commit(self, tx: StoreTransaction | None) -> None:
        """Writes that commit with the checkpoint, in `tx` (None: not durable)."""
        ...


class Consumer(Protocol):
    """What a subscription feeds. Raise :class:`HandlerFailed` from a batch to name the
    event it failed at."""

    name: str
    retry: RetryPolicy
    durable: bool
    """Checkpointed and leased (True), or rebuilt from the start in each process."""

    def handles(self, record: RecordedEvent) -> bool: ...
    async def activate(self, tx: StoreTransaction | None) -> None:
        """Get ready to run (create tables, ...), in a transaction when durable."""
        ...

    def batch(self, records: Sequence[RecordedEvent]) -> Batch: ...
    async def before_step(self) -> None:
        """Runs at each step of the loop while the consumer is active."""
        ...

    def memory_bytes(self) -> int | None:
        """About how much memory an in-memory consumer holds (None: not in memory)."""
        ...


@dataclass(frozen=True, slots=True)
class SubscriptionSettings:
    owner: str
    """Who this process is, in leases."""
    batch_size: int = 500
    lease_ttl: float = 5.0
    poll_interval: float = 1.0
    copy_batches_per_step: int = 10
    """How many batches a catch-up copy takes for each live one."""


@dataclass(frozen=True, slots=True)
class RebuildProgress:
    generation: int
    events_done: int
    events_total: int
    events_per_second: float
    seconds_left: float | None


@dataclass(frozen=True, slots=True)
class SubscriptionStatus:
    name: str
    state: str
    """starting, standby (another process runs it), catching_up, running, rebuilding,
    stalled (its steps keep failing, the store is down say), stopped or failed (stopped
    at a parked event)."""
    position: int
    head_position: int
    events_behind: int
    seconds_behind: float
    generation: int
    last_error: str | None
    active: bool
    rebuild: RebuildProgress | None = None
    memory_bytes: int | None = None
    held_back: Horizon | None = None
    """Set when committed events wait for an older writer (see docs/ordering.md): how
    many, and who holds them."""
    behind_capped: bool = False
    """`events_behind` is a lower bound: counting stops at ``BEHIND_COUNTED`` (counting a
    million events costs about 100 ms, and status is asked for every few seconds)."""
    partitions: tuple[SubscriptionStatus, ...] = ()
    """A partitioned subscription's partitions, one status each (see
    :mod:`eventledger.subscriptions.partitions`); empty for one that is not partitioned."""


BEHIND_COUNTED = 100_000
"""How many events behind a status counts at most."""


@dataclass
class CatchUpCopy:
    """A second consumer that follows the log under the subscription's lease until it
    reaches the live position; then `caught_up` runs (in the subscription's task)."""

    consumer: Consumer
    checkpoint_name: str
    generation: int
    caught_up: Callable[[CatchUpCopy], Awaitable[None]]
    failed: Callable[[CatchUpCopy, HandlerFailed], Awaitable[None]]
    position: int = 0
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.monotonic)

    def progress(self) -> RebuildProgress:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        left = max(self.total - self.done, 0)
        return RebuildProgress(
            self.generation,
            self.done,
            max(self.total, self.done),
            rate,
            left / rate if rate > 0 else None,
        )
