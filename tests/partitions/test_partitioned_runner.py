"""A partitioned projection in one process: every partition its own checkpoint and lease,
each stream's events in order, the status summing the partitions up."""

from __future__ import annotations

import asyncio
import math
import time
import zlib

import pytest

from eventledger import EventStore, InvalidInput, NewEvent, open_store
from eventledger.failures import OnFailure, RetryPolicy
from eventledger.projections import (
    Context,
    DocumentProjection,
    InMemoryProjection,
    ProjectionRunner,
    on,
)
from eventledger.records import RecordedEvent
from eventledger.subscriptions.partitions import partition_of
from tests.partitions.worker import PARTITIONS, PerStream


async def append_rounds(store: EventStore, streams: int, per_stream: int) -> int:
    """Events of `streams` streams, interleaved in the log; the last position."""
    position = 0
    for round_ in range(per_stream):
        for n in range(streams):
            result = await store.append(f"Tick-{n}", [NewEvent("Ticked", {"round": round_})])
            position = result.position
    return position


def test_the_partition_of_a_stream_is_crc32_of_its_utf8_id_mod_n() -> None:
    for stream in ("Order-1", "Order-é", "x", "Tick-42"):
        assert partition_of(stream, 6) == zlib.crc32(stream.encode()) % 6
    spread = {partition_of(f"Tick-{n}", 6) for n in range(60)}
    assert spread == set(range(6))


async def test_one_runner_projects_every_stream_in_order_with_a_checkpoint_per_partition(
    shared_store_url: str,
) -> None:
    store = await open_store(shared_store_url)
    try:
        async with ProjectionRunner(
            store, [PerStream()], batch_size=7, lease_ttl=1.0, poll_interval=0.05, owner="one"
        ) as runner:
            last = await append_rounds(store, streams=12, per_stream=5)
            await runner.wait_until("per_stream", last, timeout=30)
            queries = runner.documents("per_stream")
            for n in range(12):
                doc = await queries.get(str(n))
                assert doc == {"count": 5, "last": 5, "bad": []}
            checkpoints = await store.read_side().checkpoints()
            for k in range(PARTITIONS):
                assert checkpoints[f"per_stream#{k}"] == last
            assert "per_stream" not in checkpoints
            [status] = await runner.status("per_stream")
            assert status.position == last
            assert status.events_behind == 0
            assert [p.name for p in status.partitions] == [
                f"per_stream#{k}" for k in range(PARTITIONS)
            ]
            assert all(p.active for p in status.partitions)
            for k in range(PARTITIONS):
                lease = await store.read_side().lease(f"per_stream#{k}")
                assert lease is not None
                assert lease.owner == "one"
    finally:
        await store.close()


async def test_two_runners_in_one_process_share_the_partitions_fairly(
    shared_store_url: str,
) -> None:
    store = await open_store(shared_store_url)
    try:
        first = ProjectionRunner(
            store, [PerStream()], lease_ttl=0.6, poll_interval=0.05, owner="first"
        )
        second = ProjectionRunner(
            store, [PerStream()], lease_ttl=0.6, poll_interval=0.05, owner="second"
        )
        async with first:
            last = await append_rounds(store, streams=8, per_stream=3)
            await first.wait_until("per_stream", last, timeout=30)
            async with second:
                owners = await wait_for_spread(store, members=2, timeout=20)
                assert sorted(owners.values()) == [3, 3]
                last = await append_rounds(store, streams=8, per_stream=2)
                await second.wait_until("per_stream", last, timeout=30)
                await first.wait_until("per_stream", last, timeout=30)
            for n in range(8):
                doc = await first.documents("per_stream").get(str(n))
                assert doc == {"count": 5, "last": 5, "bad": []}
    finally:
        await store.close()


async def wait_for_spread(store: EventStore, members: int, timeout: float) -> dict[str, int]:
    """Wait until every partition is held and no owner holds more than its share."""
    share = math.ceil(PARTITIONS / members)
    deadline = time.monotonic() + timeout
    owners: dict[str, int] = {}
    while time.monotonic() < deadline:
        owners = {}
        held = 0
        for k in range(PARTITIONS):
            lease = await store.read_side().lease(f"per_stream#{k}")
            if lease is not None:
                held += 1
                owners[lease.owner] = owners.get(lease.owner, 0) + 1
        if held == PARTITIONS and len(owners) == members and max(owners.values()) <= share:
            return owners
        await asyncio.sleep(0.05)
    raise AssertionError(f"partitions not spread over {members} within {timeout} s: {owners}")


class Tally(InMemoryProjection):
    partitions = 3

    @on("Ticked")
    def ticked(self, event: RecordedEvent) -> None:
        pass


async def test_an_in_memory_projection_cannot_be_partitioned() -> None:
    store = await open_store("memory://")
    try:
        with pytest.raises(InvalidInput, match="only document and SQL read models"):
            ProjectionRunner(store, [Tally()])
    finally:
        await store.close()


async def test_a_partition_count_out_of_range_is_refused() -> None:
    class Many(PerStream):
        name = "many"
        partitions = 0

    store = await open_store("memory://")
    try:
        with pytest.raises(InvalidInput, match="partitions must be a whole number"):
            ProjectionRunner(store, [Many()])
    finally:
        await store.close()


async def test_rebuild_of_a_partitioned_projection_is_refused_with_what_to_do(
    tmp_path: object,
) -> None:
    store = await open_store("memory://")
    try:
        async with ProjectionRunner(store, [PerStream()], lease_ttl=0.6) as runner:
            with pytest.raises(InvalidInput, match="partitioned"):
                await runner.rebuild("per_stream")
    finally:
        await store.close()


class Fails(DocumentProjection):
    """Counts events per stream; fails on an event marked bad until `fixed`."""

    name = "fails"
    partitions = 3
    retry = RetryPolicy(max_attempts=2, initial_delay=0.01, on_failure=OnFailure.STOP)
    fixed = False

    @on("Ticked")
    async def ticked(self, event: RecordedEvent, context: Context) -> None:
        assert context.docs is not None
        if event.data.get("bad") and not Fails.fixed:
            raise ValueError("bad event")
        doc = await context.docs.get(context.aggregate_id) or {"count": 0}
        doc["count"] += 1
        await context.docs.put(context.aggregate_id, doc)


async def test_a_failing_partition_stops_alone_and_goes_on_when_its_letter_is_retried(
    shared_store_url: str,
) -> None:
    store = await open_store(shared_store_url)
    Fails.fixed = False
    try:
        async with ProjectionRunner(
            store, [Fails()], lease_ttl=0.6, poll_interval=0.05, owner="one"
        ) as runner:
            await store.append("Tick-bad", [NewEvent("Ticked", {"bad": True})])
            last = await append_rounds(store, streams=12, per_stream=2)
            bad = partition_of("Tick-bad", 3)
            others = [n for n in range(12) if partition_of(f"Tick-{n}", 3) != bad]
            assert others
            for _ in range(400):  # the other partitions go on; the bad one stops (after retries)
                [status] = await runner.status("fails")
                if status.partitions[bad].state == "failed" and all(
                    p.position == last for p in status.partitions if p.name != f"fails#{bad}"
                ):
                    break
                await asyncio.sleep(0.025)
            else:
                raise AssertionError(
                    f"the healthy partitions did not finish, or the bad one go on: {status}"
                )
            docs = runner.documents("fails")
            for n in others:
                assert await docs.get(str(n)) == {"count": 2}
            [status] = await runner.status("fails")
            assert status.state == "failed"
            assert status.partitions[bad].state == "failed"
            assert status.position < last
            [letter] = await runner.dead_letters()
            assert letter.subscription == f"fails#{bad}"
            Fails.fixed = True
            await runner.retry(letter.subscription, letter.id)
            await runner.wait_until("fails", last, timeout=30)
            assert await docs.get("bad") == {"count": 1}
            for n in range(12):
                assert await docs.get(str(n)) == {"count": 2}
    finally:
        await store.close()
