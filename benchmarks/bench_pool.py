"""The store's own connection pool beside asyncpg's, on the same appends.

Run: python -m benchmarks.bench_pool [--appends N]

The store keeps a small pool of its own (``stores/postgres/pool.py``): no proxy
objects, no reset on every release (only after a transaction in which SQL ran,
folded into the COMMIT). This runs single-event appends, 1 writer and 8 writers,
through the store as shipped and through the same store with asyncpg's pool
(``asyncpg.create_pool`` with the store's connection settings) swapped in,
alternated, medians of 3.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

import asyncpg

from benchmarks.bench_store import postgres_url
from eventledger import NewEvent, open_store
from eventledger.stores.postgres import PostgresStore, split_url
from eventledger.stores.postgres.store import _init_connection
from eventledger.stores.postgres.url import PostgresSettings

SCHEMA = "bench_pool"


class AsyncpgPool:
    """asyncpg's pool behind the interface the store uses."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.releasing: set[asyncio.Future[None]] = set()

    async def acquire(self) -> Any:
        return await self.pool.acquire()

    def release(self, conn: Any, reusable: bool = True) -> None:
        if not reusable:
            conn.terminate()
        # asyncpg releases (and resets) asynchronously; the store's release is sync.
        task = asyncio.ensure_future(self.pool.release(conn))
        self.releasing.add(task)
        task.add_done_callback(self.releasing.discard)

    async def close(self) -> None:
        await self.pool.close()


async def _store(url: str, theirs: bool) -> PostgresStore:
    store = await open_store(url)
    assert isinstance(store, PostgresStore)
    if theirs:
        settings = PostgresSettings.from_url(url)

        pool = await asyncpg.create_pool(
            settings.dsn,
            min_size=1,
            max_size=settings.pool_max_size,
            server_settings=settings.server_settings(),
            init=_init_connection,
        )
        await store._pool.close()
        store._pool = AsyncpgPool(pool)  # type: ignore[assignment]
    return store


async def _run(url: str, theirs: bool, writers: int, total: int) -> float:
    store = await _store(url, theirs)
    try:
        each = total // writers

        async def write() -> None:
            for _ in range(each):
                await store.append(f"P-{uuid.uuid4().hex}", [NewEvent("E", {})])

        started = time.perf_counter()
        await asyncio.gather(*(write() for _ in range(writers)))
        return each * writers / (time.perf_counter() - started)
    finally:
        await store.close()


async def main(total: int) -> None:
    with postgres_url() as base:
        url = f"{base}{'&' if '?' in base else '?'}schema={SCHEMA}"
        admin = await asyncpg.connect(split_url(url)[0])
        try:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
            print("| appends | store's pool ev/s | asyncpg's pool ev/s | asyncpg / store |")
            print("|---|---|---|---|")
            for writers in (1, 8):
                ours: list[float] = []
                theirs: list[float] = []
                for round_ in range(3):
                    for use_theirs in (False, True) if round_ % 2 == 0 else (True, False):
                        figure = await _run(url, use_theirs, writers, total)
                        (theirs if use_theirs else ours).append(figure)
                a, b = statistics.median(ours), statistics.median(theirs)
                print(f"| {writers} writer(s) | {a:,.0f} | {b:,.0f} | {b / a:.2f} |")
        finally:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
            await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appends", type=int, default=4000)
    asyncio.run(main(parser.parse_args().appends))
