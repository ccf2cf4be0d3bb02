"""The event store conformance suite: what every backend must do, the same way.

A backend's test module subclasses :class:`EventStoreConformance` and supplies
one fixture, ``store_url``, that returns the URL of a fresh, empty store::

    class TestMyStore(EventStoreConformance):
        @pytest.fixture
        def store_url(self, tmp_path: Path) -> str:
            return f"sqlite:///{tmp_path}/events.db"

Needs pytest, pytest-asyncio and hypothesis (``pip install 'eventledger[test]'``).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventledger import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    DuplicateEventId,
    EventStore,
    ExpectedVersion,
    InvalidInput,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StoreClosed,
    WrongExpectedVersion,
    open_store,
)
from eventledger.testing._follower import assert_each_once_in_order, follow_while
from eventledger.testing._limits_conformance import LimitsConformance
from eventledger.testing._lookup_conformance import LookupConformance
from eventledger.testing._transaction_conformance import TransactionConformance

__all__ = ["EventStoreConformance", "StoreOpener"]

StoreOpener = Callable[[], Awaitable[EventStore]]

# The property tests below are inherited by one class per backend (so hypothesis sees
# one method run by several executors) and share the function's store across examples
# (each example works in streams of its own, so examples cannot see each other).
_SHARED_BY_EVERY_BACKEND = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.differing_executors,
    HealthCheck.too_slow,
]


def _events(count: int, kind: str = "Happened", **data: Any) -> list[NewEvent]:
    return [NewEvent(kind, {"n": n, **data}) for n in range(count)]


async def _all(store: EventStore, after: int | None = None) -> list[RecordedEvent]:
    return [e async for e in store.read_all(after=after)]


async def _stream(store: EventStore, stream_id: str, **options: Any) -> list[RecordedEvent]:
    return [e async for e in store.read_stream(stream_id, **options)]


class EventStoreConformance(TransactionConformance, LookupConformance, LimitsConformance):
    """Tests every event store must pass. Subclass it and provide ``store_url``."""

    pytestmark = pytest.mark.asyncio

    @pytest_asyncio.fixture
    async def open_another(self, store_url: str) -> AsyncIterator[StoreOpener]:
        """Opens more stores on the same log (separate connections); closes them after."""
        opened: list[EventStore] = []

        async def opener() -> EventStore:
            store = await open_store(store_url)
            opened.append(store)
            return store

        yield opener
        for store in opened:
            await store.close()

    @pytest_asyncio.fixture
    async def store(self, open_another: StoreOpener) -> EventStore:
        return await open_another()

    # --- appending and reading a stream ---------------------------------------------

    async def test_unknown_stream_has_version_zero_and_no_events(self, store: EventStore) -> None:
        assert await store.stream_version("Order-missing") == 0
        assert await _stream(store, "Order-missing") == []
        assert await _stream(store, "Order-missing", backwards=True) == []

    async def test_first_append_starts_the_stream_at_version_one(self, store: EventStore) -> None:
        result = await store.append("Order-1", _events(3), expected_version=NO_STREAM)
        assert isinstance(result, AppendResult)
        assert result.version == 3
        events = await _stream(store, "Order-1")
        assert [e.version for e in events] == [1, 2, 3]
        assert result.position == events[-1].position
        assert await store.stream_version("Order-1") == 3

    async def test_recorded_events_carry_everything_that_was_appended(
        self, store: EventStore
    ) -> None:
        new = NewEvent(
            "orders.OrderCreated",
            {"customer": "Zoë", "lines": [{"sku": "A-1", "qty": 2, "price": 9.99}], "note": None},
            {"correlation_id": "c-1", "actor": "user:7", "x-custom.key": [1, 2]},
            uuid.uuid4(),
            schema_version=3,
        )
        before = datetime.now(UTC)
        await store.append("Order-9", [new])
        after = datetime.now(UTC)
        (event,) = await _stream(store, "Order-9")
        assert event.id == new.id
        assert isinstance(event.id, uuid.UUID)
        assert event.stream_id == "Order-9"
        assert event.category == "Order"
        assert event.type == "orders.OrderCreated"
        assert event.schema_version == 3
        assert event.data == new.data
        assert event.metadata == new.metadata
        assert event.recorded_at.tzinfo is not None
        assert event.recorded_at.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= event.recorded_at <= after + timedelta(seconds=1)

    async def test_json_values_round_trip_exactly(self, store: EventStore) -> None:
        data: dict[str, Any] = {
            "int64_max": 2**63 - 1,
            "int64_min": -(2**63),
            "float": 0.1,
            "whole_float": 2.0,
            "tiny": 5e-324,
            "bool": True,
            "null": None,
            "unicode": "naïve café ☕ 𝄞",
            "escapes": 'quote " backslash \\ tab \t newline \n',
            "nested": {"deep": [[], {}, [1, [2, [3]]]]},
            "": "empty key",
        }
        await store.append("Json-1", [NewEvent("Stored", data)])
        (event,) = await _stream(store, "Json-1")
        assert event.data == data
        assert type(event.data["whole_float"]) is float
        assert type(event.data["int64_max"]) is int

    async def test_returned_data_is_a_copy_the_caller_may_change(self, store: EventStore) -> None:
        original = {"items": [1, 2]}
        await store.append("Copy-1", [NewEvent("Stored", original)])
        original["items"].append(3)
        (first,) = await _stream(store, "Copy-1")
        first.data["items"].append(4)
        (second,) = await _stream(store, "Copy-1")
        assert second.data == {"items": [1, 2]}

    async def test_stream_ids_may_hold_any_printable_unicode(self, store: EventStore) -> None:
        names = ["Order-ü-1", "客户-42", "a b", "x/y:z?#%_'\"", "emoji-🚀", "x" * 255]
        for name in names:
            await store.append(name, _events(1))
        for name in names:
            (event,) = await _stream(store, name)
            assert event.stream_id == name

    async def test_read_stream_pages_forwards_backwards_and_from_a_version(
        self, store: EventStore
    ) -> None:
        await store.append("Order-2", _events(1200))
        forwards = await _stream(store, "Order-2")
        assert [e.version for e in forwards] == list(range(1, 1201))
        backwards = await _stream(store, "Order-2", backwards=True)
        assert [e.version for e in backwards] == list(range(1200, 0, -1))
        middle = await _stream(store, "Order-2", from_version=600, limit=3)
        assert [e.version for e in middle] == [600, 601, 602]
        down = await _stream(store, "Order-2", from_version=600, backwards=True, limit=3)
        assert [e.version for e in down] == [600, 599, 598]
        assert await _stream(store, "Order-2", from_version=1201) == []
        beyond = await _stream(store, "Order-2", from_version=5000, backwards=True, limit=1)
        assert [e.version for e in beyond] == [1200]
        assert await _stream(store, "Order-2", limit=0) == []
        limited = await _stream(store, "Order-2", limit=700)
        assert [e.version for e in limited] == list(range(1, 701))

    async def test_read_stream_as_of_a_time_shows_the_stream_as_it_was(
        self, store: EventStore
    ) -> None:
        await store.append("Order-3", _events(2))
        await asyncio.sleep(0.02)
        middle = datetime.now(UTC)
        await asyncio.sleep(0.02)
        await store.append("Order-3", _events(3))
        then = await _stream(store, "Order-3", as_of=middle)
        assert [e.version for e in then] == [1, 2]
        then_backwards = await _stream(store, "Order-3", as_of=middle, backwards=True)
        assert [e.version for e in then_backwards] == [2, 1]
        before_anything = await _stream(store, "Order-3", as_of=middle - timedelta(days=1))
        assert before_anything == []
        assert len(await _stream(store, "Order-3", as_of=datetime.now(UTC))) == 5

    async def test_recorded_at_never_decreases_within_a_stream(self, store: EventStore) -> None:
        for _ in range(20):
            await store.append("Order-4", _events(2))
        times = [e.recorded_at for e in await _stream(store, "Order-4")]
        assert times == sorted(times)

    # --- expected versions --------------------------------------------------------------

    async def test_no_stream_on_an_existing_stream_is_a_conflict(self, store: EventStore) -> None:
        await store.append("Order-5", _events(2))
        with pytest.raises(WrongExpectedVersion) as caught:
            await store.append("Order-5", _events(1), expected_version=NO_STREAM)
        assert caught.value.stream_id == "Order-5"
        assert caught.value.expected is NO_STREAM
        assert caught.value.actual == 2
        assert "Order-5" in str(caught.value)
        assert "NO_STREAM" in str(caught.value)
        assert await store.stream_version("Order-5") == 2

    async def test_stream_exists_on_a_missing_stream_is_a_conflict(self, store: EventStore) -> None:
        with pytest.raises(WrongExpectedVersion) as caught:
            await store.append("Order-6", _events(1), expected_version=STREAM_EXISTS)
        assert caught.value.actual == 0
        assert await store.stream_version("Order-6") == 0
        await store.append("Order-6", _events(1))
        result = await store.append("Order-6", _events(1), expected_version=STREAM_EXISTS)
        assert result.version == 2

    @pytest.mark.parametrize("expected", [0, 1, 2, 4, 10])
    async def test_an_exact_version_must_match_the_stream_exactly(
        self, store: EventStore, expected: int
    ) -> None:
        await store.append("Order-7", _events(3))
        with pytest.raises(WrongExpectedVersion) as caught:
            await store.append("Order-7", _events(1), expected_version=expected)
        assert (caught.value.expected, caught.value.actual) == (expected, 3)
        assert f"expected {'no stream' if expected == 0 else expected}" in str(caught.value)
        assert await store.stream_version("Order-7") == 3

    async def test_an_exact_version_on_a_missing_stream_is_a_conflict(
        self, store: EventStore
    ) -> None:
        with pytest.raises(WrongExpectedVersion):
            await store.append("Order-8", _events(1), expected_version=1)
        assert await _all(store) == []

    async def test_matching_expected_versions_append(self, store: EventStore) -> None:
        assert (await store.append("Order-10", _events(1), expected_version=0)).version == 1
        assert (await store.append("Order-10", _events(2), expected_version=1)).version == 3
        assert (await store.append("Order-10", _events(1), expected_version=ANY)).version == 4
        assert (await store.append("Order-11", _events(1), expected_version=ANY)).version == 1

    # --- atomicity and idempotency --------------------------------------------------------

    async def test_a_failed_append_writes_none_of_its_events(self, store: EventStore) -> None:
        taken = NewEvent("Happened", {"n": 0})
        await store.append("Order-12", [taken])
        head = await store.head_position()
        batch = [*_events(5), taken]
        with pytest.raises(DuplicateEventId):
            await store.append("Order-13", batch)
        assert await store.stream_version("Order-13") == 0
        assert await _all(store, after=head) == []
        assert (await store.append("Order-13", batch[:5])).version == 5

    async def test_retrying_an_append_returns_the_first_result_and_writes_nothing(
        self, store: EventStore
    ) -> None:
        batch = _events(3)
        first = await store.append("Order-14", batch, expected_version=NO_STREAM)
        await store.append("Order-14", _events(2), expected_version=3)
        for expected in (NO_STREAM, 0, ANY):
            again = await store.append("Order-14", batch, expected_version=expected)
            assert again == first
        assert await store.stream_version("Order-14") == 5
        assert len(await _all(store)) == 5

    async def test_retrying_an_append_with_an_exact_version_is_idempotent(
        self, store: EventStore
    ) -> None:
        await store.append("Order-15", _events(2))
        batch = _events(2)
        first = await store.append("Order-15", batch, expected_version=2)
        assert await store.append("Order-15", batch, expected_version=2) == first
        assert await store.append("Order-15", batch, expected_version=STREAM_EXISTS) == first
        assert await store.stream_version("Order-15") == 4

    async def test_ids_reused_in_another_stream_are_refused(self, store: EventStore) -> None:
        batch = _events(2)
        await store.append("Order-16", batch)
        with pytest.raises(DuplicateEventId) as caught:
            await store.append("Order-17", batch)
        assert "Order-16" in str(caught.value)
        assert await store.stream_version("Order-17") == 0

    async def test_a_retry_at_a_place_the_expected_version_excludes_is_refused(
        self, store: EventStore
    ) -> None:
        await store.append("Order-18", _events(1))
        batch = _events(1)
        await store.append("Order-18", batch)
        with pytest.raises(DuplicateEventId):
            await store.append("Order-18", batch, expected_version=NO_STREAM)
        with pytest.raises(DuplicateEventId):
            await store.append("Order-18", batch, expected_version=5)

    async def test_partly_recorded_or_reordered_ids_are_refused(self, store: EventStore) -> None:
        batch = _events(3)
        await store.append("Order-19", batch)
        with pytest.raises(DuplicateEventId):
            await store.append("Order-19", [*batch[:2], NewEvent("Happened", {})])
        with pytest.raises(DuplicateEventId):
            await store.append("Order-19", [batch[1], batch[0], batch[2]])
        with pytest.raises(DuplicateEventId):
            await store.append("Order-19", batch[1:2], expected_version=NO_STREAM)
        # A consecutive run of recorded events, at a place the expected version allows,
        # is a retry of (part of) that append: it answers where those events are.
        second = (await _stream(store, "Order-19"))[1]
        retried = await store.append("Order-19", batch[1:2], expected_version=1)
        assert retried == (2, second.position)
        assert await store.stream_version("Order-19") == 3

    async def test_a_large_batch_is_appended_atomically(self, store: EventStore) -> None:
        result = await store.append("Import-1", _events(5000))
        assert result.version == 5000
        events = await _all(store)
        assert len(events) == 5000
        assert [e.version for e in events] == list(range(1, 5001))
        assert result.position == events[-1].position

    # --- the global order ----------------------------------------------------------------

    async def test_read_all_returns_every_event_in_increasing_position_order(
        self, store: EventStore
    ) -> None:
        written: list[uuid.UUID] = []
        for i in range(30):
            batch = _events(1 + i % 4)
            written += [e.id for e in batch]
            await store.append(f"Order-{i % 7}", batch)
        events = await _all(store)
        assert [e.id for e in events] == written
        positions = [e.position for e in events]
        assert positions == sorted(set(positions))
        assert all(0 < p < 2**63 for p in positions)
        assert await store.head_position() == positions[-1]

    async def test_read_all_after_a_position_and_with_a_limit(self, store: EventStore) -> None:
        await store.append("Order-20", _events(1100))
        events = await _all(store)
        tail = await _all(store, after=events[99].position)
        assert [e.id for e in tail] == [e.id for e in events[100:]]
        page = [e async for e in store.read_all(after=events[9].position, limit=5)]
        assert [e.id for e in page] == [e.id for e in events[10:15]]
        assert await _all(store, after=events[-1].position) == []
        assert [e async for e in store.read_all(limit=0)] == []
        big_page = [e async for e in store.read_all(limit=1050)]
        assert len(big_page) == 1050

    async def test_read_page_gives_what_read_all_yields_a_page_at_a_time(
        self, store: EventStore
    ) -> None:
        await store.append("Order-21", _events(30))
        await store.append("Order-22", _events(1, kind="Other", text="é\u2028"))
        await store.append("Order-21", _events(1250))
        events = await _all(store)
        pages: list[RecordedEvent] = []
        after = 0
        while page := await store.read_page(after=after, limit=400):
            assert len(page) <= 400
            pages += page
            after = page[-1].position
        assert pages == events
        assert await store.read_page(limit=10_000) == events
        assert await store.read_page(after=events[-1].position) == []
        assert [e.id for e in await store.read_page(after=events[9].position, limit=5)] == [
            e.id for e in events[10:15]
        ]
        for bad in ({"limit": 0}, {"limit": 10_001}, {"after": -1}, {"limit": True}):
            with pytest.raises(InvalidInput):
                await store.read_page(**bad)

    async def test_read_stream_page_gives_what_read_stream_yields_a_page_at_a_time(
        self, store: EventStore
    ) -> None:
        await store.append("Order-23", _events(30))
        await store.append("Order-24", _events(3, kind="Other", text="é\u2028"))
        await store.append("Order-23", _events(1250))
        events = [e async for e in store.read_stream("Order-23")]
        pages: list[RecordedEvent] = []
        start = 1
        while page := await store.read_stream_page("Order-23", from_version=start, limit=400):
            assert len(page) <= 400
            pages += page
            start = page[-1].version + 1
        assert pages == events
        assert await store.read_stream_page("Order-23", limit=10_000) == events
        assert await store.read_stream_page("Order-23", from_version=1281) == []
        assert await store.read_stream_page("Order-none") == []
        middle = await store.read_stream_page("Order-23", from_version=11, limit=5)
        assert [e.version for e in middle] == [11, 12, 13, 14, 15]
        for bad in ({"limit": 0}, {"limit": 10_001}, {"from_version": 0}, {"limit": True}):
            with pytest.raises(InvalidInput):
                await store.read_stream_page("Order-23", **bad)
        with pytest.raises(InvalidInput):
            await store.read_stream_page("")

    async def test_read_all_since_a_time_starts_at_the_first_event_recorded_then(
        self, store: EventStore
    ) -> None:
        await store.append("Order-21", _events(3))
        await asyncio.sleep(0.02)
        middle = datetime.now(UTC)
        await asyncio.sleep(0.02)
        later = await store.append("Order-22", _events(2))
        events = [e async for e in store.read_all(since=middle)]
        assert [(e.stream_id, e.version) for e in events] == [("Order-22", 1), ("Order-22", 2)]
        assert [e async for e in store.read_all(since=datetime.now(UTC) + timedelta(1))] == []
        assert len([e async for e in store.read_all(since=middle - timedelta(days=1))]) == 5
        after_first = [e async for e in store.read_all(since=middle, after=later.position - 1)]
        assert [e.version for e in after_first] == [2]

    async def test_head_position_of_an_empty_store_is_zero(self, store: EventStore) -> None:
        assert await store.head_position() == 0
        assert await _all(store) == []
        assert await store.count_events() == 0

    async def test_events_are_counted_between_two_positions(self, store: EventStore) -> None:
        await store.append("Order-1", _events(3))
        await store.append("Order-2", _events(2))
        positions = [e.position for e in await _all(store)]
        assert await store.count_events() == 5
        assert await store.count_events(after=positions[1]) == 3
        assert await store.count_events(after=positions[1], upto=positions[3]) == 2
        assert await store.count_events(upto=positions[0]) == 1
        assert await store.count_events(after=positions[1], limit=2) == 2
        assert await store.count_events(after=positions[3], upto=positions[3]) == 0
        assert await store.count_events(after=positions[4], upto=positions[0]) == 0
        with pytest.raises(InvalidInput, match="upto"):
            await store.count_events(upto=-1)

    # --- listing streams -------------------------------------------------------------------

    async def test_list_streams_pages_in_id_order_and_filters_by_prefix(
        self, store: EventStore
    ) -> None:
        names = [f"Order-{i:03d}" for i in range(25)] + ["Customer-1", "Customer-2", "Order"]
        for name in random.sample(names, len(names)):
            await store.append(name, _events(2 if name.endswith("7") else 1))
        listed: list[str] = []
        after: str | None = None
        while page := await store.list_streams(after=after, limit=10):
            listed += [s.stream_id for s in page]
            after = page[-1].stream_id
        assert listed == sorted(names)
        orders = await store.list_streams(prefix="Order-", limit=100)
        assert [s.stream_id for s in orders] == sorted(n for n in names if n.startswith("Order-"))
        info = {s.stream_id: s for s in orders}["Order-007"]
        assert info.version == 2
        assert info.created_at <= info.updated_at
        assert await store.list_streams(prefix="Nothing") == []

    # --- snapshots ---------------------------------------------------------------------------

    async def test_a_stream_without_snapshots_has_none(self, store: EventStore) -> None:
        assert await store.load_snapshot("Order-1") is None

    async def test_the_latest_snapshot_at_or_below_a_version_is_returned(
        self, store: EventStore
    ) -> None:
        for version in (100, 200, 300):
            state = {"total": version, "lines": [{"sku": "A", "qty": version // 100}]}
            await store.save_snapshot(Snapshot("Order-1", version, "Order", "v1:abc", state))
        await store.save_snapshot(Snapshot("Order-2", 50, "Order", "v1:abc", {"total": 50}))
        latest = await store.load_snapshot("Order-1")
        assert latest is not None
        assert (latest.stream_id, latest.version, latest.kind, latest.fingerprint) == (
            "Order-1",
            300,
            "Order",
            "v1:abc",
        )
        assert latest.state == {"total": 300, "lines": [{"sku": "A", "qty": 3}]}
        assert latest.recorded_at is not None
        assert latest.recorded_at.tzinfo is not None
        at_250 = await store.load_snapshot("Order-1", max_version=250)
        assert at_250 is not None
        assert at_250.version == 200
        assert await store.load_snapshot("Order-1", max_version=99) is None
        other = await store.load_snapshot("Order-2")
        assert other is not None
        assert other.state == {"total": 50}

    async def test_a_snapshot_at_the_same_version_replaces_the_old_one(
        self, store: EventStore
    ) -> None:
        await store.save_snapshot(Snapshot("Order-3", 10, "Order", "v1:old", {"a": 1}))
        await store.save_snapshot(Snapshot("Order-3", 10, "Order", "v2:new", {"a": 2}))
        snapshot = await store.load_snapshot("Order-3")
        assert snapshot is not None
        assert (snapshot.fingerprint, snapshot.state) == ("v2:new", {"a": 2})

    @pytest.mark.parametrize(
        ("snapshot", "complaint"),
        [
            (Snapshot("", 1, "Order", "f", {}), "stream id"),
            (Snapshot("Order-1", 0, "Order", "f", {}), "snapshot version"),
            (Snapshot("Order-1", 1, "", "f", {}), "kind"),
            (Snapshot("Order-1", 1, "Order", "", {}), "fingerprint"),
            (Snapshot("Order-1", 1, "Order", "f", [1]), "must be a dict"),  # type: ignore[arg-type]
            (Snapshot("Order-1", 1, "Order", "f", {"x": float("nan")}), "JSON"),
        ],
    )
    async def test_bad_snapshots_are_refused(
        self, store: EventStore, snapshot: Snapshot, complaint: str
    ) -> None:
        with pytest.raises(InvalidInput, match=complaint):
            await store.save_snapshot(snapshot)
        assert await store.load_snapshot("Order-1") is None

    # --- bad input ---------------------------------------------------------------------------

    @pytest.mark.parametrize(
        "stream_id",
        [
            "",
            "x" * 256,
            "bad\nid",
            "tab\tid",
            "nul\x00id",
            "del\x7fid",
            " padded",
            "padded ",
            42,
            None,
        ],
    )
    async def test_bad_stream_ids_are_refused_before_anything_is_written(
        self, store: EventStore, stream_id: Any
    ) -> None:
        with pytest.raises(InvalidInput, match="stream id"):
            await store.append(stream_id, _events(1))
        with pytest.raises(InvalidInput, match="stream id"):
            await store.stream_version(stream_id)
        with pytest.raises(InvalidInput, match="stream id"):
            await _stream(store, stream_id)
        assert await _all(store) == []

    @pytest.mark.parametrize(
        "event_type", ["", "has space", "1starts_with_digit", "dash-ed", "trailing.", "x" * 201, 7]
    )
    async def test_event_types_that_are_not_identifiers_are_refused(
        self, store: EventStore, event_type: Any
    ) -> None:
        with pytest.raises(InvalidInput, match="event type"):
            await store.append("Order-30", [NewEvent("Fine", {}), NewEvent(event_type, {})])
        assert await _all(store) == []

    @pytest.mark.parametrize(
        ("data", "complaint"),
        [
            ({"x": float("nan")}, "NaN"),
            ({"x": float("inf")}, "NaN and infinite"),
            ({"x": datetime.now(UTC)}, "datetime"),
            ({"x": {1, 2}}, "set"),
            ({"x": object()}, "object"),
            ({"x": 2**64}, "64 bits"),
            ({1: "x"}, "keys must be strings"),
            ({"x": "nul\x00"}, "NUL"),
            ({"x": "\ud800"}, "surrogates"),
            (["not", "a", "dict"], "must be a dict"),
            ("text", "must be a dict"),
        ],
    )
    async def test_data_that_is_not_json_is_refused_and_named(
        self, store: EventStore, data: Any, complaint: str
    ) -> None:
        with pytest.raises(InvalidInput, match=complaint) as caught:
            await store.append("Order-31", [NewEvent("Fine", {}), NewEvent("Bad", data)])
        assert "event 1 ('Bad')" in str(caught.value)
        assert await _all(store) == []

    @pytest.mark.parametrize(
        "metadata", [{"": 1}, {"has space": 1}, {"1digit": 1}, {"k": float("nan")}, {5: 1}, []]
    )
    async def test_bad_metadata_is_refused(self, store: EventStore, metadata: Any) -> None:
        with pytest.raises(InvalidInput, match="metadata"):
            await store.append("Order-32", [NewEvent("Fine", {}, metadata)])
        assert await _all(store) == []

    @pytest.mark.parametrize("expected", [-1, True, "1", 1.0, None, 2**63])
    async def test_bad_expected_versions_are_refused(
        self, store: EventStore, expected: Any
    ) -> None:
        with pytest.raises(InvalidInput, match="expected_version"):
            await store.append("Order-33", _events(1), expected_version=expected)
        assert await _all(store) == []

    @pytest.mark.parametrize(
        "events",
        [
            [],
            NewEvent("Single", {}),
            [{"type": "NotANewEvent"}],
            "text",
            [NewEvent("X", {}, id="not-a-uuid")],  # type: ignore[arg-type]
            [NewEvent("X", {}, schema_version=0)],
            [NewEvent("X", {}, schema_version=True)],
        ],
    )
    async def test_malformed_event_lists_are_refused(self, store: EventStore, events: Any) -> None:
        with pytest.raises(InvalidInput):
            await store.append("Order-34", events)
        assert await _all(store) == []

    async def test_the_same_id_twice_in_one_append_is_refused(self, store: EventStore) -> None:
        event = NewEvent("X", {})
        with pytest.raises(InvalidInput, match="twice"):
            await store.append("Order-35", [event, event])
        assert await _all(store) == []

    @pytest.mark.parametrize(
        ("options", "name"),
        [
            ({"after": -1}, "after"),
            ({"after": True}, "after"),
            ({"after": "10"}, "after"),
            ({"after": 1.5}, "after"),
            ({"limit": -1}, "limit"),
            ({"since": "2024-01-01"}, "since"),
            ({"since": datetime(2024, 1, 1)}, "timezone-aware"),
        ],
    )
    async def test_bad_read_all_arguments_are_refused(
        self, store: EventStore, options: dict[str, Any], name: str
    ) -> None:
        with pytest.raises(InvalidInput, match=name):
            await anext(aiter(store.read_all(**options)))

    @pytest.mark.parametrize(
        ("options", "name"),
        [
            ({"from_version": 0}, "from_version"),
            ({"from_version": "1"}, "from_version"),
            ({"limit": False}, "limit"),
            ({"backwards": "yes"}, "backwards"),
            ({"as_of": datetime(2024, 1, 1)}, "timezone-aware"),
        ],
    )
    async def test_bad_read_stream_arguments_are_refused(
        self, store: EventStore, options: dict[str, Any], name: str
    ) -> None:
        await store.append("Order-36", _events(1))
        with pytest.raises(InvalidInput, match=name):
            await anext(aiter(store.read_stream("Order-36", **options)))

    async def test_bad_list_streams_arguments_are_refused(self, store: EventStore) -> None:
        for options in ({"limit": 0}, {"limit": 10_001}, {"prefix": 5}, {"after": 3}):
            with pytest.raises(InvalidInput):
                await store.list_streams(**options)  # type: ignore[arg-type]

    async def test_a_closed_store_refuses_work(self, store: EventStore) -> None:
        await store.close()
        await store.close()
        assert store.closed
        with pytest.raises(StoreClosed):
            await store.append("Order-37", _events(1))
        with pytest.raises(StoreClosed):
            await _all(store)

    # --- concurrency ---------------------------------------------------------------------

    async def test_concurrent_writers_never_make_a_follower_skip_or_repeat(
        self, store: EventStore, open_another: StoreOpener
    ) -> None:
        writers = [await open_another() for _ in range(8)]
        written: set[uuid.UUID] = set()

        async def write(index: int, writer: EventStore) -> int:
            rng = random.Random(index)
            highest = 0
            for n in range(60):
                batch = _events(rng.choice([1, 1, 1, 2, 5]), writer=index)
                written.update(e.id for e in batch)
                result = await writer.append(f"Writer{index}-{n % 5}", batch)
                highest = max(highest, result.position)
            return highest

        async def writing() -> int:
            return max(await asyncio.gather(*(write(i, w) for i, w in enumerate(writers))))

        seen = await follow_while(store, writing())
        assert_each_once_in_order(seen, written)
        assert [e.id for e in await _all(store)] == [e.id for e in seen]

    async def test_concurrent_deciders_on_one_stream_lose_no_update(
        self, store: EventStore, open_another: StoreOpener
    ) -> None:
        writers = [await open_another() for _ in range(8)]
        conflicts = 0

        async def increment(writer: EventStore, times: int) -> None:
            nonlocal conflicts
            for _ in range(times):
                while True:
                    version = await writer.stream_version("Counter-1")
                    try:
                        await writer.append(
                            "Counter-1", [NewEvent("Incremented", {})], expected_version=version
                        )
                        break
                    except WrongExpectedVersion:
                        conflicts += 1

        await asyncio.gather(*(increment(w, 10) for w in writers))
        events = await _stream(store, "Counter-1")
        assert [e.version for e in events] == list(range(1, 81))

    async def test_concurrent_retries_of_one_append_record_it_once(
        self, store: EventStore, open_another: StoreOpener
    ) -> None:
        writers = [await open_another() for _ in range(8)]
        for round_ in range(5):
            batch = _events(3)
            results = await asyncio.gather(
                *(w.append(f"Retry-{round_}", batch, expected_version=NO_STREAM) for w in writers)
            )
            assert len(set(results)) == 1
            assert await store.stream_version(f"Retry-{round_}") == 3
        assert len(await _all(store)) == 15

    async def test_concurrent_creators_of_one_stream_one_wins(
        self, store: EventStore, open_another: StoreOpener
    ) -> None:
        writers = [await open_another() for _ in range(8)]
        outcomes = await asyncio.gather(
            *(w.append("Unique-1", _events(1), expected_version=NO_STREAM) for w in writers),
            return_exceptions=True,
        )
        wins = [o for o in outcomes if isinstance(o, AppendResult)]
        losses = [o for o in outcomes if isinstance(o, WrongExpectedVersion)]
        assert len(wins) == 1
        assert len(losses) == 7
        assert all(loss.actual == 1 for loss in losses)

    # --- properties ------------------------------------------------------------------------

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=_SHARED_BY_EVERY_BACKEND,
    )
    @given(
        operations=st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=2),
                st.one_of(
                    st.sampled_from([ANY, NO_STREAM, STREAM_EXISTS]),
                    st.integers(min_value=0, max_value=6),
                ),
                st.integers(min_value=1, max_value=4),
                st.booleans(),
            ),
            min_size=1,
            max_size=25,
        )
    )
    async def test_appends_behave_like_the_reference_model(
        self,
        store: EventStore,
        operations: list[tuple[int, ExpectedVersion, int, bool]],
    ) -> None:
        """Any sequence of appends, with retries, matches a plain list-of-lists model."""
        prefix = f"P{uuid.uuid4().hex[:10]}"
        head = await store.head_position()
        model: dict[str, list[uuid.UUID]] = {}
        log: list[uuid.UUID] = []
        previous: tuple[str, list[NewEvent], ExpectedVersion, AppendResult] | None = None
        for stream_number, expected, count, retry_previous in operations:
            if retry_previous and previous is not None:
                stream_id, batch, expected, first = previous
                assert await store.append(stream_id, batch, expected_version=expected) == first
                continue
            stream_id = f"{prefix}-{stream_number}"
            batch = _events(count)
            current = len(model.get(stream_id, []))
            allowed = (
                expected is ANY
                or (expected is NO_STREAM and current == 0)
                or (expected is STREAM_EXISTS and current > 0)
                or expected == current
            )
            if allowed:
                result = await store.append(stream_id, batch, expected_version=expected)
                model.setdefault(stream_id, []).extend(e.id for e in batch)
                log.extend(e.id for e in batch)
                assert result.version == len(model[stream_id])
                previous = (stream_id, batch, expected, result)
            else:
                with pytest.raises(WrongExpectedVersion) as caught:
                    await store.append(stream_id, batch, expected_version=expected)
                assert caught.value.actual == current
        for stream_id, ids in model.items():
            events = await _stream(store, stream_id)
            assert [e.id for e in events] == ids
            assert [e.version for e in events] == list(range(1, len(ids) + 1))
            assert await store.stream_version(stream_id) == len(ids)
        # The log shows every append, in order. Not always at the very moment an append
        # returns: a backend may hold back the newest events while older transactions
        # are still open (PostgreSQL does, anywhere in the cluster), so wait a little.
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            mine = [e.id for e in await _all(store, after=head) if e.stream_id.startswith(prefix)]
            if len(mine) >= len(log) or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.01)
        assert mine == log

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=_SHARED_BY_EVERY_BACKEND,
    )
    @given(
        length=st.integers(min_value=0, max_value=30),
        from_version=st.one_of(st.none(), st.integers(min_value=1, max_value=35)),
        limit=st.one_of(st.none(), st.integers(min_value=0, max_value=35)),
        backwards=st.booleans(),
    )
    async def test_read_stream_slices_like_a_list(
        self,
        store: EventStore,
        length: int,
        from_version: int | None,
        limit: int | None,
        backwards: bool,
    ) -> None:
        stream_id = f"Slice-{uuid.uuid4().hex[:10]}"
        if length:
            await store.append(stream_id, _events(length))
        versions = list(range(1, length + 1))
        if backwards:
            start = length if from_version is None else min(from_version, length)
            expected = versions[:start][::-1]
        else:
            expected = versions[(from_version or 1) - 1 :]
        if limit is not None:
            expected = expected[:limit]
        events = await _stream(
            store, stream_id, from_version=from_version, limit=limit, backwards=backwards
        )
        assert [e.version for e in events] == expected
