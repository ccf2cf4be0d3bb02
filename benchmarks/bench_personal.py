"""What sealing personal values costs: appends and reads of events with two personal
fields beside the same events without, in one run, as ratios (issue 15's target: at
least 0.8).

Run: python -m benchmarks.bench_personal [--events N] [--rounds R] [--backend sqlite|postgres|both]

Each round appends N events (10 per append, 100 subjects so that keys come from the
cache after their first use, the way a busy service sees them) to a fresh store, then
reads them all back with ``read_all`` (decoded; personal values opened); plain and
personal runs alternate, medians of R rounds. Two kinds of append: to a new stream each
time (an order each: every subject of the append is linked to the stream in the same
transaction, see docs/personal-data.md), and to 100 streams over and over (a customer
each: links are known after the first append). PostgreSQL: EVENTLEDGER_BENCH_DATABASE_URL,
else EVENTLEDGER_TEST_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid

from eventledger import NewEvent, open_store
from eventledger.personal import new_key_text

BATCH = 10


def _events(n: int, personal: bool) -> list[NewEvent]:
    made = []
    for i in range(n):
        customer = f"c-{i % 100}"
        data = {
            "customer_id": customer,
            "email": f"customer{i}@example.com",
            "name": f"Customer Number {i}",
            "sku": "BOOK",
            "quantity": i % 5 + 1,
        }
        made.append(
            NewEvent(
                "OrderPlaced",
                data,
                personal={"email": "customer_id", "name": "customer_id"} if personal else None,
            )
        )
    return made


async def _round(url: str, n: int, personal: bool) -> tuple[float, float, float]:
    async with await open_store(url) as store:
        events = _events(n, personal)
        started = time.perf_counter()
        for start in range(0, n, BATCH):
            await store.append(f"Order-{start // BATCH}", events[start : start + BATCH])
        appended = n / (time.perf_counter() - started)
        again = _events(n, personal)
        started = time.perf_counter()
        for start in range(0, n, BATCH):
            await store.append(f"Customer-{start // BATCH % 100}", again[start : start + BATCH])
        known = n / (time.perf_counter() - started)
        started = time.perf_counter()
        count = 0
        async for event in store.read_all():
            count += 1
            assert isinstance(event.data["email"], str)
        assert count == 2 * n
        read = 2 * n / (time.perf_counter() - started)
    return appended, known, read


async def _backend(name: str, events: int, rounds: int) -> list[tuple[str, float, float]]:
    figures: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(rounds):
            for personal in (False, True) if round_ % 2 == 0 else (True, False):
                if name == "sqlite":
                    url = f"sqlite:///{folder}/{uuid.uuid4().hex}.db"
                else:
                    base = (
                        os.environ.get("EVENTLEDGER_BENCH_DATABASE_URL")
                        or os.environ.get("EVENTLEDGER_TEST_DATABASE_URL")
                        or "postgresql://postgres@127.0.0.1:5432/test"
                    )
                    joiner = "&" if "?" in base else "?"
                    url = f"{base}{joiner}schema=bench_personal_{uuid.uuid4().hex[:8]}"
                figures[personal].append(await _round(url, events, personal))
                if name == "postgres":
                    await _drop_schema(url)
    rows = []
    kinds = (("appends, new streams", 0), ("appends, known streams", 1), ("read_all", 2))
    for label, index in kinds:
        plain = statistics.median(f[index] for f in figures[False])
        sealed = statistics.median(f[index] for f in figures[True])
        rows.append((f"{name} {label}", plain, sealed))
    return rows


async def _drop_schema(url: str) -> None:
    import asyncpg

    base, _, query = url.partition("?")
    schema = dict(part.split("=", 1) for part in query.split("&"))["schema"]
    conn = await asyncpg.connect(base)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    os.environ.setdefault("EVENTLEDGER_KEY_ENCRYPTION_KEY", new_key_text())
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    print(f"{args.events:,} events, {BATCH} per append, median of {args.rounds} rounds")
    print("| workload | plain ev/s | two personal fields ev/s | personal / plain |")
    print("|---|---|---|---|")
    for backend in backends:
        for label, plain, sealed in asyncio.run(_backend(backend, args.events, args.rounds)):
            print(f"| {label} | {plain:,.0f} | {sealed:,.0f} | {sealed / plain:.2f} |")


if __name__ == "__main__":
    main()
