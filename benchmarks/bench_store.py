"""Event store throughput: eventledger beside the raw driver and the eventsourcing library.

Run: scripts/bench  (or: python -m benchmarks.bench_store [--quick])

Every workload runs in one process against one PostgreSQL server (and SQLite
files in a temporary folder), so the ratios compare like with like:

- single-event appends, 1 and 8 concurrent writers, each append its own
  transaction, streams of 10 events with exact expected versions;
- batched appends, 100 events per append;
- read_all of every event, decoded into Python objects.

"raw" is the same work with the driver alone on an equivalent table (same
columns and indexes, a bigserial position): what the hardware and driver give
without any event-store guarantees. "eventsourcing" is the peer library's
default PostgreSQL path (benchmarks/_eventsourcing_peer.py).

PostgreSQL: EVENTLEDGER_BENCH_DATABASE_URL, else EVENTLEDGER_TEST_DATABASE_URL,
else a throwaway pgserver.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import orjson

from eventledger import NewEvent, open_store
from eventledger.stores.base import EventStore
from eventledger.stores.postgres import split_url

SCHEMA = "bench_eventledger"
RAW_TABLE = "bench_raw.events"


def payload(n: int) -> dict[str, object]:
    return {
        "order_id": f"o-{n}",
        "customer": "alice",
        "lines": [{"sku": "A1", "qty": 2, "price": "9.99"}],
        "n": n,
    }


METADATA = {"correlation_id": "c2a4e1f0-0000-4000-8000-000000000000", "actor": "bench"}


@dataclass
class Sizes:
    single_appends: int  # per writer
    batches: int
    read_events: int


FULL = Sizes(single_appends=2000, batches=300, read_events=100_000)
QUICK = Sizes(single_appends=300, batches=30, read_events=10_000)


@dataclass
class Row:
    workload: str
    backend: str
    eventledger: float
    raw: float | None = None
    peer: float | None = None


async def timed(work: Callable[[], Awaitable[int]]) -> float:
    start = time.perf_counter()
    events = await work()
    return events / (time.perf_counter() - start)


# --- eventledger --------------------------------------------------------------------


async def el_single_appends(store: EventStore, writers: int, per_writer: int) -> float:
    async def writer(index: int) -> None:
        prefix = uuid.uuid4().hex[:8]
        for n in range(per_writer):
            await store.append(
                f"Order-{prefix}-{index}-{n // 10}",
                [NewEvent("OrderPlaced", payload(n), METADATA)],
                expected_version=n % 10,
            )

    async def work() -> int:
        await asyncio.gather(*(writer(i) for i in range(writers)))
        return writers * per_writer

    return await timed(work)


async def el_batched_appends(store: EventStore, batches: int, size: int = 100) -> float:
    async def work() -> int:
        prefix = uuid.uuid4().hex[:8]
        for b in range(batches):
            events = [NewEvent("OrderPlaced", payload(n), METADATA) for n in range(size)]
            await store.append(f"Import-{prefix}-{b}", events, expected_version=0)
        return batches * size

    return await timed(work)


async def el_read_all(store: EventStore, expected: int) -> float:
    async def work() -> int:
        count = 0
        async for event in store.read_all():
            count += 1
            assert event.data["customer"] == "alice"
        assert count == expected, (count, expected)
        return count

    return await timed(work)


async def el_fill(store: EventStore, total: int) -> None:
    have = 0
    async for _ in store.read_all():
        have += 1
    prefix = uuid.uuid4().hex[:8]
    for b in range(max(0, total - have) // 1000):
        events = [NewEvent("OrderPlaced", payload(n), METADATA) for n in range(1000)]
        await store.append(f"Fill-{prefix}-{b}", events)


# --- raw asyncpg ------------------------------------------------------------------------

RAW_DDL = f"""
DROP SCHEMA IF EXISTS bench_raw CASCADE;
CREATE SCHEMA bench_raw;
CREATE TABLE {RAW_TABLE} (
    position bigserial PRIMARY KEY,
    id uuid NOT NULL UNIQUE,
    stream_id text COLLATE "C" NOT NULL,
    version bigint NOT NULL,
    type text NOT NULL,
    schema_version integer NOT NULL,
    data jsonb NOT NULL,
    metadata jsonb NOT NULL,
    recorded_at timestamptz NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE INDEX ON {RAW_TABLE} USING brin (recorded_at);
"""
RAW_INSERT = (
    f"INSERT INTO {RAW_TABLE} (id, stream_id, version, type, schema_version, data, metadata,"
    " recorded_at) VALUES ($1, $2, $3, $4, 1, $5, $6, $7)"
)
RAW_COLUMNS = [
    "id",
    "stream_id",
    "version",
    "type",
    "schema_version",
    "data",
    "metadata",
    "recorded_at",
]


async def raw_single_appends(pool: asyncpg.Pool, writers: int, per_writer: int) -> float:
    meta = orjson.dumps(METADATA).decode()

    async def writer(index: int) -> None:
        prefix = uuid.uuid4().hex[:8]
        async with pool.acquire() as conn:
            for n in range(per_writer):
                await conn.execute(
                    RAW_INSERT,
                    uuid.uuid4(),
                    f"Order-{prefix}-{index}-{n // 10}",
                    n % 10 + 1,
                    "OrderPlaced",
                    orjson.dumps(payload(n)).decode(),
                    meta,
                    datetime.now(UTC),
                )

    async def work() -> int:
        await asyncio.gather(*(writer(i) for i in range(writers)))
        return writers * per_writer

    return await timed(work)


async def raw_batched_copy(pool: asyncpg.Pool, batches: int, size: int = 100) -> float:
    meta = orjson.dumps(METADATA).decode()

    async def work() -> int:
        prefix = uuid.uuid4().hex[:8]
        async with pool.acquire() as conn:
            for b in range(batches):
                now = datetime.now(UTC)
                records = [
                    (
                        uuid.uuid4(),
                        f"Import-{prefix}-{b}",
                        n + 1,
                        "OrderPlaced",
                        1,
                        orjson.dumps(payload(n)).decode(),
                        meta,
                        now,
                    )
                    for n in range(size)
                ]
                await conn.copy_records_to_table(
                    "events", schema_name="bench_raw", records=records, columns=RAW_COLUMNS
                )
        return batches * size

    return await timed(work)


async def raw_read_all(pool: asyncpg.Pool, expected: int, decode: bool = False) -> float:
    """A keyset-paged SELECT of the rows; JSON stays text unless `decode` (then orjson)."""
    sql = (
        "SELECT id, stream_id, version, position, type, schema_version, data, metadata,"
        f" recorded_at FROM {RAW_TABLE} WHERE position > $1 ORDER BY position LIMIT 500"
    )

    async def work() -> int:
        count, after = 0, 0
        async with pool.acquire() as conn:
            while rows := await conn.fetch(sql, after):
                count += len(rows)
                after = rows[-1][3]
                if decode:
                    for row in rows:
                        orjson.loads(row[6])
                        orjson.loads(row[7])
        assert count == expected, (count, expected)
        return count

    return await timed(work)


async def raw_fill(pool: asyncpg.Pool, total: int) -> int:
    async with pool.acquire() as conn:
        have = await conn.fetchval(f"SELECT count(*) FROM {RAW_TABLE}")
    missing = max(0, total - have)
    if missing >= 1000:
        await raw_batched_copy(pool, missing // 1000, 1000)
    async with pool.acquire() as conn:
        return int(await conn.fetchval(f"SELECT count(*) FROM {RAW_TABLE}"))


# --- raw sqlite3 -------------------------------------------------------------------------

SQLITE_DDL = """
CREATE TABLE events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL UNIQUE,
    stream_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    data TEXT NOT NULL,
    metadata TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE INDEX events_recorded_at ON events (recorded_at);
"""
SQLITE_INSERT = (
    "INSERT INTO events (id, stream_id, version, type, schema_version, data, metadata,"
    " recorded_at) VALUES (?, ?, ?, 'OrderPlaced', 1, ?, ?, ?)"
)


def sqlite_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def sqlite_raw(path: Path, sizes: Sizes) -> dict[str, float]:
    conn = sqlite_connect(path)
    conn.executescript(SQLITE_DDL)
    meta = orjson.dumps(METADATA).decode()
    results: dict[str, float] = {}

    start = time.perf_counter()
    for n in range(sizes.single_appends):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            SQLITE_INSERT,
            (
                uuid.uuid4().bytes,
                f"Order-{n // 10}",
                n % 10 + 1,
                orjson.dumps(payload(n)).decode(),
                meta,
                time.time_ns() // 1000,
            ),
        )
        conn.execute("COMMIT")
    results["single"] = sizes.single_appends / (time.perf_counter() - start)

    start = time.perf_counter()
    for b in range(sizes.batches):
        rows = [
            (
                uuid.uuid4().bytes,
                f"Import-{b}",
                n + 1,
                orjson.dumps(payload(n)).decode(),
                meta,
                time.time_ns() // 1000,
            )
            for n in range(100)
        ]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(SQLITE_INSERT, rows)
        conn.execute("COMMIT")
    results["batched"] = sizes.batches * 100 / (time.perf_counter() - start)

    conn.execute("BEGIN")
    for b in range(max(0, sizes.read_events - sizes.single_appends - sizes.batches * 100) // 1000):
        conn.executemany(
            SQLITE_INSERT,
            [
                (uuid.uuid4().bytes, f"Fill-{b}", n + 1, orjson.dumps(payload(n)).decode(), meta, 0)
                for n in range(1000)
            ],
        )
    conn.execute("COMMIT")
    total = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    start = time.perf_counter()
    count, after = 0, 0
    while rows := conn.execute(
        "SELECT id, stream_id, version, position, type, schema_version, data, metadata,"
        " recorded_at FROM events WHERE position > ? ORDER BY position LIMIT 500",
        (after,),
    ).fetchall():
        count += len(rows)
        after = rows[-1][3]
    assert count == total
    results["read"] = count / (time.perf_counter() - start)
    results["read_count"] = count
    conn.close()
    return results


# --- running ---------------------------------------------------------------------------------


@contextmanager
def postgres_url() -> Iterator[str]:
    url = os.environ.get("EVENTLEDGER_BENCH_DATABASE_URL") or os.environ.get(
        "EVENTLEDGER_TEST_DATABASE_URL"
    )
    if url:
        yield url
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server
    with tempfile.TemporaryDirectory(prefix="el-bench-") as folder:
        server = get_server(folder, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


def peer_settings(url: str) -> dict[str, object]:
    parts = urlsplit(split_url(url)[0])
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "password": parts.password or "",
        "dbname": (parts.path or "/postgres").lstrip("/") or "postgres",
    }


def run_peer(url: str, sizes: Sizes) -> dict[str, float]:
    if importlib.util.find_spec("eventsourcing") is None:
        print("(eventsourcing not measured: pip install 'eventledger[bench]')")
        return {}
    from benchmarks import _eventsourcing_peer as peer

    settings = peer_settings(url)
    peer.setup(settings)
    try:
        results = {
            "single1": peer.single_appends(settings, 1, sizes.single_appends),
            "single8": peer.single_appends(settings, 8, sizes.single_appends),
            "batched": peer.batched_appends(settings, sizes.batches),
        }
        written = sizes.single_appends * 9 + sizes.batches * 100
        results["read"] = peer.read_all_decoded(settings, written)
        return results
    finally:
        peer.teardown(settings)


async def median_pair(
    ours: Callable[[], Awaitable[float]], theirs: Callable[[], Awaitable[float]], repeats: int
) -> tuple[float, float]:
    """Run both sides in turn `repeats` times; the median of each (the machine is noisy)."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeats):
        a.append(await ours())
        b.append(await theirs())
    return statistics.median(a), statistics.median(b)


async def measure_postgres(url: str, sizes: Sizes, repeats: int) -> list[Row]:
    dsn, _ = split_url(url)
    admin = await asyncpg.connect(dsn)
    await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    await admin.execute(RAW_DDL)
    await admin.close()
    separator = "&" if "?" in url else "?"
    store = await open_store(f"{url}{separator}schema={SCHEMA}&pool_min_size=8&pool_max_size=8")
    pool = await asyncpg.create_pool(dsn, min_size=8, max_size=8)
    assert pool is not None
    rows: list[Row] = []
    n = sizes.single_appends
    try:
        for writers in (1, 8):
            ours, raw = await median_pair(
                lambda w=writers: el_single_appends(store, w, n),  # type: ignore[misc]
                lambda w=writers: raw_single_appends(pool, w, n),  # type: ignore[misc]
                repeats,
            )
            label = f"single-event appends, {writers} writer{'s' if writers > 1 else ''}"
            rows.append(Row(label, "PostgreSQL", ours, raw))
        ours, raw = await median_pair(
            lambda: el_batched_appends(store, sizes.batches),
            lambda: raw_batched_copy(pool, sizes.batches),
            repeats,
        )
        rows.append(Row("batched appends (100 per append)", "PostgreSQL", ours, raw))
        await el_fill(store, sizes.read_events)
        total = await raw_fill(pool, sizes.read_events)
        el_total = 0
        async for _ in store.read_all():
            el_total += 1
        ours, raw = await median_pair(
            lambda: el_read_all(store, el_total), lambda: raw_read_all(pool, total), repeats
        )
        rows.append(Row(f"read_all, decoded ({el_total:,} events)", "PostgreSQL", ours, raw))
        ours, raw = await median_pair(
            lambda: el_read_all(store, el_total),
            lambda: raw_read_all(pool, total, decode=True),
            repeats,
        )
        rows.append(Row("read_all vs raw SELECT + orjson decode", "PostgreSQL", ours, raw))
    finally:
        await store.close()
        await pool.close()
        admin = await asyncpg.connect(dsn)
        await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await admin.execute("DROP SCHEMA IF EXISTS bench_raw CASCADE")
        await admin.close()
    return rows


async def measure_sqlite(sizes: Sizes) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="el-bench-sqlite-") as folder:
        raw = sqlite_raw(Path(folder) / "raw.db", sizes)
        store = await open_store(f"sqlite:///{folder}/eventledger.db")
        try:
            single = await el_single_appends(store, 1, sizes.single_appends)
            batched = await el_batched_appends(store, sizes.batches)
            await el_fill(store, sizes.read_events)
            count = await store.head_position()
            read = await el_read_all(store, count)
        finally:
            await store.close()
    return [
        Row("single-event appends, 1 writer", "SQLite", single, raw["single"]),
        Row("batched appends (100 per append)", "SQLite", batched, raw["batched"]),
        Row(f"read_all, decoded ({count:,} events)", "SQLite", read, raw["read"]),
    ]


def ratio(a: float, b: float | None) -> str:
    return "" if not b else f"{a / b:.2f}"


def figure(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def print_table(rows: list[Row]) -> None:
    header = (
        "| workload | store | eventledger ev/s | raw driver ev/s | eventledger/raw"
        " | eventsourcing ev/s | eventledger/eventsourcing |"
    )
    print(header)
    print("|" + "---|" * 7)
    for r in rows:
        print(
            f"| {r.workload} | {r.backend} | {figure(r.eventledger)} | {figure(r.raw)}"
            f" | {ratio(r.eventledger, r.raw)} | {figure(r.peer)}"
            f" | {ratio(r.eventledger, r.peer)} |"
        )


async def main(sizes: Sizes, with_peer: bool, repeats: int) -> None:
    with postgres_url() as url:
        rows = await measure_postgres(url, sizes, repeats)
        if with_peer:
            peer = await asyncio.to_thread(run_peer, url, sizes)
            keys = ["single1", "single8", "batched", "read"]
            for row, key in zip(rows[: len(keys)], keys, strict=True):
                row.peer = peer.get(key)
    rows += await measure_sqlite(sizes)
    print_table(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--no-peer", action="store_true", help="skip the eventsourcing library")
    parser.add_argument("--repeats", type=int, default=3, help="runs per workload (median)")
    options = parser.parse_args()
    asyncio.run(main(QUICK if options.quick else FULL, not options.no_peer, options.repeats))
