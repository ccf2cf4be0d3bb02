"""What "only writers hold the horizon" costs (docs/ordering.md), measured side by side.

Run: python -m benchmarks.bench_horizon [--appends N] [--calls N]

- Appends: 8 concurrent writers, single-event appends, as shipped (a statement
  trigger's WHEN clause checks each insert) and with the trigger dropped (what appends
  cost without the discipline), alternated, medians of 4; the raw driver's INSERT
  beside them. Inside store transactions the append also sets the writer's flag;
  the command benchmark (bench_http) covers that path.
- The reader's limit: the time per call of ``visible_limit()`` (as shipped) and of
  the wave-1 formula (the snapshot's xmin), with 0 and with 40 idle connections
  around, 10 of them idle in a transaction that holds an id (in another database).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import asyncpg

from benchmarks.bench_store import postgres_url
from eventledger import NewEvent, open_store
from eventledger.stores.postgres import split_url
from eventledger.stores.postgres.schema import Marker

SCHEMA = "bench_horizon"
WRITERS = 8


async def _appends(url: str, total: int) -> float:
    store = await open_store(url)
    try:
        per_writer = total // WRITERS

        async def writer(w: int) -> None:
            for n in range(per_writer):
                await store.append(f"W{w}-{n // 10}-{uuid.uuid4().hex[:6]}", [NewEvent("E", {})])

        started = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(WRITERS)))
        return per_writer * WRITERS / (time.perf_counter() - started)
    finally:
        await store.close()


async def _raw_appends(dsn: str, total: int) -> float:
    conns = [await asyncpg.connect(dsn) for _ in range(WRITERS)]
    try:
        await conns[0].execute("DROP TABLE IF EXISTS bench_horizon_raw")
        await conns[0].execute(
            "CREATE TABLE bench_horizon_raw (position bigserial PRIMARY KEY, id uuid UNIQUE,"
            " stream_id text, version bigint, data jsonb, UNIQUE (stream_id, version))"
        )
        per_writer = total // WRITERS

        async def writer(conn: asyncpg.Connection) -> None:
            for _ in range(per_writer):
                await conn.execute(
                    "INSERT INTO bench_horizon_raw (id, stream_id, version, data)"
                    " VALUES ($1, $2, 1, '{}')",
                    uuid.uuid4(),
                    uuid.uuid4().hex,
                )

        started = time.perf_counter()
        await asyncio.gather(*(writer(c) for c in conns))
        return per_writer * WRITERS / (time.perf_counter() - started)
    finally:
        await conns[0].execute("DROP TABLE IF EXISTS bench_horizon_raw")
        for conn in conns:
            await conn.close()


async def _set_trigger(dsn: str, on: bool) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        q = f'"{SCHEMA}"'
        flag = Marker(SCHEMA).flag
        await conn.execute(f"DROP TRIGGER IF EXISTS events_writer_marker ON {q}.events")
        if on:
            await conn.execute(
                f"CREATE TRIGGER events_writer_marker BEFORE INSERT ON {q}.events"
                " FOR EACH STATEMENT WHEN (pg_current_xact_id_if_assigned() IS NOT NULL"
                f" AND current_setting('{flag}', true) IS DISTINCT FROM 'on')"
                f" EXECUTE FUNCTION {q}.refuse_unmarked_insert()"
            )
    finally:
        await conn.close()


async def _limit_calls(dsn: str, calls: int) -> tuple[float, float]:
    q = f'"{SCHEMA}"'
    conn = await asyncpg.connect(dsn)
    try:
        shipped = f"SELECT {q}.visible_limit()"
        wave1 = (
            "SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint + o.xid_offset) << 20"
            f" FROM {q}.position_offset o"
        )
        result = []
        for sql in (shipped, wave1):
            statement = await conn.prepare(sql)
            for _ in range(200):
                await statement.fetchval()
            started = time.perf_counter()
            for _ in range(calls):
                await statement.fetchval()
            result.append((time.perf_counter() - started) / calls * 1e6)
        return result[0], result[1]
    finally:
        await conn.close()


async def _crowd(
    server_dsn: str, other_db: str, idle: int, holding: int
) -> list[asyncpg.Connection]:
    crowd = [await asyncpg.connect(server_dsn) for _ in range(idle - holding)]
    for _ in range(holding):
        conn = await asyncpg.connect(other_db)
        await conn.execute("BEGIN")
        await conn.execute("SELECT pg_current_xact_id()")
        crowd.append(conn)
    return crowd


async def main(appends: int, calls: int) -> None:
    with postgres_url() as base:
        await _main(base, appends, calls)


async def _main(base: str, appends: int, calls: int) -> None:
    url = f"{base}{'&' if '?' in base else '?'}schema={SCHEMA}"
    dsn, _ = split_url(url)
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
    other = f"bench_horizon_other_{uuid.uuid4().hex[:6]}"
    await admin.execute(f'CREATE DATABASE "{other}"')
    other_dsn = dsn.rsplit("/", 1)[0] + f"/{other}"
    try:
        async with await open_store(url):
            pass  # schema and trigger
        print("| appends, 8 writers | ev/s (median of 4) | / raw INSERT |")
        print("|---|---|---|")
        figures: dict[str, list[float]] = {"as shipped": [], "no trigger": [], "raw": []}
        for round_ in range(4):  # alternated, and each side first in turn
            for shipped in (True, False) if round_ % 2 == 0 else (False, True):
                await _set_trigger(dsn, shipped)
                figures["as shipped" if shipped else "no trigger"].append(
                    await _appends(url, appends)
                )
            figures["raw"].append(await _raw_appends(dsn, appends))
        await _set_trigger(dsn, True)
        raw = statistics.median(figures["raw"])
        for name in ("as shipped", "no trigger", "raw"):
            value = statistics.median(figures[name])
            print(f"| {name} | {value:,.0f} | {value / raw:.2f} |")
        print()
        print("| reader's limit | connections around | shipped µs/call | wave-1 (xmin) µs/call |")
        print("|---|---|---|---|")
        for idle, holding in ((0, 0), (40, 10)):
            crowd = await _crowd(dsn, other_dsn, idle, holding)
            try:
                shipped, wave1 = await _limit_calls(dsn, calls)
            finally:
                for conn in crowd:
                    conn.terminate()
            around = f"{idle} ({holding} holding ids)"
            print(f"| visible_limit() | {around} | {shipped:.0f} | {wave1:.0f} |")
        print()
        print(f"({appends} appends a run.)")
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        await admin.execute(f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appends", type=int, default=8000)
    parser.add_argument("--calls", type=int, default=5000)
    options = parser.parse_args()
    asyncio.run(main(options.appends, options.calls))
