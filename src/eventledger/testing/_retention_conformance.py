"""Conformance tests for retention and deleting streams (:mod:`eventledger.retention`,
:class:`~eventledger.storage.RetentionStorage`): soft delete and restore, hard deletion
with tombstones, retention by age and by count, and a follower of the log while events
are deleted."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from eventledger import ANY, NO_STREAM, EventStore, NewEvent, Snapshot, WrongExpectedVersion
from eventledger.errors import InvalidInput, NotFound
from eventledger.records import RecordedEvent
from eventledger.retention import (
    RETENTION_STREAM,
    STREAM_DELETED,
    STREAM_RESTORED,
    STREAM_TRUNCATED,
    RetentionPolicy,
    apply_retention,
    delete_stream,
    restore_stream,
    truncate_stream,
)
from eventledger.storage import RetentionStorage
from eventledger.testing._storage_support import OpensStore

__all__ = ["RetentionConformance"]


async def _fill(store: EventStore, stream_id: str, count: int) -> list[int]:
    positions = []
    for n in range(count):
        result = await store.append(stream_id, [NewEvent("Measured", {"n": n})])
        positions.append(result.position)
    return positions


async def _stream(store: EventStore, stream_id: str) -> list[RecordedEvent]:
    return [e async for e in store.read_stream(stream_id)]


async def _log(store: EventStore) -> list[RecordedEvent]:
    return [e async for e in store.read_all()]


async def _tombstones(store: EventStore) -> list[RecordedEvent]:
    return [e async for e in store.read_stream(RETENTION_STREAM)]


class RetentionConformance(OpensStore):
    """Tests every store with ``"retention"`` in its capabilities passes. Subclass it
    and provide ``store_url`` (a fresh, empty store)."""

    async def test_the_store_keeps_retention(self, store: EventStore) -> None:
        assert "retention" in store.capabilities
        assert isinstance(store.retention_storage(), RetentionStorage)

    async def test_soft_delete_hides_the_stream_but_not_its_events_in_the_log(
        self, store: EventStore
    ) -> None:
        await _fill(store, "Reading-1", 3)
        await _fill(store, "Reading-2", 1)
        before = await _log(store)
        await store.save_snapshot(Snapshot("Reading-1", 3, "R", "f", {"n": 3}))
        deleted = await delete_stream(store, "Reading-1")
        assert (deleted.hard, deleted.before_version, deleted.events) == (False, 4, 3)
        assert await _stream(store, "Reading-1") == []
        assert [e async for e in store.read_stream("Reading-1", backwards=True)] == []
        assert await store.read_event(before[0].id) is None
        assert [s.stream_id for s in await store.list_streams(prefix="Reading-")] == ["Reading-2"]
        assert await store.load_snapshot("Reading-1") is None  # a cache: dropped
        assert await store.stream_version("Reading-1") == 3  # versions are never reused
        after = await _log(store)
        assert [e.id for e in after[:-1]] == [e.id for e in before]  # same log, same order
        tombstone = after[-1]
        assert (tombstone.stream_id, tombstone.type) == (RETENTION_STREAM, STREAM_DELETED)
        assert tombstone.data == {
            "stream_id": "Reading-1",
            "hard": False,
            "before_version": 4,
            "events": 3,
        }
        with pytest.raises(NotFound):
            await delete_stream(store, "Reading-1")

    async def test_restore_shows_the_stream_again_and_records_it(self, store: EventStore) -> None:
        await _fill(store, "Reading-1", 2)
        first = (await _stream(store, "Reading-1"))[0]
        await delete_stream(store, "Reading-1")
        restored = await restore_stream(store, "Reading-1")
        assert restored.events == 2
        assert [e.data["n"] for e in await _stream(store, "Reading-1")] == [0, 1]
        assert await store.read_event(first.id) == first
        assert [s.stream_id for s in await store.list_streams()] == [
            RETENTION_STREAM,
            "Reading-1",
        ]
        assert [e.type for e in await _tombstones(store)] == [STREAM_DELETED, STREAM_RESTORED]
        with pytest.raises(NotFound):
            await restore_stream(store, "Reading-1")

    async def test_an_append_to_a_soft_deleted_stream_recreates_it_after_its_versions(
        self, store: EventStore
    ) -> None:
        await _fill(store, "Reading-1", 2)
        await delete_stream(store, "Reading-1")
        with pytest.raises(WrongExpectedVersion):
            await store.append("Reading-1", [NewEvent("Measured", {})], expected_version=NO_STREAM)
        event = NewEvent("Measured", {"n": 9})
        result = await store.append("Reading-1", [event], expected_version=2)
        assert result.version == 3
        assert [(e.version, e.data) for e in await _stream(store, "Reading-1")] == [(3, {"n": 9})]
        (info,) = await store.list_streams(prefix="Reading-")
        assert info.version == 3
        await restore_stream(store, "Reading-1")
        assert [e.version for e in await _stream(store, "Reading-1")] == [1, 2, 3]

    async def test_hard_delete_removes_events_keeps_positions_and_versions(
        self, store: EventStore
    ) -> None:
        gone = await _fill(store, "Reading-1", 3)
        kept = await _fill(store, "Reading-2", 2)
        ids = [e.id for e in await _stream(store, "Reading-1")]
        await store.save_snapshot(Snapshot("Reading-1", 3, "R", "f", {"n": 3}))
        deleted = await delete_stream(store, "Reading-1", hard=True)
        assert (deleted.hard, deleted.before_version, deleted.events) == (True, 4, 3)
        log = await _log(store)
        assert [e.position for e in log[:-1]] == kept
        assert not set(gone) & {e.position for e in log}
        assert [await store.read_event(i) for i in ids] == [None, None, None]
        assert await store.count_events() == 3
        tombstone = log[-1]
        assert (tombstone.type, tombstone.data["hard"], tombstone.data["before_version"]) == (
            STREAM_DELETED,
            True,
            4,
        )
        assert await _stream(store, "Reading-1") == []
        assert await store.load_snapshot("Reading-1") is None
        assert await store.stream_version("Reading-1") == 3
        assert [s.stream_id for s in await store.list_streams(prefix="Reading-")] == ["Reading-2"]
        again = await store.append("Reading-1", [NewEvent("Measured", {})], expected_version=3)
        assert again.version == 4  # the next append continues after the last version
        assert again.position > tombstone.position
        assert [e.version for e in await _stream(store, "Reading-1")] == [4]
        with pytest.raises(NotFound):
            await delete_stream(store, "Nothing-1", hard=True)
        with pytest.raises(InvalidInput):
            await delete_stream(store, RETENTION_STREAM, hard=True)

    async def test_truncation_keeps_the_rest_in_batches_each_with_a_tombstone(
        self, store: EventStore
    ) -> None:
        positions = await _fill(store, "Reading-1", 7)
        await store.save_snapshot(Snapshot("Reading-1", 2, "R", "f", {}))
        await store.save_snapshot(Snapshot("Reading-1", 5, "R", "f", {}))
        done = await truncate_stream(store, "Reading-1", 6, batch=2)
        assert [(d.before_version, d.events) for d in done] == [(3, 2), (5, 2), (6, 1)]
        events = await _stream(store, "Reading-1")
        assert [(e.version, e.position) for e in events] == [(6, positions[5]), (7, positions[6])]
        backwards = [e.version async for e in store.read_stream("Reading-1", backwards=True)]
        assert backwards == [7, 6]
        assert [e.type for e in await _tombstones(store)] == [STREAM_TRUNCATED] * 3
        snapshot = await store.load_snapshot("Reading-1")
        assert snapshot is not None
        assert snapshot.version == 5  # the one at 2 could not catch up
        (info,) = await store.list_streams(prefix="Reading-")
        assert info.version == 7
        assert await truncate_stream(store, "Reading-1", 3) == []  # nothing left below
        assert (await store.append("Reading-1", [NewEvent("M", {})])).version == 8

    async def test_retention_by_count_keeps_the_last_events_of_each_stream(
        self, store: EventStore
    ) -> None:
        await _fill(store, "Reading-1", 5)
        await _fill(store, "Reading-2", 2)
        await _fill(store, "Other-1", 5)
        policy = RetentionPolicy("Reading", max_count=3)
        planned = await apply_retention(store, [policy], dry_run=True)
        assert [(t.stream_id, t.before_version, t.deleted) for t in planned] == [
            ("Reading-1", 3, 2)
        ]
        assert len(await _stream(store, "Reading-1")) == 5  # a dry run changes nothing
        done = await apply_retention(store, [policy])
        assert done == planned
        assert [e.version for e in await _stream(store, "Reading-1")] == [3, 4, 5]
        assert len(await _stream(store, "Other-1")) == 5
        assert await apply_retention(store, [policy]) == []  # done already

    async def test_retention_by_age_deletes_what_is_older(self, store: EventStore) -> None:
        await _fill(store, "Reading-1", 2)
        await asyncio.sleep(0.05)
        middle = datetime.now(UTC)
        await asyncio.sleep(0.05)
        await _fill(store, "Reading-1", 1)
        await _fill(store, "Reading-2", 1)
        policy = RetentionPolicy("Reading", max_age=timedelta(days=1))
        later = middle + timedelta(days=1)
        done = await apply_retention(store, [policy], now=later)
        assert [(t.stream_id, t.deleted) for t in done] == [("Reading-1", 2)]
        assert [e.version for e in await _stream(store, "Reading-1")] == [3]
        everything = await apply_retention(store, [policy], now=later + timedelta(days=1))
        assert [(t.stream_id, t.deleted) for t in everything] == [
            ("Reading-1", 1),
            ("Reading-2", 1),
        ]
        assert await store.list_streams(prefix="Reading-") == []
        assert await store.stream_version("Reading-1") == 3

    async def test_a_follower_never_sees_a_reordering_or_a_repeat_while_events_go(
        self, store: EventStore
    ) -> None:
        streams = [f"Reading-{n}" for n in range(4)]
        for stream_id in streams:
            await _fill(store, stream_id, 30)
        seen: list[RecordedEvent] = []
        finished = asyncio.Event()

        async def follow() -> None:
            checkpoint = 0
            while True:
                final = finished.is_set()
                async for event in store.read_all(after=checkpoint, limit=7):
                    seen.append(event)
                    checkpoint = event.position
                if final:
                    async for event in store.read_all(after=checkpoint):
                        seen.append(event)
                    return
                await asyncio.sleep(0.001)

        follower = asyncio.create_task(follow())
        written: set[uuid.UUID] = set()
        for n, stream_id in enumerate(streams):
            result = await store.append(stream_id, [NewEvent("Late", {})])
            written.add((await _stream(store, stream_id))[-1].id)
            assert result.version == 31
            await truncate_stream(store, stream_id, 20 + n, batch=5)
        finished.set()
        await asyncio.wait_for(follower, timeout=60)
        positions = [e.position for e in seen]
        assert all(a < b for a, b in itertools.pairwise(positions)), "order broken"
        assert len({e.id for e in seen}) == len(seen), "an event was delivered twice"
        left = await _log(store)
        assert {e.id for e in left} <= {e.id for e in seen}, "a kept event was skipped"
        assert written <= {e.id for e in seen}
        batches = sum(-(-(19 + n) // 5) for n in range(len(streams)))
        assert len([e for e in seen if e.type == STREAM_TRUNCATED]) == batches

    async def test_projections_hear_deletions_through_the_log(self, store: EventStore) -> None:
        await _fill(store, "Reading-1", 1)
        await _fill(store, "Reading-2", 1)
        await delete_stream(store, "Reading-1")
        await restore_stream(store, "Reading-1")
        await delete_stream(store, "Reading-2", hard=True)
        heard = [
            (e.type, e.data["stream_id"], e.data.get("hard"))
            async for e in store.read_all()
            if e.stream_id == RETENTION_STREAM
        ]
        assert heard == [
            (STREAM_DELETED, "Reading-1", False),
            (STREAM_RESTORED, "Reading-1", None),
            (STREAM_DELETED, "Reading-2", True),
        ]
        appended = await store.append("Reading-3", [NewEvent("M", {})], expected_version=ANY)
        assert appended.version == 1
