"""Deadlines are durable: one scheduled by a process that dies fires in the next one."""

from __future__ import annotations

import asyncio
import subprocess
import time
from decimal import Decimal
from pathlib import Path

from eventledger import CommandBus, Repository, open_store
from eventledger.examples.orders.commands import AddStock, PlaceOrder, handlers
from eventledger.examples.orders.domain import Order, OrderLine, OrderStatus
from eventledger.examples.orders.stock import StockItem
from tests import processes
from tests.processes import kill

ROOT = Path(__file__).resolve().parents[2]
WINDOW = 1.5  # seconds to pay


def start(url: str) -> subprocess.Popen[str]:
    return processes.start("tests.examples.fulfilment_process", url, str(WINDOW))


async def test_a_deadline_fires_after_the_process_that_set_it_was_killed(
    shared_store_url: str,
) -> None:
    store = await open_store(shared_store_url)
    bus = CommandBus(store, handlers)
    stock = Repository(store, StockItem)
    orders = Repository(store, Order)
    await bus.send(AddStock(sku="BOOK", quantity=5))
    first = start(shared_store_url)
    try:
        lines = [OrderLine(sku="BOOK", quantity=2, unit_price=Decimal("9.00"))]
        await bus.send(PlaceOrder(order_id="o-1", customer_id="alice", lines=lines))
        deadline = time.monotonic() + 15
        while (await stock.load("BOOK")).available != 3:  # the process reserved the books
            assert time.monotonic() < deadline, "the first process never reserved the stock"
            await asyncio.sleep(0.05)
    finally:
        kill(first)
    # The payment window passes while no process runs: nothing can fire.
    await asyncio.sleep(WINDOW + 0.5)
    assert (await orders.load("o-1")).status is OrderStatus.CREATED

    second = start(shared_store_url)
    try:
        deadline = time.monotonic() + 20
        while (await orders.load("o-1")).status is not OrderStatus.CANCELLED:
            assert time.monotonic() < deadline, "the deadline never fired after the restart"
            await asyncio.sleep(0.05)
        while (await stock.load("BOOK")).available != 5:
            assert time.monotonic() < deadline, "the stock was never released"
            await asyncio.sleep(0.05)
    finally:
        kill(second)
    order = await orders.load("o-1")
    assert order.cancel_reason == "payment overdue"
    reached = [e async for e in store.read_stream("OrderFulfilment-o-1")]
    assert [e.type for e in reached] == ["eventledger.DeadlineReached"]
    await store.close()
