"""A read-only store on a physical standby (made with pg_basebackup into a temporary
folder: tests/standby.py) follows the primary's log gap-free, and refuses to be opened
for writing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from eventledger import (
    EventStore,
    InvalidInput,
    NewEvent,
    OperationalError,
    RecordedEvent,
    open_store,
)
from eventledger.projections import InMemoryProjection, ProjectionRunner, on
from eventledger.testing._follower import assert_each_once_in_order
from tests import standby
from tests.postgres_urls import with_settings

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def primary_and_standby() -> Iterator[tuple[str, str]]:
    with standby.primary_and_standby() as (primary, replica):
        yield primary.url, replica.url


class Tally(InMemoryProjection):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    @on("Ticked")
    def ticked(self, event: RecordedEvent) -> None:
        self.seen.append(event.data["n"])


async def _open_when_replayed(url: str) -> EventStore:
    """The standby has the schema once it replayed the primary's migration."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        try:
            return await open_store(url)
        except OperationalError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


@pytest.fixture
def schema() -> str:
    return f"standby_{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def writer(primary_and_standby: tuple[str, str], schema: str) -> AsyncIterator[EventStore]:
    store = await open_store(with_settings(primary_and_standby[0], schema=schema))
    yield store
    await store.close()


async def test_a_read_only_store_on_a_standby_follows_the_primary_gap_free(
    primary_and_standby: tuple[str, str], writer: EventStore, schema: str
) -> None:
    await writer.append("Tick-0", [NewEvent("Ticked", {"n": 0})])
    reader = await _open_when_replayed(
        with_settings(primary_and_standby[1], schema=schema, read_only="true")
    )
    seen: list[RecordedEvent] = []
    try:
        async with ProjectionRunner(reader, [Tally()], poll_interval=0.05) as runner:
            # Concurrent writers on the primary, one of them holding its transaction open
            # while younger ones commit: the standby's readers wait for it.
            appended = asyncio.Event()
            finish = asyncio.Event()

            async def older() -> None:
                async with writer.transaction() as tx:
                    await tx.append("Tick-older", [NewEvent("Ticked", {"n": 1})])
                    appended.set()
                    await finish.wait()

            task = asyncio.ensure_future(older())
            await appended.wait()
            results = await asyncio.gather(
                *(writer.append(f"Tick-{n}", [NewEvent("Ticked", {"n": n})]) for n in range(2, 12))
            )
            finish.set()
            await task
            last = max(r.position for r in results)
            await runner.wait_until("tally", last, timeout=30)
            assert sorted(runner.get("tally").seen) == list(range(12))  # type: ignore[attr-defined]
        seen = [e async for e in reader.read_all()]
        primary_log = [e async for e in writer.read_all()]
        assert [e.id for e in seen] == [e.id for e in primary_log]
        assert_each_once_in_order(seen, {e.id for e in primary_log})
        with pytest.raises(InvalidInput, match="read-only"):
            await reader.append("Tick-x", [NewEvent("Ticked", {"n": 99})])
    finally:
        await reader.close()


async def test_a_standby_opened_for_writing_says_to_open_it_read_only(
    primary_and_standby: tuple[str, str], writer: EventStore, schema: str
) -> None:
    await writer.append("Tick-0", [NewEvent("Ticked", {"n": 0})])
    url = with_settings(primary_and_standby[1], schema=schema)
    with pytest.raises(OperationalError, match=r"standby .* read_only=true"):
        await open_store(url)
