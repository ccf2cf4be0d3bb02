"""Conformance tests for the limits every backend enforces the same way, before anything
is written (part of EventStoreConformance)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from eventledger import EventStore, EventTooLarge, InvalidInput, NewEvent, open_store


def _with_setting(url: str, key: str, value: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{key}={value}"


class LimitsConformance:
    """The maximum event size, the rule that a transaction appends first, time windows
    and the range of times a store takes."""

    async def test_read_all_until_a_time_ends_at_the_last_event_recorded_then(
        self, store: EventStore
    ) -> None:
        first = await store.append("Order-w1", [NewEvent("A", {}), NewEvent("B", {})])
        await asyncio.sleep(0.02)
        middle = datetime.now(UTC)
        await asyncio.sleep(0.02)
        await store.append("Order-w2", [NewEvent("C", {})])
        early = [e.type async for e in store.read_all(until=middle)]
        assert early == ["A", "B"]
        window = [e.type async for e in store.read_all(since=middle, until=datetime.now(UTC))]
        assert window == ["C"]
        assert [e async for e in store.read_all(until=middle - timedelta(days=1))] == []
        assert [e async for e in store.read_all(since=middle, until=middle)] == []
        assert [e async for e in store.read_all(after=first.position, until=middle)] == []
        with pytest.raises(InvalidInput, match="until"):
            store.read_all(until=datetime(2026, 1, 1))  # no time zone

    async def test_bounds_beyond_the_years_1_to_9999_in_utc_select_as_the_ends_of_time(
        self, store: EventStore
    ) -> None:
        # 0001-01-01T00:00+01:00 is in the year 0 in UTC, which no store can hold: as a
        # bound it selects what the earliest time selects, the same on every backend.
        await store.append("Order-1", [NewEvent("A", {}), NewEvent("B", {})])
        early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
        late = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-1)))
        assert [e.type async for e in store.read_all(since=early)] == ["A", "B"]
        assert [e.type async for e in store.read_all(until=late)] == ["A", "B"]
        assert [e.type async for e in store.read_all(since=early, until=late)] == ["A", "B"]
        assert [e async for e in store.read_all(since=late)] == []
        assert [e async for e in store.read_all(until=early)] == []
        assert [e.type async for e in store.read_stream("Order-1", as_of=late)] == ["A", "B"]
        assert [e async for e in store.read_stream("Order-1", as_of=early)] == []

    async def test_an_event_over_the_size_limit_is_refused_and_nothing_is_written(
        self, store_url: str
    ) -> None:
        store = await open_store(_with_setting(store_url, "max_event_size", "200"))
        try:
            assert store.max_event_size == 200
            small = NewEvent("Fits", {"text": "x" * 100})
            big = NewEvent("TooBig", {"text": "x" * 200})
            with pytest.raises(EventTooLarge, match=r"limit is 200 .*max_event_size"):
                await store.append("Order-big", [small, big])
            with pytest.raises(EventTooLarge):
                await store.append("Order-big", [NewEvent("TooBig", {}, {"note": "x" * 300})])

            async def in_a_transaction() -> None:
                async with store.transaction() as tx:
                    await tx.append("Order-big", [big])

            with pytest.raises(EventTooLarge):
                await in_a_transaction()
            assert await store.stream_version("Order-big") == 0
            await store.append("Order-big", [small])
            assert [e.type async for e in store.read_stream("Order-big")] == ["Fits"]
        finally:
            await store.close()

    async def test_the_default_size_limit_is_four_mebibytes(self, store: EventStore) -> None:
        assert store.max_event_size == 4 << 20
        with pytest.raises(EventTooLarge, match="4,194,304"):
            await store.append("Order-huge", [NewEvent("Huge", {"text": "x" * (4 << 20)})])

    async def test_a_size_limit_that_is_no_number_is_refused(self, store_url: str) -> None:
        for bad in ("0", "-5", "lots", str(1 << 40)):
            with pytest.raises(InvalidInput, match="max_event_size"):
                await open_store(_with_setting(store_url, "max_event_size", bad))

    async def test_a_transaction_appends_before_anything_else_unless_it_says_so(
        self, store: EventStore
    ) -> None:
        read_side = store.read_side()

        async def write_then_append() -> None:
            async with store.transaction() as tx:
                await read_side.set_checkpoint(tx, "limits", 7)
                await tx.append("Order-first", [NewEvent("Late", {})])

        with pytest.raises(InvalidInput, match=r"appends=True"):
            await write_then_append()
        assert await read_side.get_checkpoint("limits") is None
        assert await store.stream_version("Order-first") == 0
        async with store.transaction() as tx:
            await tx.append("Order-first", [NewEvent("First", {})])
            await read_side.set_checkpoint(tx, "limits", 1)
            await tx.append("Order-first", [NewEvent("Second", {})])
        async with store.transaction(appends=True) as tx:
            await read_side.set_checkpoint(tx, "limits", 2)
            await tx.append("Order-first", [NewEvent("Third", {})])
        assert [e.type async for e in store.read_stream("Order-first")] == [
            "First",
            "Second",
            "Third",
        ]
        assert await read_side.get_checkpoint("limits") == 2
