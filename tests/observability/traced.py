"""A real server with OpenTelemetry's SDK recording every span in memory, for
test_tracing: run as ``python -m tests.observability.traced STORE_URL``; it serves on a
loopback port, runs the requests the test names, and prints the spans as JSON lines.

A process of its own, because a tracer provider is set once per process (and the rest
of the suite runs untraced)."""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from eventledger.http import create_app
from tests.http.conftest import orders_application, serve

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


async def main(store_url: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    app = create_app(orders_application(), store_url, allow_anonymous=True, admin=False)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        stock = await client.post("/commands/AddStock", json={"sku": "BOOK", "quantity": 5})
        assert stock.status_code == 200, stock.text
        line = {"sku": "BOOK", "quantity": 1, "unit_price": "12.50"}
        placed = await client.post(
            "/commands/PlaceOrder?wait=order_fulfilment",
            json={"order_id": "o-1", "customer_id": "ann", "lines": [line]},
        )
        assert placed.status_code == 200, placed.text
        paid = await client.post(
            "/commands/PayOrder?wait=order_fulfilment",
            json={"order_id": "o-1", "amount": "12.50", "payment_id": "p-1"},
            headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
        )
        assert paid.status_code == 200, paid.text
        await asyncio.sleep(0.5)  # the read models' batches end their spans
    for span in exporter.get_finished_spans():
        print(
            json.dumps(
                {
                    "name": span.name,
                    "kind": span.kind.name,
                    "trace": f"{span.context.trace_id:032x}",
                    "id": f"{span.context.span_id:016x}",
                    "parent": None if span.parent is None else f"{span.parent.span_id:016x}",
                    "links": [f"{link.context.trace_id:032x}" for link in span.links],
                    "attributes": dict(span.attributes or {}),
                }
            )
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
