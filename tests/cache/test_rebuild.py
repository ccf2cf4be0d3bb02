"""A rebuild swaps in a new generation, and from the swap on no process's cache serves an
answer of the old one; a reset empties the read model in place, and the cache follows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
import redis

from eventledger import NewEvent, open_store
from eventledger.cache import CachedDocumentQueries, QueryCache
from eventledger.projections import ProjectionRunner
from tests.cache.accounts import Accounts
from tests.cache.conftest import Counting
from tests.cache.test_consistency import active

pytestmark = pytest.mark.postgres


@pytest.fixture
def relabelled() -> Iterator[None]:
    yield
    Accounts.label = "v1"


@pytest_asyncio.fixture
async def runners(
    shared_store_url: str, caches: list[QueryCache]
) -> AsyncIterator[list[ProjectionRunner]]:
    stores = [await open_store(shared_store_url) for _ in range(2)]
    made = [
        ProjectionRunner(store, [Accounts()], cache=cache, poll_interval=0.05, batch_size=5)
        for store, cache in zip(stores, caches, strict=True)
    ]
    await made[0].start()
    await active(made[0])
    yield made
    await made[0].stop()
    for store in stores:
        await store.close()


def docs(runner: ProjectionRunner) -> CachedDocumentQueries:
    queries = runner.documents("accounts")
    assert isinstance(queries, CachedDocumentQueries)
    return queries


async def labels(runner: ProjectionRunner) -> set[str]:
    found = await docs(runner).find({"owner": "ann"}, order_by="-balance", limit=100)
    return {doc["label"] for doc in found}


async def test_a_rebuild_swaps_the_generation_and_no_cache_serves_the_old_one(
    runners: list[ProjectionRunner],
    counted: Counting,
    redis_url: str,
    prefix: str,
    relabelled: None,
) -> None:
    store = runners[0].store
    for n in range(30):
        done = await store.append(f"Account-a{n}", [NewEvent("Opened", {"owner": "ann"})])
    await runners[0].wait_until("accounts", done.position)
    for _ in range(20):  # kept, then served, in both processes
        assert await labels(runners[1]) == {"v1"}
        assert await labels(runners[0]) == {"v1"}
        await asyncio.sleep(0.01)
    assert counted.outcomes["hit"] > 0
    Accounts.label = "v2"  # what the new generation will say

    seen: list[set[str]] = []
    swapped = asyncio.Event()

    async def keep_reading() -> None:
        while not swapped.is_set():
            seen.append(await labels(runners[1]))
            await asyncio.sleep(0)

    reading = asyncio.ensure_future(keep_reading())
    generation = await runners[0].rebuild("accounts")
    swapped.set()
    await reading
    assert generation == 2
    assert all(s in ({"v1"}, {"v2"}) for s in seen), seen  # never half of each
    hits = counted.outcomes["hit"]
    for _ in range(20):  # from the swap on: only the new generation, cached or not
        assert await labels(runners[1]) == {"v2"}
        assert await labels(runners[0]) == {"v2"}
        await asyncio.sleep(0.01)
    assert counted.outcomes["hit"] > hits
    # The entries say which generation they were computed from.
    client: Any = redis.Redis.from_url(redis_url)
    try:
        generations = {
            client.hget(key, "gen")
            for key in client.scan_iter(match=f"{prefix}:{{accounts}}:q:*")
            if client.hget(key, "v") == client.hget(f"{prefix}:{{accounts}}:state", "v")
        }
    finally:
        client.close()
    assert generations == {b"2"}


async def test_a_reset_refills_the_read_model_in_place_and_the_cache_follows(
    runners: list[ProjectionRunner], counted: Counting, relabelled: None
) -> None:
    store = runners[0].store
    done = await store.append("Account-r", [NewEvent("Opened", {"owner": "ann"})])
    await runners[0].wait_until("accounts", done.position)
    # Paced as after the reset below: on a loaded machine the first answers may all
    # be computed while the cache still learns the read model's state.
    for _ in range(20):
        assert (await docs(runners[1]).get("r") or {}).get("label") == "v1"
        await asyncio.sleep(0.01)
    assert counted.outcomes["hit"] > 0
    Accounts.label = "v3"
    await runners[0].reset("accounts")  # the same generation, emptied and filled again
    await runners[0].wait_until("accounts", done.position)
    hits = counted.outcomes["hit"]
    for _ in range(20):
        assert (await docs(runners[1]).get("r") or {}).get("label") == "v3"
        await asyncio.sleep(0.01)
    assert counted.outcomes["hit"] > hits
