"""What a decoded read costs beside the raw driver, per event: the read targets of issue 18.

Run: python -m benchmarks.read_cost   (PostgreSQL as for bench_store; --events N)

Fills a PostgreSQL schema and a SQLite file through eventledger (order payloads of about
120 bytes and a correlation id in the metadata), then reads every event five times
each way, alternating, and prints the median events/s, microseconds per event and the
ratio to the raw driver: keyset-paged SELECTs of the same columns, 500 rows a page,
with asyncpg (JSON left as text, and with the two JSON documents parsed by orjson)
and with sqlite3; beside them the store's ``read_all`` and ``read_page``.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable

import asyncpg
import orjson

from benchmarks.bench_store import METADATA, payload, postgres_url
from eventledger import EventStore, NewEvent, open_store
from eventledger.stores.postgres import split_url

SCHEMA = "bench_read_cost"
PAGE = 500
COLUMNS = "id, stream_id, version, position, type, schema_version, data, metadata, recorded_at"

Read = Callable[[], Awaitable[int]]


async def fill(store: EventStore, events: int) -> None:
    for b in range(events // 1000):
        batch = [NewEvent("OrderPlaced", payload(n), METADATA) for n in range(1000)]
        await store.append(f"Fill-{b}", batch)


def store_reads(store: EventStore) -> dict[str, Read]:
    """The store's reads (``read_page`` where the code measured has it)."""

    async def read_all() -> int:
        count = 0
        async for _ in store.read_all():
            count += 1
        return count

    async def read_page() -> int:
        count, after = 0, 0
        while page := await store.read_page(after=after, limit=PAGE):
            count += len(page)
            after = page[-1].position
        return count

    if not hasattr(store, "read_page"):  # an older eventledger, for before/after runs
        return {"read_all": read_all}
    return {"read_all": read_all, "read_page": read_page}


async def measure(reads: dict[str, Read], events: int) -> dict[str, float]:
    rates: dict[str, list[float]] = {}
    for _ in range(5):
        for name, read in reads.items():
            start = time.perf_counter()
            count = await read()
            assert count == events, (name, count)
            rates.setdefault(name, []).append(count / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


async def postgres(events: int) -> dict[str, float]:
    with postgres_url() as url:
        dsn, _ = split_url(url)
        admin = await asyncpg.connect(dsn)
        await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        separator = "&" if "?" in url else "?"
        store = await open_store(f"{url}{separator}schema={SCHEMA}")
        try:
            await fill(store, events)
            sql = (
                f"SELECT {COLUMNS} FROM {SCHEMA}.events WHERE position > $1"
                f" ORDER BY position LIMIT {PAGE}"
            )

            async def rows_only() -> int:
                count, after = 0, 0
                while rows := await admin.fetch(sql, after):
                    count += len(rows)
                    after = rows[-1][3]
                return count

            async def rows_and_json() -> int:
                count, after = 0, 0
                while rows := await admin.fetch(sql, after):
                    for row in rows:
                        orjson.loads(row[6])
                        orjson.loads(row[7])
                    count += len(rows)
                    after = rows[-1][3]
                return count

            return await measure(
                {"raw": rows_only, "raw+json": rows_and_json, **store_reads(store)}, events
            )
        finally:
            await store.close()
            await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            await admin.close()


async def sqlite(events: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="el-read-cost-") as folder:
        path = f"{folder}/events.db"
        store = await open_store(f"sqlite:///{path}")
        raw = sqlite3.connect(path)
        try:
            await fill(store, events)
            sql = (
                f"SELECT {COLUMNS} FROM eventledger_events WHERE position > ?"
                f" ORDER BY position LIMIT {PAGE}"
            )

            async def rows_only() -> int:
                count, after = 0, 0
                while rows := raw.execute(sql, (after,)).fetchall():
                    count += len(rows)
                    after = rows[-1][3]
                return count

            return await measure({"raw": rows_only, **store_reads(store)}, events)
        finally:
            raw.close()
            await store.close()


def main(events: int) -> None:
    table = [("PostgreSQL", asyncio.run(postgres(events))), ("SQLite", asyncio.run(sqlite(events)))]
    print("| store | read | events/s | µs per event | / raw rows | / raw rows + orjson |")
    print("|---|---|---|---|---|---|")
    labels = {
        "raw": "driver rows, JSON as text",
        "raw+json": "driver rows + orjson of data and metadata",
        "read_all": "eventledger read_all (RecordedEvent, decoded)",
        "read_page": "eventledger read_page (RecordedEvent, decoded)",
    }
    for store, rates in table:
        for name, rate in rates.items():
            by_json = f"{rate / rates['raw+json']:.2f}" if "raw+json" in rates else ""
            print(
                f"| {store} | {labels[name]} | {rate:,.0f} | {1e6 / rate:.2f}"
                f" | {rate / rates['raw']:.2f} | {by_json} |"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    main(parser.parse_args().events)
