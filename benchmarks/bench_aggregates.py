"""Aggregate load time: events replayed, with and without snapshots, beside eventsourcing.

Run: python -m benchmarks.bench_aggregates [--no-peer]   (PostgreSQL as for bench_store)

One aggregate (an account: balance and count, one event type) is written with
N events, saved 100 at a time; then `Repository.load` is timed (median of 7
loads on warm connections). With snapshots every 100 events, a load restores
the latest snapshot and replays what follows it: nothing for N = 10,000, 99
events for N = 10,099 (the worst case). The peer is the eventsourcing library's
`Application.repository.get` on the same PostgreSQL, with its own snapshotting.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import tempfile
import time
import uuid

import asyncpg

from benchmarks.bench_store import peer_settings, postgres_url
from eventledger import Aggregate, Event, EventRegistry, EventStore, Repository, applies, open_store
from eventledger.stores.postgres import split_url

SIZES = (10, 1_000, 10_000, 10_099)
SCHEMA = "bench_aggregates"
registry = EventRegistry()


class Deposited(Event, registry=registry):
    amount: int


class Account(Aggregate):
    balance: int = 0
    deposits: int = 0

    def deposit(self, amount: int) -> None:
        self.record(Deposited(amount=amount))

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount
        self.deposits += 1


async def prepare(store: EventStore, events: int, snapshot_every: int | None) -> str:
    accounts = Repository(store, Account, registry=registry, snapshot_every=snapshot_every)
    account = Account(id=uuid.uuid4().hex)
    for n in range(events):
        account.deposit(n)
        if (n + 1) % 100 == 0 or n + 1 == events:
            await accounts.save(account)
    return account.id


async def load_seconds(
    store: EventStore, account_id: str, events: int, snapshot_every: int | None
) -> float:
    accounts = Repository(store, Account, registry=registry, snapshot_every=snapshot_every)
    timings = []
    for _ in range(7):
        start = time.perf_counter()
        account = await accounts.load(account_id)
        timings.append(time.perf_counter() - start)
        assert account.balance == events * (events - 1) // 2
    return statistics.median(timings)


async def measure(url: str) -> dict[tuple[int, int | None], float]:
    store = await open_store(url)
    try:
        results = {}
        for events in SIZES:
            for snapshot_every in (None, 100):
                account_id = await prepare(store, events, snapshot_every)
                results[events, snapshot_every] = await load_seconds(
                    store, account_id, events, snapshot_every
                )
        return results
    finally:
        await store.close()


def measure_peer(url: str) -> dict[tuple[int, int | None], float]:
    if importlib.util.find_spec("eventsourcing") is None:
        print("(eventsourcing not measured: pip install 'eventledger[bench]')")
        return {}
    from benchmarks import _eventsourcing_aggregate_peer as peer

    settings = peer_settings(url)
    peer.setup(settings)
    try:
        results = {}
        for events in SIZES:
            for snapshot_every in (None, 100):
                aggregate_id = peer.prepare(settings, events, snapshot_every)
                results[events, snapshot_every] = peer.load_seconds(
                    settings, aggregate_id, snapshot_every
                )
        return results
    finally:
        peer.teardown(settings)


def ms(value: float | None) -> str:
    return "" if value is None else f"{value * 1000:.2f}"


async def main(with_peer: bool) -> None:
    with postgres_url() as url:
        dsn, _ = split_url(url)
        separator = "&" if "?" in url else "?"
        postgres = await measure(f"{url}{separator}schema={SCHEMA}")
        peer = await asyncio.to_thread(measure_peer, url) if with_peer else {}
        admin = await asyncpg.connect(dsn)
        await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await admin.close()
    with tempfile.TemporaryDirectory(prefix="el-bench-agg-") as folder:
        sqlite = await measure(f"sqlite:///{folder}/events.db")
    print(
        "| events | snapshots | SQLite ms | PostgreSQL ms | eventsourcing (PostgreSQL) ms"
        " | eventledger/eventsourcing time |"
    )
    print("|---|---|---|---|---|---|")
    for events in SIZES:
        for snapshot_every in (None, 100):
            key = (events, snapshot_every)
            theirs = peer.get(key)
            ratio = f"{postgres[key] / theirs:.2f}" if theirs else ""
            label = "every 100" if snapshot_every else "none"
            print(
                f"| {events:,} | {label} | {ms(sqlite[key])} | {ms(postgres[key])}"
                f" | {ms(theirs)} | {ratio} |"
            )
    for name, results in (("SQLite", sqlite), ("PostgreSQL", postgres)):
        ratio = results[10_000, 100] / results[10, 100]
        print(f"{name}: load of 10,000 events with snapshots / load of 10 events = {ratio:.2f}")
        worst = results[10_099, 100] / results[10, 100]
        print(
            f"{name}: load of 10,099 events with snapshots (a 99-event tail)"
            f" / load of 10 events = {worst:.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-peer", action="store_true", help="skip the eventsourcing library")
    asyncio.run(main(not parser.parse_args().no_peer))
