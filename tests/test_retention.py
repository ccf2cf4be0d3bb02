"""Projections hear deletions: a read model of live streams, fed by a running
ProjectionRunner on every backend, drops a stream on StreamDeleted and brings it back
on StreamRestored, and counts what retention truncated."""

from __future__ import annotations

import pytest

from eventledger import NewEvent, RecordedEvent, open_store
from eventledger.projections import InMemoryProjection, on
from eventledger.projections.runner import ProjectionRunner
from eventledger.retention import (
    STREAM_DELETED,
    STREAM_RESTORED,
    STREAM_TRUNCATED,
    RetentionPolicy,
    apply_retention,
    delete_stream,
    restore_stream,
)

pytestmark = pytest.mark.asyncio


class LiveStreams(InMemoryProjection):
    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.deleted: dict[str, bool] = {}
        self.truncated: dict[str, int] = {}

    @on("Measured")
    def measured(self, event: RecordedEvent) -> None:
        self.counts[event.stream_id] = self.counts.get(event.stream_id, 0) + 1

    @on(STREAM_DELETED)
    def stream_deleted(self, event: RecordedEvent) -> None:
        self.deleted[event.data["stream_id"]] = event.data["hard"]
        self.counts.pop(event.data["stream_id"], None)

    @on(STREAM_RESTORED)
    def stream_restored(self, event: RecordedEvent) -> None:
        self.deleted.pop(event.data["stream_id"], None)
        self.counts[event.data["stream_id"]] = event.data["events"]

    @on(STREAM_TRUNCATED)
    def stream_truncated(self, event: RecordedEvent) -> None:
        stream_id = event.data["stream_id"]
        self.truncated[stream_id] = self.truncated.get(stream_id, 0) + event.data["events"]
        self.counts[stream_id] -= event.data["events"]


async def test_a_running_projection_hears_soft_and_hard_deletion_and_retention(
    any_store_url: str,
) -> None:
    async with await open_store(any_store_url) as store:
        for stream_id, count in (("Reading-1", 4), ("Reading-2", 3), ("Reading-3", 2)):
            for n in range(count):
                await store.append(stream_id, [NewEvent("Measured", {"n": n})])
        async with ProjectionRunner(store, [LiveStreams()], poll_interval=0.05) as runner:
            # Caught up first: it counted every event before any goes.
            await runner.wait_until("live_streams", await store.head_position(), timeout=30)
            await delete_stream(store, "Reading-1")
            await delete_stream(store, "Reading-2", hard=True)
            await restore_stream(store, "Reading-1")
            await apply_retention(store, [RetentionPolicy("Reading", max_count=1)])
            await runner.wait_until("live_streams", await store.head_position(), timeout=30)
            model = runner.get("live_streams")
            assert isinstance(model, LiveStreams)
            assert model.deleted == {"Reading-2": True}
            assert model.counts == {"Reading-1": 1, "Reading-3": 1}
            assert model.truncated == {"Reading-1": 3, "Reading-3": 1}

        # Rebuilt from the log as it is now: the deleted events are gone from it, the
        # tombstones are there, and the model comes out the same where it matters.
        async with ProjectionRunner(store, [LiveStreams()], poll_interval=0.05) as runner:
            await runner.wait_until("live_streams", await store.head_position(), timeout=30)
            model = runner.get("live_streams")
            assert isinstance(model, LiveStreams)
            assert model.deleted == {"Reading-2": True}
