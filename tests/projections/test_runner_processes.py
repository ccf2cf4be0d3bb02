"""Runners in real processes, killed without warning: nothing applied twice, nothing
missed, and another process takes over within seconds."""

from __future__ import annotations

import asyncio
import functools
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from eventledger import EventStore, NewEvent, open_store
from eventledger.projections import ProjectionRunner
from eventledger.storage import ReadSideStorage
from tests import processes
from tests.processes import kill
from tests.projections.runner_process import Applied

ROOT = Path(__file__).resolve().parents[2]


def start(url: str, owner: str) -> subprocess.Popen[str]:
    return processes.start("tests.projections.runner_process", url, owner)


async def checkpoint(store: EventStore) -> int:
    return await store.read_side().get_checkpoint("applied") or 0


async def wait_for(condition_met: Callable[[], Awaitable[bool]], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await condition_met():
            return time.monotonic() - started
        await asyncio.sleep(0.01)
    raise AssertionError(f"not reached within {timeout} s")


async def assert_applied_exactly_once(store: EventStore, streams: dict[str, list[str]]) -> None:
    async with ProjectionRunner(store, [Applied()], owner="checker") as runner:
        queries = runner.documents("applied")
        for stream, ids in streams.items():
            doc = await queries.get(stream.partition("-")[2])
            assert doc is not None, f"{stream} was never projected"
            assert len(doc["seen"]) == len(set(doc["seen"])), (
                f"an event of {stream} was applied twice"
            )
            assert doc["seen"] == ids, f"{stream}: events missed or out of order"


async def test_a_runner_killed_mid_batch_resumes_without_repeats_or_gaps(
    shared_store_url: str,
) -> None:
    store = await open_store(shared_store_url)
    streams: dict[str, list[str]] = {}
    for n in range(10):
        events = [NewEvent("Ticked", {"n": i}) for i in range(100)]
        await store.append(f"Tick-{n}", events)
        streams[f"Tick-{n}"] = [str(e.id) for e in events]
    head = await store.head_position()
    for round_ in range(8):
        process = start(shared_store_url, f"victim-{round_}")
        # Let it commit a batch, then kill it at a point that moves through the next
        # batch from round to round (a batch takes about 0.1 s).
        reached = await checkpoint(store)
        await wait_for(functools.partial(_moved_past, store, reached), timeout=20)
        await asyncio.sleep(0.01 + 0.025 * round_)
        kill(process)
        if await checkpoint(store) >= head:
            break
    survivor = start(shared_store_url, "survivor")
    try:
        await wait_for(lambda: _moved_past(store, head - 1), timeout=30)
    finally:
        kill(survivor)
    await assert_applied_exactly_once(store, streams)
    await store.close()


async def _moved_past(store: EventStore, position: int) -> bool:
    return await checkpoint(store) > position


async def test_another_process_takes_over_within_seconds_when_the_holder_dies(
    shared_store_url: str,
) -> None:
    store = await open_store(shared_store_url)
    storage = store.read_side()
    first = start(shared_store_url, "first")
    second = start(shared_store_url, "second")
    try:
        await wait_for(lambda: _owner_is(storage, {"first", "second"}), timeout=10)
        holder = await _owner(storage)
        kill(first if holder == "first" else second)
        await store.append("Tick-late", [NewEvent("Ticked", {"n": 0})])
        head = await store.head_position()
        took = await wait_for(lambda: _moved_past(store, head - 1), timeout=15)
        assert took < 5, f"takeover took {took:.1f} s"
        assert await _owner(storage) == ("second" if holder == "first" else "first")
    finally:
        for process in (first, second):
            if process.poll() is None:
                kill(process)
    await store.close()


async def _owner_is(storage: ReadSideStorage, owners: set[str]) -> bool:
    return await _owner(storage) in owners


async def _owner(storage: ReadSideStorage) -> str | None:
    lease = await storage.lease("applied")
    return lease.owner if lease else None
