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
from eventledger.subscriptions.partitions import PartitionedSubscription
from eventledger.subscriptions.subscription import Subscription


class Handed:
    def __init__(self, consumer: DownstreamGoesAway, records: Sequence[RecordedEvent]) -> None:
        self.consumer = consumer
        self.records = records

    async def prepare(self) -> None:
        pass

    async def commit(self, tx: StoreTransaction | None) -> None:
        self.consumer.seen.extend(self.records)
        if len(self.consumer.seen) == 2:
            self.consumer.down = True  # after the first page, downstream goes away


class DownstreamGoesAway:
    """A consumer (a relay, say) whose downstream is unreachable for a while after the
    first page: each step fails before it reads, until it comes back."""

    name = "downstream"
    durable = False
    retry = RetryPolicy()

    def __init__(self) -> None:
        self.seen: list[RecordedEvent] = []
        self.down = False
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
        for _ in range(1000):  # at most 10 s
            if consumer.failed_steps >= 2:
                break
            await asyncio.sleep(0.01)
        assert [e.type for e in consumer.seen] == ["Placed", "Paid"]
        await change()  # while the downstream is away
        consumer.down = False
        for _ in range(1000):
            if len(consumer.seen) > 2:
                break
            await asyncio.sleep(0.01)
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


async def test_partitions_share_a_page_and_one_back_from_a_failure_reads_it_fresh(
    any_store: EventStore,
) -> None:
    await any_store.append("Customer-ann", [registered_ann()])
    settings = SubscriptionSettings("me", batch_size=1, poll_interval=0.01)
    group = PartitionedSubscription(any_store, any_store.read_side(), [Durable()] * 2, settings)
    try:
        first = await group.read_page(0)
        assert await group.read_page(0) is first  # read once for the partitions in step
        await forget(any_store, "ann")
        assert await group.read_page(0) is first  # kept: the same events
        (fresh,) = await group.read_page(0, fresh=True)
        assert fresh.data["email"] == {"$redacted": "ann"}
        assert (await group.read_page(0))[0].data["email"] == {"$redacted": "ann"}
    finally:
        await group.stop()


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
        for _ in range(1000):  # at most 10 s
            if consumer.failed_steps >= 2:
                break
            await asyncio.sleep(0.01)
        consumer.down = False
        for _ in range(1000):
            if len(consumer.seen) > 2:
                break
            await asyncio.sleep(0.01)
    finally:
        await subscription.stop()
    assert [e.type for e in consumer.seen] == ["Placed", "Paid", "Registered"]
    # The first page from wherever (the page read ahead after it was dropped at the
    # first failure, maybe before it ran); after the failed steps, the next page fresh
    # (once); then polls from wherever.
    assert subscription.fresh[0] is False
    assert subscription.fresh.count(True) == 1
