"""A real eventledger server for the admin page's tests, run as its own process.

The demo application (its seed data: orders in every state, a process manager, a
parked dead letter) and one projection more, ``stock_audit``, which fails while a flag
file exists: removing the file is the fix that makes a retry succeed.

Usage: python -m tests.admin.server STORE_URL PORT FLAG_FILE
Prints one JSON line (the API keys it made) and serves until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import uvicorn

from eventledger import Application, Service, open_store
from eventledger.examples.orders.commands import handlers
from eventledger.examples.orders.demo import (
    DemoFulfilment,
    LineShares,
    seed,
)
from eventledger.examples.orders.domain import Order
from eventledger.examples.orders.read_models import CustomerOrders, DailySales, OrderList
from eventledger.examples.orders.stock import StockAdded, StockItem
from eventledger.http import ApiKeys, create_app
from eventledger.projections import Context, DocumentProjection, OnFailure, RetryPolicy, on

FLAG = Path(sys.argv[3]) if len(sys.argv) > 3 else Path("fail-stock-audit")


class StockAudit(DocumentProjection):
    """Counts stock additions; fails while the flag file exists."""

    name = "stock_audit"
    categories = ("Stock",)
    retry = RetryPolicy(max_attempts=1, initial_delay=0.01, on_failure=OnFailure.SKIP)

    @on
    async def added(self, event: StockAdded, context: Context) -> None:
        assert context.docs is not None
        if FLAG.exists():
            raise RuntimeError(f"the audit is switched off ({FLAG.name} exists)")
        await context.docs.put(context.aggregate_id, {"added": event.quantity})


application = Application(
    "admin-test",
    commands=handlers,
    aggregates=[Order, StockItem],
    projections=[OrderList, CustomerOrders, DailySales, DemoFulfilment, LineShares, StockAudit],
)


async def make_keys(url: str) -> dict[str, str]:
    async with await open_store(url) as store:
        keys = ApiKeys(store)
        _, admin = await keys.create("test:admin", ["read", "write", "admin"])
        _, reader = await keys.create("test:reader", ["read"])
        _, writer = await keys.create("test:writer", ["write"])
    return {"admin": admin, "reader": reader, "writer": writer}


def main() -> None:
    url, port = sys.argv[1], int(sys.argv[2])
    print(json.dumps(asyncio.run(make_keys(url))), flush=True)

    async def seeded(service: Service) -> None:
        await seed(service)

    app = create_app(application, url, on_start=seeded, admin_sample_seconds=0.5)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
