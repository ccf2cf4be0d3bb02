"""What the storage conformance suites share: the store fixture, a transaction that rolls
back, waiting with a deadline, and comparing times."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from eventledger import EventStore, open_store
from eventledger.stores.base import StoreTransaction

__all__ = ["OpensStore", "close_to", "eventually", "recent", "rolled_back"]

STORED_TIME_SLACK = timedelta(milliseconds=1)
"""How far a time may move when stored (a backend may keep only milliseconds)."""
CLOCK_SLACK = timedelta(seconds=5)
"""How far the database's clock may be from this process's."""


class OpensStore:
    """Opens a fresh store at ``store_url`` (the backend's own fixture) for each test."""

    pytestmark = pytest.mark.asyncio

    @pytest_asyncio.fixture
    async def store(self, store_url: str) -> AsyncIterator[EventStore]:
        store = await open_store(store_url)
        try:
            yield store
        finally:
            await store.close()


class RollBack(Exception):
    """Raised inside a transaction to roll it back."""


@asynccontextmanager
async def rolled_back(store: EventStore) -> AsyncIterator[StoreTransaction]:
    """A transaction of `store` that rolls back: its body's writes must not be kept."""
    try:
        async with store.transaction() as tx:
            yield tx
            raise RollBack
    except RollBack:
        pass


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0
) -> None:
    """Poll `check` until it holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)


def close_to(actual: datetime | None, expected: datetime) -> bool:
    """Whether a time read back is the one stored (within what a backend may round)."""
    return (
        actual is not None
        and actual.tzinfo is not None
        and abs(actual - expected) <= STORED_TIME_SLACK
    )


def recent(actual: datetime | None, since: datetime) -> bool:
    """Whether a time the store stamped lies between `since` and now (give or take the
    database's clock), timezone-aware."""
    return (
        actual is not None
        and actual.tzinfo is not None
        and since - CLOCK_SLACK <= actual <= datetime.now(UTC) + CLOCK_SLACK
    )
