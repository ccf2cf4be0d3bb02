"""The fulfilment process in a process of its own, for the tests that kill and restart it.

python -m tests.examples.fulfilment_process STORE_URL PAYMENT_WINDOW_SECONDS
Runs until killed.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from eventledger import CommandBus, open_store
from eventledger.examples.orders.commands import handlers
from eventledger.examples.orders.fulfilment import OrderFulfilment
from eventledger.projections import ProjectionRunner


async def main(url: str, window: float) -> None:
    class Fulfilment(OrderFulfilment):
        name = "order_fulfilment"
        category = "OrderFulfilment"
        payment_window = timedelta(seconds=window)

    store = await open_store(url)
    bus = CommandBus(store, handlers)
    runner = ProjectionRunner(store, [Fulfilment()], commands=bus, lease_ttl=1.0, poll_interval=0.1)
    await runner.start()
    print("started", flush=True)
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
