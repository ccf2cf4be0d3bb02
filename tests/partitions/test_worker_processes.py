"""Partitioned projections run by worker processes on loopback against PostgreSQL: one
worker killed without warning and the others finish with every event projected exactly
once and in order per stream; workers that join share the partitions out."""

from __future__ import annotations

import asyncio
import math
import subprocess
import time

from eventledger import EventStore, NewEvent, open_store
from eventledger.projections import ProjectionRunner
from tests import processes
from tests.partitions.test_partitioned_runner import wait_for_spread
from tests.partitions.worker import PARTITIONS, PerStream

STREAMS = 60
PER_STREAM = 40
TTL = 1.0


def start(url: str, owner: str, slow: float = 0.0) -> subprocess.Popen[str]:
    return processes.start("tests.partitions.worker", url, owner, str(TTL), str(slow))


def stop_all(workers: list[subprocess.Popen[str]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            processes.kill(worker)


async def lowest_checkpoint(store: EventStore) -> int:
    stored = await store.read_side().checkpoints()
    return min(stored.get(f"per_stream#{k}", 0) for k in range(PARTITIONS))


async def wait_for_position(store: EventStore, position: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await lowest_checkpoint(store) >= position:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"partitions at {await lowest_checkpoint(store)}, not {position}, within {timeout} s"
    )


async def append_rounds(store: EventStore, rounds: range) -> int:
    position = 0
    for round_ in rounds:
        for n in range(STREAMS):
            events = [NewEvent("Ticked", {"round": round_, "i": i}) for i in range(2)]
            position = (await store.append(f"Tick-{n}", events)).position
    return position


async def test_three_workers_one_killed_mid_way_project_every_event_once_in_order(
    postgres_schema_url: str,
) -> None:
    store = await open_store(postgres_schema_url)
    workers: list[subprocess.Popen[str]] = []
    try:
        workers = [start(postgres_schema_url, f"w{i}", slow=0.002) for i in range(3)]
        half = await append_rounds(store, range(PER_STREAM // 4))
        await wait_for_spread(store, members=3, timeout=20)
        await wait_for_position(store, half // 2, timeout=60)
        assert await lowest_checkpoint(store) < half, "the kill should land mid-way"
        holder = await store.read_side().lease("per_stream#0")
        assert holder is not None
        victim = workers[int(holder.owner[1:])]
        processes.kill(victim)  # SIGKILL, mid-batch
        last = await append_rounds(store, range(PER_STREAM // 4, PER_STREAM // 2))
        await wait_for_position(store, last, timeout=120)
        owners = await wait_for_spread(store, members=2, timeout=20)
        assert holder.owner not in owners
        runner = ProjectionRunner(store, [PerStream()], owner="checker")  # never started
        queries = runner.documents("per_stream")
        for n in range(STREAMS):
            doc = await queries.get(str(n))
            assert doc is not None, f"Tick-{n} was never projected"
            assert doc["bad"] == [], f"Tick-{n}: events repeated, missed or out of order"
            assert doc["count"] == doc["last"] == PER_STREAM, f"Tick-{n}: {doc}"
    finally:
        stop_all(workers)
        await store.close()


async def test_workers_that_join_take_their_share_and_a_killed_ones_share_is_taken_over(
    postgres_schema_url: str,
) -> None:
    store = await open_store(postgres_schema_url)
    workers: list[subprocess.Popen[str]] = []
    try:
        workers.append(start(postgres_schema_url, "w0"))
        assert await wait_for_spread(store, members=1, timeout=20) == {"w0": PARTITIONS}
        workers += [start(postgres_schema_url, f"w{i}") for i in (1, 2)]
        started = time.monotonic()
        owners = await wait_for_spread(store, members=3, timeout=20)
        joined = time.monotonic() - started
        assert max(owners.values()) <= math.ceil(PARTITIONS / 3)
        processes.kill(workers[1])
        started = time.monotonic()
        owners = await wait_for_spread(store, members=2, timeout=20)
        taken_over = time.monotonic() - started
        assert set(owners) == {"w0", "w2"}
        assert max(owners.values()) <= 3
        last = await append_rounds(store, range(2))
        await wait_for_position(store, last, timeout=60)
        print(f"spread over 3 in {joined:.2f} s; taken over in {taken_over:.2f} s (ttl {TTL})")
    finally:
        stop_all(workers)
        await store.close()
