"""What metrics and tracing cost: command throughput with each turned on.

Run: python -m benchmarks.bench_observability [--commands N] [--rounds R]

Commands (``AddStock`` on 50 SKUs, so that they rarely collide) through the HTTP app
in-process (httpx's ASGI transport: the request middleware, the bus, the store; no
network) on a SQLite file, in three modes, each in a fresh process (a tracer provider
can be set once per process), alternated over R rounds; medians:

- off: no metrics (the instruments are the no-op ones) and no tracer provider;
- metrics: the Prometheus instruments (``create_app`` turns them on);
- metrics + tracing: also the OpenTelemetry SDK with a simple span processor into an
  in-memory exporter (every span is recorded and kept).

Targets (issue 16): metrics cost at most 5%, tracing at most 15%.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = ("off", "metrics", "metrics+tracing")


async def _measure(mode: str, commands: int, folder: str) -> float:
    import httpx

    from eventledger import Application
    from eventledger.examples.orders.commands import handlers
    from eventledger.examples.orders.domain import Order
    from eventledger.examples.orders.stock import StockItem
    from eventledger.http import create_app
    from eventledger.observability import instruments

    if mode == "metrics+tracing":
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
        trace.set_tracer_provider(provider)
    application = Application(
        "bench", commands=handlers, aggregates=[Order, StockItem], projections=[]
    )
    app = create_app(
        application,
        f"sqlite:///{folder}/{mode}.db",
        allow_anonymous=True,
        admin=False,
        metrics=mode != "off",
    )
    if mode == "off":
        assert type(instruments.current).__name__ == "Off"
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for i in range(50):  # warm up: every SKU exists
                await client.post("/commands/AddStock", json={"sku": f"SKU{i}", "quantity": 1})
            started = time.perf_counter()
            for i in range(commands):
                answer = await client.post(
                    "/commands/AddStock", json={"sku": f"SKU{i % 50}", "quantity": 1}
                )
                assert answer.status_code == 200, answer.text
            return commands / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=MODES)
    parser.add_argument("--folder")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_measure(args.child, args.commands, args.folder))))
        return
    figures: dict[str, list[float]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            order = MODES if round_ % 2 == 0 else tuple(reversed(MODES))
            for mode in order:
                done = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.bench_observability",
                        "--child",
                        mode,
                        "--commands",
                        str(args.commands),
                        "--folder",
                        folder,
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=Path(__file__).resolve().parents[1],
                )
                figures[mode].append(float(done.stdout.strip().splitlines()[-1]))
                for leftover in Path(folder).glob(f"{mode}.db*"):
                    leftover.unlink()
    base = statistics.median(figures["off"])
    print(
        f"commands through the ASGI app, SQLite, {args.commands} per run, median of {args.rounds}"
    )
    print("| mode | commands/s | vs off | cost |")
    print("|---|---|---|---|")
    for mode in MODES:
        rate = statistics.median(figures[mode])
        print(f"| {mode} | {rate:,.0f} | {rate / base:.3f} | {(1 - rate / base) * 100:+.1f}% |")


if __name__ == "__main__":
    main()
