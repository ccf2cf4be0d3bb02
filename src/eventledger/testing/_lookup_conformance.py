"""Conformance tests for finding events by id and by correlation id (part of
EventStoreConformance)."""

from __future__ import annotations

import uuid

import pytest

from eventledger import EventStore, InvalidInput, NewEvent


class LookupConformance:
    """Events found by their id, and by the correlation id in their metadata."""

    async def test_an_event_is_found_by_its_id(self, store: EventStore) -> None:
        events = [NewEvent("Happened", {"n": n}) for n in range(3)]
        await store.append("Order-l1", events)
        found = await store.read_event(events[1].id)
        assert found is not None
        assert (found.id, found.stream_id, found.version, found.data) == (
            events[1].id,
            "Order-l1",
            2,
            {"n": 1},
        )
        assert await store.read_event(str(events[2].id)) == (await store.read_event(events[2].id))
        assert await store.read_event(uuid.uuid4()) is None

    async def test_bad_event_ids_are_refused(self, store: EventStore) -> None:
        for bad in ("not-a-uuid", 12, None, ""):
            with pytest.raises(InvalidInput):
                await store.read_event(bad)  # type: ignore[arg-type]

    async def test_events_are_found_by_correlation_id_in_global_order(
        self, store: EventStore
    ) -> None:
        def event(correlation: str | None, n: int) -> NewEvent:
            metadata = {} if correlation is None else {"correlation_id": correlation}
            return NewEvent("Happened", {"n": n}, metadata)

        await store.append("Order-l2", [event("req-1", 1), event("req-2", 2)])
        await store.append("Stock-l2", [event(None, 3), event("req-1", 4)])
        async with store.transaction() as tx:
            await tx.append("Order-l3", [event("req-1", 5)])
        found = await store.read_correlated("req-1")
        assert [e.data["n"] for e in found] == [1, 4, 5]
        assert [e.data["n"] for e in await store.read_correlated("req-1", limit=2)] == [1, 4]
        assert await store.read_correlated("req-unknown") == []
        with pytest.raises(InvalidInput):
            await store.read_correlated("")
        with pytest.raises(InvalidInput):
            await store.read_correlated("req-1", limit=0)
