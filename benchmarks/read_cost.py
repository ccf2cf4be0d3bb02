"""Where the time of a decoded read goes, per event: the bound on read_all.

Run: python -m benchmarks.read_cost   (PostgreSQL as for bench_store)

Fills a table through eventledger, then reads it five ways with asyncpg and
prints events/s and microseconds per event for each: rows only; rows with the
two JSON documents parsed by orjson; the store's read_all.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import asyncpg
import orjson

from benchmarks.bench_store import METADATA, payload, postgres_url
from eventledger import NewEvent, open_store
from eventledger.stores.postgres import split_url

SCHEMA = "bench_read_cost"
EVENTS = 50_000


async def main() -> None:
    with postgres_url() as url:
        dsn, _ = split_url(url)
        admin = await asyncpg.connect(dsn)
        await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        separator = "&" if "?" in url else "?"
        store = await open_store(f"{url}{separator}schema={SCHEMA}")
        for b in range(EVENTS // 1000):
            batch = [NewEvent("OrderPlaced", payload(n), METADATA) for n in range(1000)]
            await store.append(f"Fill-{b}", batch)
        sql = (
            "SELECT id, stream_id, version, position, type, schema_version, data, metadata,"
            f" recorded_at FROM {SCHEMA}.events WHERE position > $1 ORDER BY position LIMIT 500"
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

        async def store_read_all() -> int:
            count = 0
            async for _ in store.read_all():
                count += 1
            return count

        results: dict[str, list[float]] = {}
        for _ in range(5):
            for name, work in (
                ("asyncpg rows (JSON as text)", rows_only),
                ("asyncpg rows + orjson of data and metadata", rows_and_json),
                ("eventledger read_all (RecordedEvent, decoded)", store_read_all),
            ):
                start = time.perf_counter()
                count = await work()
                assert count == EVENTS
                results.setdefault(name, []).append(count / (time.perf_counter() - start))
        print("| read | events/s | µs per event |\n|---|---|---|")
        for name, rates in results.items():
            rate = statistics.median(rates)
            print(f"| {name} | {rate:,.0f} | {1e6 / rate:.1f} |")
        await store.close()
        await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
