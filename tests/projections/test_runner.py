"""The projection runner on every store: catch-up, live, restart, failures, rebuilds, leases."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from eventledger import EventStore, NewEvent, open_store
from eventledger.projections import (
    Context,
    DocumentProjection,
    InMemoryProjection,
    OnFailure,
    ProjectionFailed,
    ProjectionRunner,
    ProjectionTimeout,
    RetryPolicy,
    on,
)
from eventledger.records import RecordedEvent

FAST = RetryPolicy(max_attempts=3, initial_delay=0.001, max_delay=0.01)


class Counts(DocumentProjection):
    """Counts events per stream, and remembers every event id it saw (to catch repeats)."""

    name = "counts"
    categories = ("Tick",)
    indexes: ClassVar[dict[str, str]] = {"count": "number"}
    retry = FAST
    broken: ClassVar[bool] = False
    label: ClassVar[str] = "v1"

    @on("Ticked")
    async def ticked(self, event: RecordedEvent, context: Context) -> None:
        if event.data.get("poison") and type(self).broken:
            raise ValueError(f"cannot handle tick {event.data['n']}")
        assert context.docs is not None
        doc = await context.docs.get(context.aggregate_id) or {"count": 0, "seen": []}
        doc["count"] += 1
        doc["seen"].append(str(event.id))
        doc["label"] = type(self).label
        await context.docs.put(context.aggregate_id, doc)


class Skipping(Counts):
    name = "skipping"
    retry = RetryPolicy(max_attempts=2, initial_delay=0.001, on_failure=OnFailure.SKIP)


class Tally(InMemoryProjection):
    def __init__(self) -> None:
        super().__init__()
        self.per_stream: dict[str, int] = {}

    @on("Ticked")
    def ticked(self, event: RecordedEvent, context: Context) -> None:
        self.per_stream[context.stream_id] = self.per_stream.get(context.stream_id, 0) + 1


async def tick(store: EventStore, stream: str, count: int, **data: Any) -> int:
    result = await store.append(
        stream, [NewEvent("Ticked", {"n": n, **data}) for n in range(count)]
    )
    return result.position


async def total(runner: ProjectionRunner, name: str = "counts") -> int:
    docs = await runner.documents(name).find(limit=1000)
    seen = [event_id for d in docs for event_id in d["seen"]]
    assert len(seen) == len(set(seen)), "an event was applied twice"
    return sum(d["count"] for d in docs)


@pytest.fixture(autouse=True)
def _healthy() -> None:
    Counts.broken = False
    Counts.label = "v1"


async def test_catches_up_stays_live_and_resumes_after_a_restart(any_store_url: str) -> None:
    store = await open_store(any_store_url)
    await tick(store, "Tick-a", 700)
    await tick(store, "Other-x", 5)  # another category: not counted
    runner = ProjectionRunner(store, [Counts()], batch_size=100, poll_interval=0.05)
    await runner.start()
    last = await tick(store, "Tick-b", 3)
    await runner.wait_until("counts", last, timeout=10)
    assert await total(runner) == 703
    (status,) = await runner.status()
    assert (status.state, status.active, status.events_behind, status.position) == (
        "running",
        True,
        0,
        last,
    )
    await runner.stop()
    # While nobody runs it, the log moves on; a new runner starts where the old stopped.
    last = await tick(store, "Tick-a", 50)
    second = ProjectionRunner(store, [Counts()], batch_size=100, poll_interval=0.05)
    assert (await second.status())[0].events_behind == 50
    async with second:
        await second.wait_until("counts", last, timeout=10)
        assert await total(second) == 753
    await store.close()


async def test_concurrent_writers_while_projecting_lose_nothing(any_store_url: str) -> None:
    store = await open_store(any_store_url)
    writers = [await open_store(any_store_url) for _ in range(4)]
    async with ProjectionRunner(store, [Counts()], batch_size=50, poll_interval=0.05) as runner:
        positions = await asyncio.gather(
            *(tick(w, f"Tick-{i}-{n}", 3) for i, w in enumerate(writers) for n in range(25))
        )
        await runner.wait_until("counts", max(positions), timeout=20)
        assert await total(runner) == 4 * 25 * 3
    for writer in writers:
        await writer.close()
    await store.close()


async def test_wait_until_times_out_with_a_clear_error(any_store: EventStore) -> None:
    async with ProjectionRunner(any_store, [Counts()], poll_interval=0.05) as runner:
        started = time.monotonic()
        with pytest.raises(ProjectionTimeout, match=r"counts reached position \d+, not 999999"):
            await runner.wait_until("counts", 999_999, timeout=0.3)
        assert time.monotonic() - started < 2


async def test_a_poison_event_is_parked_and_stops_until_retried_after_a_fix(
    any_store: EventStore,
) -> None:
    async with ProjectionRunner(any_store, [Counts()], batch_size=10, poll_interval=0.05) as runner:
        before = await tick(any_store, "Tick-a", 4)
        await runner.wait_until("counts", before, timeout=10)
        Counts.broken = True
        await tick(any_store, "Tick-a", 1, poison=True)
        after = await tick(any_store, "Tick-b", 2)
        with pytest.raises(ProjectionFailed, match="cannot handle tick 0"):
            await runner.wait_until("counts", after, timeout=10)
        (status,) = await runner.status()
        assert status.state == "failed"
        assert "ValueError: cannot handle tick 0" in (status.last_error or "")
        assert status.events_behind == 3
        (letter,) = await runner.dead_letters("counts")
        assert (letter.event_type, letter.attempts, letter.status) == ("Ticked", 3, "parked")
        assert "Traceback" in letter.traceback
        assert "ValueError" in letter.traceback
        assert await total(runner) == 4, "nothing after the poison event was applied"
        with pytest.raises(ProjectionFailed, match="failed again"):
            await runner.retry("counts", letter.id)
        Counts.broken = False  # the fix is deployed
        await runner.retry("counts", letter.id)
        await runner.wait_until("counts", after, timeout=10)
        assert await total(runner) == 7
        assert await runner.dead_letters("counts") == []


async def test_skipping_a_parked_event_lets_the_projection_go_on(any_store: EventStore) -> None:
    async with ProjectionRunner(any_store, [Counts()], batch_size=10, poll_interval=0.05) as runner:
        Counts.broken = True
        await tick(any_store, "Tick-a", 1, poison=True)
        after = await tick(any_store, "Tick-a", 2)
        with pytest.raises(ProjectionFailed):
            await runner.wait_until("counts", after, timeout=10)
        (letter,) = await runner.dead_letters("counts")
        await runner.skip("counts", letter.id)
        await runner.wait_until("counts", after, timeout=10)
        assert await total(runner) == 2


async def test_the_skip_policy_parks_and_goes_on(any_store: EventStore) -> None:
    async with ProjectionRunner(
        any_store, [Skipping()], batch_size=10, poll_interval=0.05
    ) as runner:
        Counts.broken = True
        await tick(any_store, "Tick-a", 2)
        await tick(any_store, "Tick-a", 1, poison=True)
        after = await tick(any_store, "Tick-a", 2)
        await runner.wait_until("skipping", after, timeout=10)
        assert await total(runner, "skipping") == 4
        (letter,) = await runner.dead_letters("skipping")
        Counts.broken = False
        await runner.retry("skipping", letter.id)
        assert await total(runner, "skipping") == 5


async def test_a_rebuild_swaps_in_a_fresh_copy_while_queries_keep_working(
    any_store: EventStore,
) -> None:
    async with ProjectionRunner(any_store, [Counts()], batch_size=50, poll_interval=0.05) as runner:
        for n in range(8):
            last = await tick(any_store, f"Tick-{n}", 40)
        await runner.wait_until("counts", last, timeout=20)
        assert await total(runner) == 320
        Counts.label = "v2"  # the new code the rebuild applies
        seen_totals: list[int] = []
        stop = asyncio.Event()

        async def query_all_along() -> None:
            while not stop.is_set():
                seen_totals.append(await total(runner))
                await asyncio.sleep(0)

        querying = asyncio.ensure_future(query_all_along())
        rebuilding = asyncio.ensure_future(runner.rebuild("counts"))
        progress = None
        while not rebuilding.done():
            (status,) = await runner.status()
            progress = status.rebuild or progress
            await asyncio.sleep(0.005)
        await rebuilding
        stop.set()
        await querying
        assert set(seen_totals) == {320}, "queries saw a half-built read model"
        docs = await runner.documents("counts").find(limit=100)
        assert {d["label"] for d in docs} == {"v2"}
        (status,) = await runner.status()
        assert (status.generation, status.state, status.rebuild) == (2, "running", None)
        assert progress is None or progress.events_total >= 320
        later = await tick(any_store, "Tick-0", 1)
        await runner.wait_until("counts", later, timeout=10)
        assert await total(runner) == 321


async def test_a_reset_empties_the_read_model_and_starts_over(any_store: EventStore) -> None:
    async with ProjectionRunner(any_store, [Counts()], poll_interval=0.05) as runner:
        last = await tick(any_store, "Tick-a", 10)
        await runner.wait_until("counts", last, timeout=10)
        await runner.reset("counts")
        await runner.wait_until("counts", last, timeout=10)
        assert await total(runner) == 10


async def test_in_memory_read_models_rebuild_at_start_and_show_their_size(
    any_store: EventStore,
) -> None:
    await tick(any_store, "Tick-a", 30)
    async with ProjectionRunner(any_store, [Tally()], poll_interval=0.05) as runner:
        last = await tick(any_store, "Tick-b", 5)
        await runner.wait_until("tally", last, timeout=10)
        tally = runner.get("tally")
        assert isinstance(tally, Tally)
        assert tally.per_stream == {"Tick-a": 30, "Tick-b": 5}
        (status,) = await runner.status()
        assert status.memory_bytes is not None
        assert status.memory_bytes > 100
        await runner.rebuild("tally")
        rebuilt = runner.get("tally")
        assert rebuilt is not tally
        assert isinstance(rebuilt, Tally)
        assert rebuilt.per_stream == {"Tick-a": 30, "Tick-b": 5}


async def test_one_runner_at_a_time_and_another_takes_over_when_it_dies(
    any_store_url: str,
) -> None:
    first_store = await open_store(any_store_url)
    second_store = await open_store(any_store_url)
    first = ProjectionRunner(
        first_store, [Counts()], lease_ttl=0.6, poll_interval=0.05, owner="first"
    )
    second = ProjectionRunner(
        second_store, [Counts()], lease_ttl=0.6, poll_interval=0.05, owner="second"
    )
    await first.start()
    last = await tick(first_store, "Tick-a", 20)
    await first.wait_until("counts", last, timeout=10)
    await second.start()
    await asyncio.sleep(0.3)
    assert [s.active for s in await first.status()] == [True]
    assert [(s.active, s.state) for s in await second.status()] == [(False, "standby")]
    with pytest.raises(Exception, match="run by another process"):
        await second.reset("counts")
    # The first runner dies without a word: its tasks stop, its lease is not released.
    for name in first.names:
        task = first.subscription(name).task
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    started = time.monotonic()
    last = await tick(second_store, "Tick-a", 5)
    await second.wait_until("counts", last, timeout=10)
    assert time.monotonic() - started < 5
    assert [s.active for s in await second.status()] == [True]
    assert await total(second) == 25
    await second.stop()
    await first.stop()
    await first_store.close()
    await second_store.close()


class AppendsWhileHandling(InMemoryProjection):
    """Its handler appends an event while the runner's next page is already read."""

    name = "appends_while_handling"
    store: ClassVar[EventStore]
    seen: ClassVar[list[int]] = []

    @on("Ticked")
    async def ticked(self, event: RecordedEvent) -> None:
        self.seen.append(event.position)
        if event.data.get("append"):
            await asyncio.sleep(0.05)  # the page after this one is read (empty) meanwhile
            await self.store.append("Tick-late", [NewEvent("Ticked", {})])


async def test_an_append_while_a_full_page_is_handled_is_handled_without_a_poll(
    any_store: EventStore,
) -> None:
    # The next page is read while a full one is handled; an event appended after that
    # read must wake the runner, not wait for the poll (an hour here).
    AppendsWhileHandling.store = any_store
    AppendsWhileHandling.seen = []
    projection = AppendsWhileHandling()
    runner = ProjectionRunner(
        any_store, [projection], batch_size=2, poll_interval=3600, lease_ttl=3600
    )
    async with runner:
        await runner.wait_until(projection.name, 0, timeout=10)  # running, and waiting
        # A full page whose last handler appends.
        await any_store.append("Tick-1", [NewEvent("Ticked", {}), NewEvent("Ticked", {})])
        await runner.wait_until(projection.name, await any_store.head_position(), timeout=10)
        full = [NewEvent("Ticked", {}), NewEvent("Ticked", {"append": True})]
        await any_store.append("Tick-2", full)
        for _ in range(1000):  # at most 10 s
            if await any_store.stream_version("Tick-late"):
                break
            await asyncio.sleep(0.01)
        await runner.wait_until(projection.name, await any_store.head_position(), timeout=10)
    assert projection.seen == [e.position async for e in any_store.read_all()]
    assert len(projection.seen) == 5


def test_a_context_copied_for_another_event_names_that_event_s_aggregate() -> None:
    def recorded(stream_id: str) -> RecordedEvent:
        return RecordedEvent(uuid.uuid4(), stream_id, 1, 1, "Ticked", 1, {}, {}, datetime.now(UTC))

    context = Context(recorded("Tick-1"), None, None, {})
    assert context.aggregate_id == "1"  # worked out once, then kept
    assert dataclasses.replace(context, record=recorded("Tick-2")).aggregate_id == "2"
