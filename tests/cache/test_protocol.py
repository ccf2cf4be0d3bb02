"""The cache's rules, one at a time, with the writer's steps taken by hand: a change in
flight is never served nor kept, an answer computed before a commit is not kept after
it, and nothing is served without a running read model that vouches for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from eventledger import EventStore, NewEvent, _json, open_store
from eventledger.cache import CachedDocumentQueries, QueryCache
from eventledger.projections import ProjectionRunner
from tests.cache.accounts import Accounts
from tests.cache.conftest import Counting
from tests.cache.test_consistency import active

pytestmark = pytest.mark.postgres

TABLE = "rm_accounts_g1"


@dataclass
class Setup:
    store: EventStore
    runner: ProjectionRunner
    writer: QueryCache
    """Changes made by hand: a cache of its own, so that the running runner's steps
    (which release what its own cache marked and did not commit) leave them alone."""
    reader: CachedDocumentQueries
    """Queries of another process's cache."""


@pytest_asyncio.fixture
async def setup(
    shared_store_url: str, caches: list[QueryCache], redis_url: str, prefix: str
) -> AsyncIterator[Setup]:
    writer = QueryCache(redis_url, prefix=prefix, timeout=5.0)
    store = await open_store(shared_store_url)
    other = await open_store(shared_store_url)
    runner = ProjectionRunner(store, [Accounts()], cache=caches[0], poll_interval=0.05)
    reading = ProjectionRunner(other, [Accounts()], cache=caches[1])
    await runner.start()
    await active(runner)
    done = await store.append("Account-a", [NewEvent("Opened", {"owner": "ann"})])
    await runner.wait_until("accounts", done.position)
    reader = reading.documents("accounts")
    assert isinstance(reader, CachedDocumentQueries)
    yield Setup(store, runner, writer, reader)
    await writer.close()
    await runner.stop()
    await other.close()
    await store.close()


async def served(reader: CachedDocumentQueries, counted: Counting, doc_id: str = "a") -> object:
    """Read until the answer comes from Redis (the release after a commit is async)."""
    for _ in range(200):
        hits = counted.outcomes["hit"]
        answer = await reader.get(doc_id)
        if counted.outcomes["hit"] > hits:
            return answer
        await asyncio.sleep(0.01)
    raise AssertionError(f"never served from Redis: {dict(counted.outcomes)}")


async def write_balance(setup: Setup, balance: int) -> None:
    """Change document `a` as the runner would: marked, written, committed."""
    doc = {"id": "a", "owner": "ann", "balance": balance, "label": "v1"}
    async with setup.store.transaction() as tx:
        (await setup.writer.changing("accounts")).commits_with(tx)
        await setup.store.read_side().write_documents(tx, TABLE, {"a": _json.dumps(doc)}, [])


async def test_a_change_in_flight_is_never_served_and_a_commit_is_seen_at_once(
    setup: Setup, counted: Counting
) -> None:
    assert (await served(setup.reader, counted))["balance"] == 0  # type: ignore[index]
    doc = {"id": "a", "owner": "ann", "balance": 7, "label": "v1"}
    async with setup.store.transaction() as tx:
        (await setup.writer.changing("accounts")).commits_with(tx)
        await setup.store.read_side().write_documents(tx, TABLE, {"a": _json.dumps(doc)}, [])
        busy = counted.outcomes["busy"]
        await setup.reader.get("a")  # the database's (old) answer, neither served nor kept
        assert counted.outcomes["busy"] == busy + 1, (dict(counted.outcomes), counted.errors)
    # Committed; its release has not run yet (nothing yielded to it): no stale answer.
    assert await setup.reader.get("a") == doc
    assert await served(setup.reader, counted) == doc


async def test_an_answer_computed_before_a_commit_is_not_kept_after_it(
    setup: Setup, counted: Counting, caches: list[QueryCache]
) -> None:
    await write_balance(setup, 1)
    assert (await served(setup.reader, counted))["balance"] == 1  # type: ignore[index]
    read_side = setup.store.read_side()

    async def old_answer() -> object:
        before = await read_side.get_raw_documents(None, "rm_accounts", ["a"])
        await write_balance(setup, 2)  # commits while this reader computes
        await asyncio.sleep(0.2)  # and is released
        return _json.loads(before["a"])

    async def fresh_answer() -> object:
        return "computed again"

    # A query of its own, so that the lookup misses at a settled version.
    query = ["a", "by hand"]
    old = await caches[1].answer("accounts", read_side, "get", query, old_answer)
    assert old["balance"] == 1  # type: ignore[index]  # returned to this reader only
    for _ in range(3):
        again = await caches[1].answer("accounts", read_side, "get", query, fresh_answer)
        assert again == "computed again"  # the old answer was not kept
    assert (await served(setup.reader, counted))["balance"] == 2  # type: ignore[index]


async def test_nothing_is_served_once_no_running_read_model_vouches_for_it(
    setup: Setup, counted: Counting
) -> None:
    await served(setup.reader, counted)
    await setup.runner.stop()
    await asyncio.sleep(setup.writer.window + 0.2)
    before = counted.outcomes["unvouched"]
    await setup.reader.get("a")
    assert counted.outcomes["unvouched"] == before + 1
    await setup.runner.start()  # taking over again vouches again
    await active(setup.runner)
    await served(setup.reader, counted)


class Partitioned(Accounts):
    name = "partitioned_accounts"
    partitions = 2


async def test_a_partitioned_read_model_is_answered_by_the_database_only(
    shared_store_url: str, caches: list[QueryCache], counted: Counting
) -> None:
    store = await open_store(shared_store_url)
    runner = ProjectionRunner(store, [Partitioned()], cache=caches[0], poll_interval=0.05)
    await runner.start()
    try:
        done = await store.append("Account-p", [NewEvent("Opened", {"owner": "pat"})])
        await runner.wait_until("partitioned_accounts", done.position, timeout=20)
        docs = runner.documents("partitioned_accounts")
        assert not isinstance(docs, CachedDocumentQueries)
        for _ in range(3):
            assert (await docs.get("p"))["owner"] == "pat"  # type: ignore[index]
        assert sum(counted.outcomes.values()) == 0
        assert sum(counted.errors.values()) == 0
    finally:
        await runner.stop()
        await store.close()
