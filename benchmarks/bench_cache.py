"""What the Redis query cache buys: hot document queries with and without it.

Run: python -m benchmarks.bench_cache [--queries N] [--rounds R] [--docs D]
     [--stores sqlite,postgres]

A document read model of D accounts (50 owners, indexed owner and balance), on a SQLite
file and on PostgreSQL; Redis at EVENTLEDGER_BENCH_REDIS_URL, else
EVENTLEDGER_TEST_REDIS_URL, else redis://127.0.0.1:6379/0 (keys under a prefix of
this run, deleted at the end). PostgreSQL: EVENTLEDGER_BENCH_DATABASE_URL, else
EVENTLEDGER_TEST_DATABASE_URL (a schema of this run, dropped at the end).

Queries, each N times in a row, one at a time, with and without the cache, alternated
over R rounds; medians of queries per second:

- **get, hot**: the same document by id;
- **find 20 (100) + count, hot**: a page of 20 (100) of the D/50 documents of one owner,
  ordered by balance, and their count (what ``GET /read-models/<name>/documents?owner=...``
  does);
- **get, cold**: a different document each time, so the cache always misses (a lookup,
  the checkpoint and generation, the query, a store): what the cache costs when it
  does not help.

Through the library (``runner.documents(...)``) and through the HTTP app in-process
(httpx's ASGI transport: routing, auth with anonymous access, JSON; no network).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx

from eventledger import Application, NewEvent, RecordedEvent, open_store
from eventledger.cache import QueryCache
from eventledger.http import create_app
from eventledger.projections import Context, DocumentProjection, ProjectionRunner, on
from eventledger.stores.postgres.url import split_url

OWNERS = 50


class BenchAccounts(DocumentProjection):
    name = "bench_accounts"
    categories = ("Acct",)
    indexes = {"owner": "text", "balance": "number"}  # noqa: RUF012

    @on("Opened")
    async def opened(self, event: RecordedEvent, context: Context) -> None:
        assert context.docs is not None
        await context.docs.put(
            context.aggregate_id,
            {"id": context.aggregate_id, "owner": event.data["owner"], "balance": 0,
             "note": "x" * 200},
        )  # fmt: skip

    @on("Deposited")
    async def deposited(self, event: RecordedEvent, context: Context) -> None:
        assert context.docs is not None
        doc = await context.docs.get(context.aggregate_id)
        if doc is not None:
            doc["balance"] += event.data["amount"]
            await context.docs.put(context.aggregate_id, doc)


Query = Callable[[int], Awaitable[Any]]


async def rate(query: Query, count: int) -> float:
    for n in range(20):  # warm: connections, the first miss, script loading
        await query(n)
    started = time.perf_counter()
    for n in range(count):
        await query(n)
    return count / (time.perf_counter() - started)


async def fill(url: str, docs: int) -> None:
    store = await open_store(url)
    try:
        for start in range(0, docs, 100):
            async with store.transaction() as tx:
                for n in range(start, min(start + 100, docs)):
                    await tx.append(
                        f"Acct-a{n}",
                        [
                            NewEvent("Opened", {"owner": f"o{n % OWNERS}"}),
                            NewEvent("Deposited", {"amount": (n * 37) % 1000}),
                        ],
                    )
    finally:
        await store.close()


async def library_figures(
    url: str, redis_url: str, prefix: str, queries: int, rounds: int, docs: int
) -> dict[str, tuple[list[float], list[float]]]:
    cache = QueryCache(redis_url, prefix=prefix)
    cached_store, plain_store = await open_store(url), await open_store(url)
    cached = ProjectionRunner(cached_store, [BenchAccounts()], cache=cache, poll_interval=0.1)
    plain = ProjectionRunner(plain_store, [BenchAccounts()])
    await cached.start()
    try:
        await cached.wait_until("bench_accounts", await cached_store.head_position(), 120)
        await asyncio.sleep(0.2)  # the last release
        sides = {"no cache": plain.documents("bench_accounts"), "cache": cached.documents(
            "bench_accounts")}  # fmt: skip
        figures: dict[str, tuple[list[float], list[float]]] = {}
        for round_ in range(rounds):
            for label, make in workloads(docs, round_).items():
                order = ("no cache", "cache") if round_ % 2 == 0 else ("cache", "no cache")
                for side in order:
                    measured = await rate(make(sides[side]), queries)
                    pair = figures.setdefault(label, ([], []))
                    pair[0 if side == "no cache" else 1].append(measured)
        return figures
    finally:
        await cached.stop()
        await cache.close()
        await cached_store.close()
        await plain_store.close()


def workloads(docs: int, round_: int) -> dict[str, Callable[[Any], Query]]:
    salt = uuid.uuid4().hex[:6]  # cold ids never seen in an earlier round

    def get_hot(documents: Any) -> Query:
        return lambda n: documents.get("a7")

    def find_hot(limit: int) -> Callable[[Any], Query]:
        def make(documents: Any) -> Query:
            async def query(n: int) -> Any:
                found = await documents.find({"owner": "o7"}, order_by="-balance", limit=limit)
                return found, await documents.count({"owner": "o7"})

            return query

        return make

    def get_cold(documents: Any) -> Query:
        return lambda n: documents.get(f"a{n % docs}{salt}")

    return {
        "get, hot": get_hot,
        "find 20 + count, hot": find_hot(20),
        "find 100 + count, hot": find_hot(100),
        "get, cold (misses)": get_cold,
    }


async def http_figures(
    url: str, redis_url: str, prefix: str, queries: int, rounds: int
) -> dict[str, tuple[list[float], list[float]]]:
    def app(cache: str | None) -> Any:
        application = Application("bench", projections=[BenchAccounts])
        return create_app(
            application,
            url,
            allow_anonymous=True,
            admin=False,
            metrics=False,
            rate_limits=None,
            run_projections=cache is not None,  # the cached one runs it (and vouches)
            cache=cache,
        )

    apps = {"no cache": app(None), "cache": app(f"{redis_url}?prefix={prefix}")}
    documents = "/read-models/bench_accounts/documents"
    paths = {
        "HTTP get, hot": f"{documents}/a7",
        "HTTP find 20 + count, hot": f"{documents}?owner=o7&order_by=-balance&limit=20",
        "HTTP find 100 + count, hot": f"{documents}?owner=o7&order_by=-balance&limit=100",
    }
    figures: dict[str, tuple[list[float], list[float]]] = {}
    async with (
        apps["no cache"].router.lifespan_context(apps["no cache"]),
        apps["cache"].router.lifespan_context(apps["cache"]),
    ):
        clients = {
            side: httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://b")
            for side, a in apps.items()
        }
        try:
            await asyncio.sleep(0.5)  # the cached app's runner takes its lease and vouches
            for round_ in range(rounds):
                for label, path in paths.items():
                    order = ("no cache", "cache") if round_ % 2 == 0 else ("cache", "no cache")
                    for side in order:
                        client = clients[side]

                        async def query(
                            n: int, client: httpx.AsyncClient = client, path: str = path
                        ) -> Any:
                            answer = await client.get(path)
                            assert answer.status_code == 200, answer.text
                            return answer

                        measured = await rate(query, queries)
                        pair = figures.setdefault(label, ([], []))
                        pair[0 if side == "no cache" else 1].append(measured)
        finally:
            for client in clients.values():
                await client.aclose()
    return figures


async def main_async(args: argparse.Namespace) -> None:
    redis_url = (
        os.environ.get("EVENTLEDGER_BENCH_REDIS_URL")
        or os.environ.get("EVENTLEDGER_TEST_REDIS_URL")
        or "redis://127.0.0.1:6379/0"
    )
    prefix = f"bench-cache-{uuid.uuid4().hex[:8]}"
    rows: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.stores.split(","):
            schema = f"bench_cache_{uuid.uuid4().hex[:8]}"
            if kind == "sqlite":
                url, name = f"sqlite:///{folder}/bench.db", "SQLite"
            else:
                base = os.environ.get("EVENTLEDGER_BENCH_DATABASE_URL") or os.environ.get(
                    "EVENTLEDGER_TEST_DATABASE_URL"
                )
                if not base:
                    raise SystemExit("set EVENTLEDGER_BENCH_DATABASE_URL for PostgreSQL")
                url = f"{base}{'&' if '?' in base else '?'}schema={schema}"
                name = "PostgreSQL"
            try:
                await fill(url, args.docs)
                store_prefix = f"{prefix}-{kind}"
                figures = await library_figures(
                    url, redis_url, store_prefix, args.queries, args.rounds, args.docs
                )
                figures |= await http_figures(
                    url, redis_url, f"{store_prefix}-http", args.queries, args.rounds
                )
                for label, (plain, cached) in figures.items():
                    rows.append((label, name, statistics.median(plain), statistics.median(cached)))
            finally:
                if kind != "sqlite":
                    conn = await asyncpg.connect(split_url(base)[0])  # type: ignore[arg-type]
                    try:
                        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                    finally:
                        await conn.close()
    async with QueryCache(redis_url, prefix=prefix) as cleaner:
        for kind in args.stores.split(","):
            for suffix in ("", "-http"):
                async with QueryCache(redis_url, prefix=f"{prefix}-{kind}{suffix}") as one:
                    await one.clear()
        await cleaner.clear()
    print(
        f"hot document queries, {args.docs} documents, {args.queries} queries per run,"
        f" median of {args.rounds} rounds (Redis on loopback)"
    )
    print("| query | store | no cache q/s | cache q/s | cache / no cache |")
    print("|---|---|---|---|---|")
    for label, name, plain, cached in rows:
        print(f"| {label} | {name} | {plain:,.0f} | {cached:,.0f} | {cached / plain:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--docs", type=int, default=10000)
    parser.add_argument("--stores", default="sqlite,postgres")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
