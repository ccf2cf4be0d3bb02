"""Fixtures of the query cache's tests: a real Redis, a key prefix per test (deleted after
it), throwaway servers to stop, and counts of what the cache did.

Redis is ``EVENTLEDGER_TEST_REDIS_URL`` when set, else the machine's at 127.0.0.1:6379,
else a ``redis-server`` started for the session; with none of them the tests fail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from eventledger.cache import QueryCache
from eventledger.observability import instruments
from tests.cache.redis_server import (
    MACHINE,
    RedisServer,
    answers,
    configured,
    delete_prefix,
    unique_prefix,
)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = configured()
    if url is not None:
        if not answers(url):
            pytest.fail(f"EVENTLEDGER_TEST_REDIS_URL={url} does not answer")
        yield url
        return
    if answers(MACHINE):
        yield MACHINE
        return
    try:
        server = RedisServer().start()
    except RuntimeError as error:
        pytest.fail(str(error))
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted after it."""
    chosen = unique_prefix()
    yield chosen
    delete_prefix(redis_url, chosen)


@pytest_asyncio.fixture
async def caches(redis_url: str, prefix: str) -> AsyncIterator[list[QueryCache]]:
    """Two caches on one Redis and prefix: two processes' worth. Their Redis timeout is
    long: these tests are about the protocol, and a call that times out on a busy
    machine would turn an expected outcome into an error (test_outage tests those)."""
    made = [QueryCache(redis_url, prefix=prefix, timeout=5.0) for _ in range(2)]
    yield made
    for cache in made:
        await cache.close()


@pytest.fixture
def throwaway_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a free port, to stop and pause."""
    server = RedisServer().start()
    yield server
    server.close()


class Counting(instruments.Off):
    """Counts the query cache's outcomes and errors (the other instruments do nothing)."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def query_cache(self, read_model: str, outcome: str) -> None:
        self.outcomes[outcome] += 1

    def query_cache_error(self, operation: str) -> None:
        self.errors[operation] += 1


@pytest.fixture
def counted() -> Iterator[Counting]:
    before = instruments.current
    counting = Counting()
    instruments.install(counting)
    yield counting
    instruments.install(before)
