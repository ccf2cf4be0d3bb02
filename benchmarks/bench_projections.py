"""Projection catch-up: a document read model built from a long log, beside a raw read.

Run: python -m benchmarks.bench_projections [--events N] [--no-peer]

N events (default 1,000,000) of one type over N/20 streams, 20 events each. A
document projection keeps one document per stream (a count, the last value).
The runner catches up from position 0 to the head: events/s, and this
process's resident memory sampled every 0.2 s (peak, and at a tenth of the way
against the end, to show it stays flat). Beside it: reading the same events
with `read_all` (decoded) and with a raw asyncpg SELECT, and the eventsourcing
library's projection runner on the same workload.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass

import asyncpg

from benchmarks.bench_store import peer_settings, postgres_url, raw_read_all
from eventledger import EventStore, NewEvent, open_store
from eventledger.projections import Context, DocumentProjection, ProjectionRunner, on
from eventledger.records import RecordedEvent
from eventledger.stores.postgres import split_url

SCHEMA = "bench_projections"


class PerStream(DocumentProjection):
    name = "per_stream"
    indexes = {"count": "number"}  # noqa: RUF012 - projection configuration

    @on("Ticked")
    async def ticked(self, event: RecordedEvent, context: Context) -> None:
        assert context.docs is not None
        doc = await context.docs.get(context.aggregate_id) or {"count": 0}
        doc["count"] += 1
        doc["last"] = event.data["n"]
        doc["customer"] = event.data["customer"]
        await context.docs.put(context.aggregate_id, doc)


def rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class MemorySampler:
    def __init__(self) -> None:
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), rss()))
            self._stop.wait(0.2)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> int:
        return max(m for _, m in self.samples)

    def at_fraction(self, fraction: float) -> int:
        start, end = self.samples[0][0], self.samples[-1][0]
        moment = start + (end - start) * fraction
        return min(self.samples, key=lambda s: abs(s[0] - moment))[1]


async def fill(store: EventStore, events: int) -> None:
    streams = events // 20

    async def writer(first: int) -> None:
        for stream in range(first, streams, 8):
            await store.append(
                f"Tick-{stream}",
                [
                    NewEvent("Ticked", {"n": stream * 20 + i, "customer": f"c-{stream % 1000}"})
                    for i in range(20)
                ],
                expected_version=0,
            )

    await asyncio.gather(*(writer(first) for first in range(8)))


@dataclass
class Result:
    store: str
    events: int
    projection_rate: float
    peak_rss: int
    rss_tenth: int
    rss_end: int
    read_all_rate: float
    raw_rate: float | None


async def measure(url: str, events: int, label: str, dsn: str | None) -> Result:
    store = await open_store(url)
    try:
        if await store.head_position() == 0:
            started = time.perf_counter()
            await fill(store, events)
            print(f"({label}: filled {events:,} events in {time.perf_counter() - started:.0f} s)")
        head = await store.head_position()
        total = await store.count_events()
        started = time.perf_counter()
        count = 0
        async for _ in store.read_all():
            count += 1
        read_all_rate = count / (time.perf_counter() - started)
        raw_rate = None
        if dsn is not None:
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
            assert pool is not None
            table = f"{SCHEMA}.events"
            import benchmarks.bench_store as bench_store

            bench_store.RAW_TABLE, saved = table, bench_store.RAW_TABLE
            try:
                raw_rate = await raw_read_all(pool, total)
            finally:
                bench_store.RAW_TABLE = saved
                await pool.close()
        runner = ProjectionRunner(store, [PerStream()], batch_size=1000, owner=uuid.uuid4().hex)
        with MemorySampler() as memory:
            started = time.perf_counter()
            await runner.start()
            await runner.wait_until("per_stream", head, timeout=3600)
            elapsed = time.perf_counter() - started
        docs = runner.documents("per_stream")
        assert await docs.count() == events // 20
        await runner.stop()
        return Result(
            label,
            total,
            total / elapsed,
            memory.peak,
            memory.at_fraction(0.1),
            memory.at_fraction(1.0),
            read_all_rate,
            raw_rate,
        )
    finally:
        await store.close()


def measure_peer(url: str, events: int) -> tuple[float, int] | None:
    if importlib.util.find_spec("eventsourcing") is None:
        print("(eventsourcing not measured: pip install 'eventledger[bench]')")
        return None
    from benchmarks import _eventsourcing_projection_peer as peer

    settings = peer_settings(url)
    peer.setup(settings, events)
    try:
        result: tuple[float, int] = peer.catch_up(settings, events)
        return result
    finally:
        peer.teardown(settings)


def mb(value: int) -> str:
    return f"{value / 1_048_576:,.0f}"


HEADER = (
    "| store | events | projection ev/s | peak RSS MB | RSS at 10% / at end MB"
    " | read_all decoded ev/s | raw SELECT ev/s | projection/raw |\n"
    "|---|---|---|---|---|---|---|---|"
)


def row(r: Result) -> str:
    raw = f"{r.raw_rate:,.0f}" if r.raw_rate else ""
    ratio = f"{r.projection_rate / r.raw_rate:.2f}" if r.raw_rate else ""
    return (
        f"| {r.store} | {r.events:,} | {r.projection_rate:,.0f} | {mb(r.peak_rss)}"
        f" | {mb(r.rss_tenth)} / {mb(r.rss_end)} | {r.read_all_rate:,.0f} | {raw} | {ratio} |"
    )


async def main(events: int, with_peer: bool) -> None:
    # Rows are printed as soon as they are measured: a long run that fails late keeps
    # what it measured.
    print(HEADER, flush=True)
    with postgres_url() as url:
        dsn, _ = split_url(url)
        admin = await asyncpg.connect(dsn)
        await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        separator = "&" if "?" in url else "?"
        try:
            ours = await measure(f"{url}{separator}schema={SCHEMA}", events, "PostgreSQL", dsn)
        finally:
            await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            await admin.close()
        print(row(ours), flush=True)
        peer = await asyncio.to_thread(measure_peer, url, events) if with_peer else None
        if peer is not None:
            rate, peak = peer
            print(
                f"| eventsourcing (PostgreSQL) | {events:,} | {rate:,.0f} | {mb(peak)} | | | |"
                f" eventledger/eventsourcing {ours.projection_rate / rate:.2f} |",
                flush=True,
            )
    with tempfile.TemporaryDirectory(prefix="el-bench-proj-") as folder:
        sqlite = await measure(f"sqlite:///{folder}/events.db", events, "SQLite", None)
        print(row(sqlite), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--no-peer", action="store_true", help="skip the eventsourcing library")
    options = parser.parse_args()
    asyncio.run(main(options.events, not options.no_peer))
