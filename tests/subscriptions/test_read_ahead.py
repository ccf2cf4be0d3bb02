"""A subscription reads the next page while it handles one. That page is handed on only
by the very next step: after a failed step, a stand-by or a parked event it is read
again, so what changed meanwhile (a forgotten subject, a stream deleted for good) is
what the consumer gets, as it was before pages were read ahead."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from eventledger import EventStore, NewEvent, RecordedEvent
from eventledger.failures import RetryPolicy
from eventledger.personal import forget
from eventledger.retention import delete_stream
from eventledger.stores.base import StoreTransaction
from eventledger.subscriptions.consumer import SubscriptionSettings
from eventledger.subscriptions.partitions import PartitionedSubscription, partition_of
from eventledger.subscriptions.subscription import Subscription


class Handed:
    def __init__(self, consumer: DownstreamGoesAway, records: Sequence[RecordedEvent]) -> None:
        self.consumer = consumer
        self.records = records

    async def prepare(self) -> None:
        pass

    async def commit(self, tx: StoreTransaction | None) -> None:
        self.consumer.seen.extend(self.records)
        if len(self.consumer.seen) == self.consumer.down_after and not self.consumer.was_down:
            self.consumer.down = self.consumer.was_down = True  # downstream goes away


class DownstreamGoesAway:
    """A consumer (a relay, say) whose downstream is unreachable for a while after the
    first page: each step fails before it reads, until it comes back."""

    name = "downstream"
    durable = False
    retry = RetryPolicy()

    def __init__(self) -> None:
        self.seen: list[RecordedEvent] = []
        self.down = False
        self.was_down = False
        self.down_after = 2  # events handled before the downstream goes away
        self.failed_steps = 0

    def handles(self, record: RecordedEvent) -> bool:
        return True

    async def activate(self, tx: StoreTransaction | None) -> None:
        pass

    def batch(self, records: Sequence[RecordedEvent]) -> Handed:
        return Handed(self, records)

    async def before_step(self) -> None:
        if self.down:
            self.failed_steps += 1
            raise ConnectionError("downstream unreachable")

    def memory_bytes(self) -> int | None:
        return None


async def until(condition: Callable[[], object]) -> None:
    """Wait until `condition()` holds, 10 s at most (what follows checks the outcome)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)


def registered_ann() -> NewEvent:
    return NewEvent(
        "Registered",
        {"email": "ann@example.com", "customer": "ann"},
        personal={"email": "customer"},
    )


async def delivered_after(store: EventStore, change: Callable[[], Awaitable[object]]) -> object:
    await store.append("Order-1", [NewEvent("Placed", {}), NewEvent("Paid", {})])
    await store.append("Customer-ann", [registered_ann()])
    consumer = DownstreamGoesAway()
    settings = SubscriptionSettings("me", batch_size=2, poll_interval=0.01)
    subscription = Subscription(store, store.read_side(), consumer, settings)
    subscription.start()
    try:
        await until(lambda: consumer.failed_steps >= 2)
        assert [e.type for e in consumer.seen] == ["Placed", "Paid"]
        await change()  # while the downstream is away
        consumer.down = False
        await until(lambda: len(consumer.seen) > 2)
    finally:
        await subscription.stop()
    return consumer.seen[2].type, consumer.seen[2].data.get("email")


async def test_a_subject_forgotten_during_an_outage_is_handed_on_redacted(
    any_store: EventStore,
) -> None:
    third = await delivered_after(any_store, lambda: forget(any_store, "ann"))
    assert third == ("Registered", {"$redacted": "ann"})


async def test_a_stream_deleted_for_good_during_an_outage_is_not_handed_on(
    any_store: EventStore,
) -> None:
    third = await delivered_after(
        any_store, lambda: delete_stream(any_store, "Customer-ann", hard=True)
    )
    assert third == ("StreamDeleted", None)


class Durable(DownstreamGoesAway):
    name = "grouped"
    durable = True


class StaysUp(Durable):
    """A partition whose downstream never goes away."""

    async def before_step(self) -> None:
        pass


async def test_a_partition_back_from_a_failure_does_not_hand_on_pages_its_group_kept(
    any_store: EventStore,
) -> None:
    # Partition 0 fails after its first event; partition 1 runs on, and the pages it
    # reads are kept for the group. Ann is forgotten; partition 0 comes back: her
    # event reaches it redacted, not from a page read before.
    zero = [s for s in (f"Order-{n}" for n in range(50)) if partition_of(s, 2) == 0]
    one = [s for s in (f"Order-{n}" for n in range(50)) if partition_of(s, 2) == 1]
    assert partition_of("Customer-ann", 2) == 0
    await any_store.append(zero[0], [NewEvent("Placed", {})])
    await any_store.append(one[0], [NewEvent("Placed", {})])
    await any_store.append("Customer-ann", [registered_ann()])
    failing, running = Durable(), StaysUp()
    failing.down_after = 1
    settings = SubscriptionSettings("me", batch_size=1, poll_interval=0.01)
    group = PartitionedSubscription(any_store, any_store.read_side(), [failing, running], settings)
    group.start()
    try:
        await until(lambda: failing.failed_steps >= 2 and running.seen)
        assert [e.type for e in failing.seen] == ["Placed"]
        await forget(any_store, "ann")
        failing.down = False
        await until(lambda: len(failing.seen) >= 2)
    finally:
        await group.stop()
    assert [(e.type, e.data["email"]) for e in failing.seen[1:]] == [
        ("Registered", {"$redacted": "ann"})
    ]


class Reads(Subscription):
    """Remembers whether each page it read itself was asked for fresh."""

    fresh: list[bool]

    async def _read(self, after: int, fresh: bool = False) -> list[RecordedEvent]:
        self.fresh.append(fresh)
        return await super()._read(after, fresh)


async def test_a_subscription_back_from_a_failed_step_asks_for_a_fresh_page(
    any_store: EventStore,
) -> None:
    # Where pages are shared (partitions), the first read after a failure must not be
    # a page kept from before it.
    await any_store.append("Order-1", [NewEvent("Placed", {}), NewEvent("Paid", {})])
    await any_store.append("Customer-ann", [registered_ann()])
    consumer = DownstreamGoesAway()
    settings = SubscriptionSettings("me", batch_size=2, poll_interval=0.01)
    subscription = Reads(any_store, any_store.read_side(), consumer, settings)
    subscription.fresh = []
    subscription.start()
    try:
        await until(lambda: consumer.failed_steps >= 2)
        consumer.down = False
        await until(lambda: len(consumer.seen) > 2)
    finally:
        await subscription.stop()
    assert [e.type for e in consumer.seen] == ["Placed", "Paid", "Registered"]
    # The first page from wherever (the page read ahead after it was dropped at the
    # first failure, maybe before it ran); after the failed steps, the next page fresh
    # (once); then polls from wherever.
    assert subscription.fresh[0] is False
    assert subscription.fresh.count(True) == 1
