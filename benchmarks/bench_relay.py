"""What the outbox relay costs: events per second the relay hands from the store to NATS
JetStream, beside raw nats-py publishing the very same messages the same way, in one run.

Run: python -m benchmarks.bench_relay [--events N] [--rounds R] [--batch B]
                                      [--backend sqlite|postgres|both] [--nats URL]

The store holds N events (~100-byte order JSON, a correlation id in the metadata, 100
per append). A relay round runs a fresh relay (its own name, so from position 0) into
a fresh JetStream stream until it checkpointed the head: reading the log, building the
messages, publishing a page of B at a time and awaiting every ack, committing the
checkpoint. The raw round publishes the messages the relay sent (built beforehand,
same subjects, headers and bodies) with ``js.publish_async`` into a fresh stream, B at
a time, awaiting every ack: the floor the relay stands on. Medians of R rounds; the
two alternate. NATS: --nats, else EVENTLEDGER_TEST_NATS_URL, else nats://127.0.0.1:4222.
PostgreSQL: EVENTLEDGER_BENCH_DATABASE_URL, else EVENTLEDGER_TEST_DATABASE_URL, else
postgresql://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid

import nats
from nats.js.api import StorageType, StreamConfig

from eventledger import EventStore, NewEvent, open_store
from eventledger.relay import NatsRelay, RelayRunner
from eventledger.relay.messages import to_message

PER_APPEND = 100


async def _fill(store: EventStore, n: int) -> None:
    for start in range(0, n, PER_APPEND):
        await store.append(
            f"Order-{start // PER_APPEND}",
            [
                NewEvent(
                    "OrderPlaced",
                    {"customer": f"c-{i % 100}", "sku": "BOOK", "quantity": i % 5 + 1},
                    metadata={"correlation_id": str(uuid.uuid4())},
                )
                for i in range(start, min(start + PER_APPEND, n))
            ],
        )


async def _relay_round(store: EventStore, url: str, batch: int) -> float:
    tag = uuid.uuid4().hex[:8]
    relay = NatsRelay(url, name=f"bench-{tag}", stream=f"BENCH_{tag}", subject_prefix=f"b{tag}")
    head = await store.head_position()
    try:
        await relay.connect()  # the stream exists before the clock starts, as for raw
        started = time.perf_counter()
        async with RelayRunner(store, [relay], batch_size=batch, poll_interval=0.05) as runner:
            await runner.wait_until(relay.name, head, timeout=600)
            elapsed = time.perf_counter() - started
    finally:
        await _delete(url, relay.stream)
    return relay.published / elapsed


async def _raw_round(url: str, page: list[tuple[str, bytes, dict[str, str]]], batch: int) -> float:
    tag = uuid.uuid4().hex[:8]
    stream, prefix = f"BENCH_{tag}", f"b{tag}"
    client = await nats.connect(url)
    try:
        js = client.jetstream(timeout=30)
        await js.add_stream(
            StreamConfig(name=stream, subjects=[f"{prefix}.>"], storage=StorageType.FILE)
        )
        messages = [(f"{prefix}.{subject.partition('.')[2]}", b, h) for subject, b, h in page]
        started = time.perf_counter()
        for start in range(0, len(messages), batch):
            acks = [
                await js.publish_async(subject, body, headers=dict(headers), stream=stream)
                for subject, body, headers in messages[start : start + batch]
            ]
            for ack in await asyncio.gather(*acks):
                assert not ack.duplicate
        elapsed = time.perf_counter() - started
        await js.delete_stream(stream)
    finally:
        await client.close()
    return len(messages) / elapsed


async def _delete(url: str, stream: str) -> None:
    client = await nats.connect(url)
    try:
        await client.jetstream().delete_stream(stream)
    finally:
        await client.close()


async def _backend(
    name: str, url: str, events: int, rounds: int, batch: int
) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        if name == "sqlite":
            store_url = f"sqlite:///{folder}/relay.db"
        else:
            base = (
                os.environ.get("EVENTLEDGER_BENCH_DATABASE_URL")
                or os.environ.get("EVENTLEDGER_TEST_DATABASE_URL")
                or "postgresql://postgres@127.0.0.1:5432/test"
            )
            joiner = "&" if "?" in base else "?"
            store_url = f"{base}{joiner}schema=bench_relay_{uuid.uuid4().hex[:8]}"
        try:
            async with await open_store(store_url) as store:
                await _fill(store, events)
                page = []
                async for event in store.read_all():
                    subject, body, headers, _ = to_message(event, "x")
                    page.append((subject, body, headers))
                relayed, raw = [], []
                for round_ in range(rounds):
                    if round_ % 2 == 0:
                        relayed.append(await _relay_round(store, url, batch))
                        raw.append(await _raw_round(url, page, batch))
                    else:
                        raw.append(await _raw_round(url, page, batch))
                        relayed.append(await _relay_round(store, url, batch))
        finally:
            if name == "postgres":
                await _drop_schema(store_url)
    return statistics.median(relayed), statistics.median(raw)


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
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--nats",
        default=os.environ.get("EVENTLEDGER_TEST_NATS_URL", "nats://127.0.0.1:4222"),
    )
    args = parser.parse_args()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    print(
        f"{args.events:,} events, pages of {args.batch}, median of {args.rounds} rounds,"
        f" NATS {args.nats}"
    )
    print("| store | relay ev/s | raw nats-py publish ev/s | relay / raw |")
    print("|---|---|---|---|")
    for backend in backends:
        relayed, raw = asyncio.run(
            _backend(backend, args.nats, args.events, args.rounds, args.batch)
        )
        print(f"| {backend} | {relayed:,.0f} | {raw:,.0f} | {relayed / raw:.2f} |")


if __name__ == "__main__":
    main()
