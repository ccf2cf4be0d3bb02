"""Reads through the cache, interleaved with writes, catch-up and hand-overs between two
processes' worth of runners, always answer as the database did at a position at least
what the reader was owed (the read model's checkpoint when the read began)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventledger import EventStore, NewEvent, RecordedEvent, open_store
from eventledger.cache import CachedDocumentQueries, QueryCache
from eventledger.projections import ProjectionRunner, Range
from tests.cache.accounts import Accounts, fold, matches
from tests.cache.conftest import Counting

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ACCOUNTS = 3

# One operation: ("open" | "deposit" | "close", account, amount) writes; ("read", reader,
# query, account, bound, at_least) reads; ("settle",) waits for the read model to catch
# up; ("handover",) makes the other process run the read model.
writes = st.tuples(
    st.sampled_from(["open", "deposit", "deposit", "close"]),
    st.integers(0, ACCOUNTS - 1),
    st.integers(-20, 50),
)
reads = st.tuples(
    st.just("read"),
    st.integers(0, 1),
    st.sampled_from(["get", "find", "count", "range"]),
    st.integers(0, ACCOUNTS - 1),
    st.integers(-10, 60),
    st.booleans(),
)
operation = st.one_of(writes, reads, reads, st.just(("settle",)), st.just(("handover",)))
rounds = st.lists(st.lists(operation, min_size=1, max_size=6), min_size=2, max_size=8)


@dataclass
class World:
    """Two processes' worth: each its own store connection, runner and cache."""

    stores: list[EventStore]
    runners: list[ProjectionRunner]
    caches: list[QueryCache]
    running: int = 0
    reads: list[tuple[Any, Any, int, int]] = field(default_factory=list)
    handing_over: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def checkpoint(self) -> int:
        return await self.stores[0].read_side().get_checkpoint("accounts") or 0

    async def handover(self) -> None:
        async with self.handing_over:
            await self.runners[self.running].stop()
            self.running = 1 - self.running
            await self.runners[self.running].start()

    async def settle(self) -> None:
        head = await self.stores[0].head_position()
        await self.runners[self.running].wait_until("accounts", head, timeout=20)


@pytest_asyncio.fixture
async def world(shared_store_url: str, redis_url: str, prefix: str) -> AsyncIterator[World]:
    stores = [await open_store(shared_store_url) for _ in range(2)]
    caches = [QueryCache(redis_url, prefix=prefix, timeout=5.0) for _ in range(2)]
    runners = [
        ProjectionRunner(
            store, [Accounts()], cache=cache, batch_size=2, poll_interval=0.05, lease_ttl=2.0
        )
        for store, cache in zip(stores, caches, strict=True)
    ]
    await runners[0].start()
    await active(runners[0])
    yield World(stores, runners, caches)
    for runner in runners:
        await runner.stop()
    for cache in caches:
        await cache.close()
    for store in stores:
        await store.close()


async def active(runner: ProjectionRunner, name: str = "accounts") -> None:
    """Wait until `runner` runs `name` (its tables exist then)."""
    subscription = runner.subscription(name)
    deadline = time.monotonic() + 10
    while not subscription.active:
        assert time.monotonic() < deadline, "the runner did not become active"
        await asyncio.sleep(0.01)


def documents(world: World, reader: int) -> CachedDocumentQueries:
    queries = world.runners[reader].documents("accounts")
    assert isinstance(queries, CachedDocumentQueries)
    return queries


async def run(world: World, tag: str, op: tuple[Any, ...]) -> None:
    if op[0] in ("open", "deposit", "close"):
        kind, account, amount = op
        stream = f"Account-{tag}.{account}"
        data = {"owner": tag} if kind == "open" else {"amount": amount} if kind == "deposit" else {}
        event_type = {"open": "Opened", "deposit": "Deposited", "close": "Closed"}[kind]
        await world.stores[0].append(stream, [NewEvent(event_type, data)])
    elif op[0] == "settle":
        await world.settle()
    elif op[0] == "handover":
        await world.handover()
    else:
        _, reader, query, account, bound, use_owed = op
        spec = (query, f"{tag}.{account}", tag, bound)
        for asking in (reader, reader, 1 - reader):  # the second and third may be hits
            owed = await world.checkpoint()
            answer = await ask(documents(world, asking), spec, owed if use_owed else 0)
            world.reads.append((spec, answer, owed, await world.checkpoint()))


async def ask(docs: CachedDocumentQueries, spec: tuple[Any, ...], at_least: int) -> Any:
    query, doc_id, tag, bound = spec
    if query == "get":
        return await docs.get(doc_id, at_least=at_least)
    if query == "count":
        return await docs.count({"owner": tag}, at_least=at_least)
    where: dict[str, Any] = {"owner": tag}
    if query == "range":
        where["balance"] = Range(gte=bound)
    found = await docs.find(where, order_by="-balance", limit=100, at_least=at_least)
    return sorted(found, key=lambda d: d["id"])


def expected(docs: dict[str, Any], spec: tuple[Any, ...]) -> Any:
    query, doc_id, tag, bound = spec
    if query == "get":
        return docs.get(doc_id)
    where: dict[str, Any] = {"owner": tag}
    if query == "range":
        where["balance"] = Range(gte=bound)
    found = [d for d in docs.values() if matches(d, where)]
    if query == "count":
        return len(found)
    return sorted(found, key=lambda d: d["id"])


def check(reads: list[tuple[Any, Any, int, int]], log: list[RecordedEvent]) -> None:
    for spec, answer, owed, seen in reads:
        candidates = [owed, *[e.position for e in log if owed < e.position <= seen]]
        assert any(expected(fold(log, p), spec) == answer for p in candidates), (
            f"{spec} answered {answer!r}, which the database never held between the"
            f" position owed ({owed}) and the checkpoint after the read ({seen})"
        )


@pytest.mark.postgres
@SETTINGS
@given(plan=rounds)
async def test_answers_through_the_cache_are_the_databases_at_a_position_at_least_owed(
    world: World, counted: Counting, plan: list[list[tuple[Any, ...]]]
) -> None:
    tag = uuid.uuid4().hex[:8]  # each example has accounts of its own
    world.reads.clear()
    for ops in plan:
        await asyncio.gather(*(run(world, tag, op) for op in ops))
    # Then quiet: once caught up and released, a repeated read is served from Redis.
    await world.settle()
    hits = counted.outcomes["hit"]
    spec = ("count", f"{tag}.0", tag, 0)
    deadline = time.monotonic() + 5
    while counted.outcomes["hit"] == hits and time.monotonic() < deadline:
        owed = await world.checkpoint()
        answer = await ask(documents(world, 1 - world.running), spec, owed)
        world.reads.append((spec, answer, owed, await world.checkpoint()))
        await asyncio.sleep(0.02)
    assert counted.outcomes["hit"] > hits, counted.outcomes
    tagged = [e async for e in world.stores[0].read_all() if tag in e.stream_id]
    check(world.reads, tagged)
