"""The consumer helper: a durable pull consumer that gives RecordedEvents back, acked
explicitly, resuming where its durable was."""

from __future__ import annotations

import asyncio

import pytest

from eventledger import EventStore, NewEvent
from eventledger.errors import InvalidInput
from eventledger.records import RecordedEvent
from eventledger.relay import RelayRunner, consume
from tests.relay.conftest import Target


async def relayed(store: EventStore, target: Target) -> list[RecordedEvent]:
    for n in range(3):
        await store.append(
            f"Order-{n}",
            [
                NewEvent("orders.Placed", {"n": n, "i": i}, metadata={"correlation_id": f"c{n}"})
                for i in range(10)
            ],
        )
    await store.append("Customer-1", [NewEvent("Joined", {"name": "ü"})])
    async with RelayRunner(store, [target.relay()], batch_size=8, poll_interval=0.1) as runner:
        await runner.wait_until("nats", await store.head_position(), timeout=30)
    return [e async for e in store.read_all()]


async def test_the_helper_gives_back_the_events_as_the_store_reads_them(
    store: EventStore, target: Target
) -> None:
    events = await relayed(store, target)
    got = []
    async with consume(
        target.url, durable="all", stream=target.stream, subjects=[f"{target.prefix}.>"]
    ) as inbox:
        for _ in events:
            event = await inbox.next(timeout=10)
            got.append(event)
            await inbox.ack(event)
        with pytest.raises(TimeoutError):
            await inbox.next(timeout=0.5)
    assert got == events


async def test_a_durable_goes_on_after_the_last_acked_event(
    store: EventStore, target: Target
) -> None:
    events = await relayed(store, target)
    orders = [e for e in events if e.category == "Order"]
    options = {
        "durable": "billing",
        "stream": target.stream,
        "subjects": [f"{target.prefix}.Order.>"],
        "ack_wait": 1.0,
    }
    async with consume(target.url, **options) as inbox:  # type: ignore[arg-type]
        for expected in orders[:5]:
            event = await inbox.next(timeout=10)
            assert event == expected
            await inbox.ack(event)
        unacked = await inbox.next(timeout=10)  # taken, never acked: the durable keeps it
        assert unacked == orders[5]
    async with consume(target.url, **options) as inbox:  # type: ignore[arg-type]
        again = [await inbox.next(timeout=10) for _ in orders[5:]]
        for event in again:
            await inbox.ack(event)
    assert again[0] == orders[5]  # delivered again once its ack_wait ran out
    assert sorted(again, key=lambda e: e.position) == orders[5:]


async def test_an_unhandled_event_comes_back_after_a_nak(store: EventStore, target: Target) -> None:
    events = await relayed(store, target)
    async with consume(
        target.url,
        durable="retrying",
        stream=target.stream,
        subjects=[f"{target.prefix}.>"],
        max_ack_pending=1,  # nothing else is delivered while one waits: strict order
    ) as inbox:
        first = await inbox.next(timeout=10)
        await inbox.nak(first)
        assert await inbox.next(timeout=10) == first == events[0]
        await inbox.ack(first)
        assert await inbox.next(timeout=10) == events[1]
        with pytest.raises(InvalidInput, match="acked already"):
            await inbox.ack(first)


async def test_a_durable_that_exists_with_other_subjects_is_refused(
    store: EventStore, target: Target
) -> None:
    await relayed(store, target)
    async with consume(
        target.url, durable="d", stream=target.stream, subjects=[f"{target.prefix}.>"]
    ):
        pass
    with pytest.raises(InvalidInput, match="exists with the subjects"):
        async with consume(
            target.url, durable="d", stream=target.stream, subjects=[f"{target.prefix}.Order.>"]
        ):
            pass


async def test_an_unreachable_server_is_an_operational_error_in_bounded_time() -> None:
    from eventledger.errors import OperationalError
    from tests.relay.conftest import free_port

    started = asyncio.get_running_loop().time()
    with pytest.raises(OperationalError, match="cannot reach NATS"):
        async with consume(f"nats://127.0.0.1:{free_port()}", durable="x", connect_timeout=1.0):
            pass
    assert asyncio.get_running_loop().time() - started < 5


async def test_a_caught_up_consumer_gets_each_new_event_at_once(
    store: EventStore, target: Target
) -> None:
    events = await relayed(store, target)
    runner = RelayRunner(store, [target.relay()], batch_size=8, poll_interval=0.05)
    loop = asyncio.get_running_loop()
    async with (
        runner,
        consume(
            target.url, durable="live", stream=target.stream, subjects=[f"{target.prefix}.>"]
        ) as inbox,
    ):
        for _ in events:
            await inbox.ack(await inbox.next(timeout=10))
        for n in range(3):
            await asyncio.sleep(0.3)  # caught up: the consumer waits for the next event
            appended = loop.time()
            await store.append("Live-1", [NewEvent("Pinged", {"n": n})])
            event = await inbox.next(timeout=10)
            assert (event.stream_id, event.data) == ("Live-1", {"n": n})
            assert loop.time() - appended < 1.5, "an event waited for a batch to fill"
            await inbox.ack(event)
