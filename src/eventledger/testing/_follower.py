"""A follower that polls the log while writers work: every event once, in one order."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable

from eventledger import EventStore, RecordedEvent


async def follow_while(store: EventStore, writing: Awaitable[int]) -> list[RecordedEvent]:
    """Read the log after the last position seen, over and over, while `writing` runs
    (it returns the highest position written); then once more to the end."""
    done = asyncio.Event()
    highest = 0
    seen: list[RecordedEvent] = []

    async def follow() -> None:
        checkpoint = 0
        while True:
            # Once every writer is done and the last append is visible, one more pass
            # must bring the follower to the end.
            final = done.is_set() and await store.head_position() >= highest
            async for event in store.read_all(after=checkpoint):
                seen.append(event)
                checkpoint = event.position
            if final:
                return
            await asyncio.sleep(0.001)

    follower = asyncio.create_task(follow())
    highest = await writing
    done.set()
    await asyncio.wait_for(follower, timeout=60)
    return seen


def assert_each_once_in_order(seen: list[RecordedEvent], written: set[uuid.UUID]) -> None:
    positions = [e.position for e in seen]
    assert all(a < b for a, b in itertools.pairwise(positions)), "order broken"
    ids = [e.id for e in seen]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert set(ids) == written, "an event was skipped"
