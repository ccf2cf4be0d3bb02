"""Partitioned projection catch-up: one document read model over a long log, run by 1, 2
and 4 worker processes sharing its partitions, on PostgreSQL.

Run: python -m benchmarks.bench_partitions [--events N] [--partitions P] [--workers 1,2,4]
     [--runs R]

N events (default 100,000) of one type over N/20 streams, 20 events each (written once,
in the schema ``bench_partitions``, dropped at the end). For each worker count W, W
processes (python subprocesses on this machine) run a ProjectionRunner with a fresh
document projection of P partitions (default 4; one document per stream, a count and the
last value); the clock starts when they are all told to go and stops when every
partition's checkpoint has reached the head. Beside it: the same projection unpartitioned
in one process. The table gives events/s and the speed-up against one worker, and the
CPU seconds the workers and the PostgreSQL server used, to show which of them bounds the
scaling. ``--work-us U`` makes each event's handler burn U microseconds of CPU, for a
projection whose handlers cost more than reading the log.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg

from benchmarks.bench_projections import fill
from benchmarks.bench_store import postgres_url
from eventledger import open_store
from eventledger.projections import Context, DocumentProjection, ProjectionRunner, on
from eventledger.records import RecordedEvent
from eventledger.stores.postgres import split_url

SCHEMA = "bench_partitions"
WORK_US = [0]
"""CPU microseconds per event in the handler (--work-us), passed to the workers."""
ROOT = Path(__file__).resolve().parent.parent


def projection(name: str, partitions: int, work_us: int = 0) -> DocumentProjection:
    class PerStream(DocumentProjection):
        @on("Ticked")
        async def ticked(self, event: RecordedEvent, context: Context) -> None:
            assert context.docs is not None
            if work_us:  # a heavier handler: this much CPU per event
                until = time.perf_counter() + work_us / 1e6
                while time.perf_counter() < until:
                    pass
            doc = await context.docs.get(context.aggregate_id) or {"count": 0}
            doc["count"] += 1
            doc["last"] = event.data["n"]
            await context.docs.put(context.aggregate_id, doc)

    PerStream.name = name
    PerStream.partitions = partitions
    return PerStream()


async def worker(url: str, name: str, partitions: int, owner: str, work_us: int) -> None:
    """One worker process: waits for "go" on stdin, then runs until killed (its log on
    stderr at $BENCH_LOG_LEVEL, default WARNING: INFO shows partitions taken and released)."""
    logging.basicConfig(
        level=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        format=f"%(relativeCreated)6.0f ms {owner} %(message)s",
    )
    store = await open_store(url)
    runner = ProjectionRunner(
        store,
        [projection(name, partitions, work_us)],
        batch_size=1000,
        lease_ttl=2.0,
        poll_interval=0.2,
        owner=owner,
    )
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await runner.start()
    await asyncio.Event().wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its waited-for children (from /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(f) for f in fields[11:15]) / ticks


def postgres_cpu() -> float:
    """CPU seconds of every postgres process on this machine so far (approximate: includes
    other users' work; the backends of finished connections are lost, so measure with
    live ones)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                total += cpu_seconds(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return total


async def lowest(conn: asyncpg.Connection, name: str, partitions: int) -> int:
    names = [f"{name}#{k}" for k in range(partitions)] if partitions > 1 else [name]
    rows = await conn.fetch(
        f"SELECT name, position FROM {SCHEMA}.checkpoints WHERE name = ANY($1)", names
    )
    if len(rows) < len(names):
        return 0
    return min(int(r["position"]) for r in rows)


def spawn(url: str, name: str, partitions: int, owner: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_partitions",
            "--worker",
            url,
            name,
            str(partitions),
            owner,
            str(WORK_US[0]),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def run(
    url: str, dsn: str, workers: int, partitions: int, head: int
) -> tuple[float, float, float]:
    """Seconds to catch up, workers' CPU seconds, PostgreSQL CPU seconds."""
    name = f"p_{uuid.uuid4().hex[:8]}"
    procs = [spawn(url, name, partitions, f"w{i}") for i in range(workers)]
    conn = await asyncpg.connect(dsn)
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        cpu_before = sum(cpu_seconds(p.pid) for p in procs)
        pg_before = postgres_cpu()
        started = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        while await lowest(conn, name, partitions) < head:
            if time.perf_counter() - started > 1800:
                raise TimeoutError("no catch-up within 30 minutes")
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu_before
        pg = postgres_cpu() - pg_before
        return elapsed, cpu, pg
    finally:
        await conn.close()
        for proc in procs:
            proc.kill()
            proc.wait(timeout=30)


async def median_run(
    url: str, dsn: str, workers: int, partitions: int, head: int, runs: int
) -> tuple[float, float, float]:
    """The median of `runs` runs (each a fresh projection): seconds, workers' CPU, server
    CPU."""
    results = [await run(url, dsn, workers, partitions, head) for _ in range(runs)]
    return (
        statistics.median(r[0] for r in results),
        statistics.median(r[1] for r in results),
        statistics.median(r[2] for r in results),
    )


async def main(events: int, partitions: int, counts: list[int], runs: int) -> None:
    print(
        f"(machine: {os.cpu_count()} cores, shared with other work; load average"
        f" {os.getloadavg()[0]:.2f} at start; handler work {WORK_US[0]} µs of CPU per event;"
        f" medians of {runs} runs; the clock includes"
        " the workers' start: joining, a settle of lease_ttl/3 = 0.67 s, taking leases)"
    )
    with postgres_url() as base:
        dsn, _ = split_url(base)
        admin = await asyncpg.connect(dsn)
        await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        separator = "&" if "?" in base else "?"
        url = f"{base}{separator}schema={SCHEMA}"
        try:
            store = await open_store(url)
            started = time.perf_counter()
            await fill(store, events)
            head = await store.head_position()
            await store.close()
            print(f"(filled {events:,} events in {time.perf_counter() - started:.0f} s)")
            print(
                "| workers | partitions | seconds | events/s | speed-up vs 1 worker"
                " | workers' CPU s | CPU s of all postgres processes (others' too) |\n"
                "|---|---|---|---|---|---|---|",
                flush=True,
            )
            elapsed, cpu, pg = await median_run(url, dsn, 1, 1, head, runs)
            print(
                f"| 1 (unpartitioned) | 1 | {elapsed:.1f} | {events / elapsed:,.0f} | |"
                f" {cpu:.1f} | {pg:.1f} |",
                flush=True,
            )
            base_rate = None
            for count in counts:
                elapsed, cpu, pg = await median_run(url, dsn, count, partitions, head, runs)
                rate = events / elapsed
                base_rate = base_rate or rate
                print(
                    f"| {count} | {partitions} | {elapsed:.1f} | {rate:,.0f}"
                    f" | {rate / base_rate:.2f} | {cpu:.1f} | {pg:.1f} |",
                    flush=True,
                )
            print(f"(load average {os.getloadavg()[0]:.2f} at the end)")
        finally:
            await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            await admin.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, name, partitions, owner, work_us = sys.argv[2:7]
        asyncio.run(worker(url, name, int(partitions), owner, int(work_us)))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per row (the median)")
    parser.add_argument(
        "--work-us", type=int, default=0, help="CPU microseconds each event's handler burns"
    )
    options = parser.parse_args()
    counts = [int(c) for c in options.workers.split(",")]
    WORK_US[0] = options.work_us
    asyncio.run(main(options.events, options.partitions, counts, options.runs))
