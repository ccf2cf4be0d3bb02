"""Conformance tests for appends inside a store transaction (part of EventStoreConformance)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from eventledger import (
    ANY,
    NO_STREAM,
    ConflictError,
    DuplicateEventId,
    EventStore,
    ExpectedVersion,
    InvalidInput,
    NewEvent,
    RecordedEvent,
    WrongExpectedVersion,
)
from eventledger.testing._follower import assert_each_once_in_order, follow_while

StoreOpener = Callable[[], Awaitable[EventStore]]


def _events(count: int, **data: Any) -> list[NewEvent]:
    return [NewEvent("Happened", {"n": n, **data}) for n in range(count)]


async def _all(store: EventStore, after: int = 0) -> list[RecordedEvent]:
    return [e async for e in store.read_all(after=after)]


class _Boom(Exception):
    pass


Append = tuple[str, list[NewEvent], ExpectedVersion]


async def _transaction(store: EventStore, *appends: Append, fail: bool = False) -> None:
    """Append in one transaction, then raise _Boom when `fail`."""
    async with store.transaction() as tx:
        for stream_id, events, expected in appends:
            await tx.append(stream_id, events, expected_version=expected)
        if fail:
            raise _Boom


class TransactionConformance:
    """Appends to several streams in one transaction: all or nothing."""

    async def test_a_transaction_appends_to_several_streams_at_once(
        self, store: EventStore
    ) -> None:
        await store.append("Stock-1", _events(2))
        order, stock = _events(2), _events(1)
        async with store.transaction() as tx:
            first = await tx.append("Order-t1", order, expected_version=NO_STREAM)
            second = await tx.append("Stock-1", stock, expected_version=2)
            third = await tx.append("Order-t1", _events(1), expected_version=2)
        assert (first.version, second.version, third.version) == (2, 3, 3)
        assert first.position < second.position < third.position
        recorded = await _all(store)
        assert [(e.stream_id, e.version) for e in recorded[2:]] == [
            ("Order-t1", 1),
            ("Order-t1", 2),
            ("Stock-1", 3),
            ("Order-t1", 3),
        ]
        positions = {(e.stream_id, e.version): e.position for e in recorded}
        assert positions[("Order-t1", 2)] == first.position
        assert positions[("Stock-1", 3)] == second.position
        assert positions[("Order-t1", 3)] == third.position
        assert [e.id for e in recorded[2:4]] == [e.id for e in order]
        assert await store.head_position() == third.position

    async def test_a_transaction_that_fails_leaves_no_event_behind(self, store: EventStore) -> None:
        appends = [("Order-t2", _events(3), ANY), ("Stock-t2", _events(1), ANY)]
        with pytest.raises(_Boom):
            await _transaction(store, *appends, fail=True)
        assert await _all(store) == []
        assert await store.stream_version("Order-t2") == 0
        assert (await store.append("Order-t2", _events(1), expected_version=0)).version == 1

    async def test_a_version_conflict_inside_a_transaction_rolls_all_of_it_back(
        self, store: EventStore
    ) -> None:
        await store.append("Stock-t3", _events(1))
        appends: list[Append] = [("Order-t3", _events(2), NO_STREAM), ("Stock-t3", _events(1), 5)]
        with pytest.raises(WrongExpectedVersion) as caught:
            await _transaction(store, *appends)
        assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == (
            "Stock-t3",
            5,
            1,
        )
        assert [e.stream_id for e in await _all(store)] == ["Stock-t3"]

    async def test_recorded_ids_are_refused_inside_a_transaction_even_for_a_retry(
        self, store: EventStore
    ) -> None:
        batch = _events(2)
        await store.append("Order-t4", batch)
        retry = [("Order-t5", _events(1), ANY), ("Order-t6", batch, ANY)]
        with pytest.raises(DuplicateEventId):
            await _transaction(store, *retry)
        reused = _events(1)
        twice = [("Order-t7", reused, ANY), ("Order-t8", reused, ANY)]
        with pytest.raises(DuplicateEventId):
            await _transaction(store, *twice)
        assert [e.stream_id for e in await _all(store)] == ["Order-t4", "Order-t4"]

    async def test_a_transaction_refuses_appends_after_one_failed(self, store: EventStore) -> None:
        await store.append("Order-t9", _events(1))

        async def carry_on_after_a_conflict() -> None:
            async with store.transaction() as tx:
                with pytest.raises(WrongExpectedVersion):
                    await tx.append("Order-t9", _events(1), expected_version=NO_STREAM)
                await tx.append("Order-t10", _events(1))

        with pytest.raises(InvalidInput, match="failed earlier"):
            await carry_on_after_a_conflict()
        assert await store.stream_version("Order-t10") == 0

    async def test_bad_input_to_a_transaction_append_is_refused(self, store: EventStore) -> None:
        async with store.transaction() as tx:
            with pytest.raises(InvalidInput):
                await tx.append("", _events(1))
            with pytest.raises(InvalidInput):
                await tx.append("Order-t11", [NewEvent("not a type", {})])
            with pytest.raises(InvalidInput):
                await tx.append("Order-t11", _events(1), expected_version=-7)
        assert await _all(store) == []

    async def test_a_committed_transaction_wakes_readers_waiting_for_appends(
        self, store: EventStore
    ) -> None:
        since = store.append_generation
        waiter = asyncio.ensure_future(store.wait_for_appends(since, 10))
        await asyncio.sleep(0.01)
        async with store.transaction() as tx:
            await tx.append("Order-t12", _events(1))
        assert await asyncio.wait_for(waiter, 10) is True

    async def test_concurrent_transactions_on_one_stream_one_wins(
        self, store: EventStore, open_another: StoreOpener
    ) -> None:
        writers = [await open_another() for _ in range(4)]

        async def create(writer: EventStore, n: int) -> str:
            async with writer.transaction() as tx:
                await tx.append(f"Side-{n}", _events(1))
                await tx.append("Unique-t", _events(1, writer=n), expected_version=NO_STREAM)
            return "won"

        outcomes = await asyncio.gather(
            *(create(w, n) for n, w in enumerate(writers)), return_exceptions=True
        )
        wins = [n for n, o in enumerate(outcomes) if o == "won"]
        assert len(wins) == 1, outcomes
        assert all(isinstance(o, ConflictError) for o in outcomes if o != "won"), outcomes
        streams = {e.stream_id for e in await _all(store)}
        assert streams == {"Unique-t", f"Side-{wins[0]}"}

    async def test_concurrent_transactions_never_make_a_follower_skip_or_repeat(
        self, store: EventStore, open_another: StoreOpener
    ) -> None:
        writers = [await open_another() for _ in range(4)]
        written: set[uuid.UUID] = set()

        async def write(index: int, writer: EventStore) -> int:
            highest = 0
            for n in range(15):
                while True:
                    batches = [_events(1 + (n % 3), writer=index), _events(2, writer=index)]
                    try:
                        async with writer.transaction() as tx:
                            await tx.append(f"TxA{index}-{n}", batches[0])
                            result = await tx.append(f"TxB{index}-{n % 2}", batches[1])
                    except ConflictError:
                        continue  # the memory store's optimistic transactions may collide
                    break
                written.update(e.id for batch in batches for e in batch)
                highest = max(highest, result.position)
            return highest

        async def writing() -> int:
            return max(await asyncio.gather(*(write(i, w) for i, w in enumerate(writers))))

        assert_each_once_in_order(await follow_while(store, writing()), written)
