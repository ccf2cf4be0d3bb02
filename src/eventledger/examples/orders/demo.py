"""The demo: the Orders service with sample data, and one read model with a bug.

``eventledger demo`` serves :data:`application` and, on a fresh store, calls
:func:`seed`: stock for four products and orders in every state. One read model,
``line_shares``, has a deliberate bug (it forgets that an order can be free),
so the dead-letter queue has something to show.
"""

from __future__ import annotations

from decimal import Decimal

from eventledger import Application, Command, Service
from eventledger.examples.orders.commands import (
    AddStock,
    CancelOrder,
    DeliverOrder,
    PayOrder,
    PlaceOrder,
    handlers,
)
from eventledger.examples.orders.domain import Order, OrderCreated, OrderLine
from eventledger.examples.orders.fulfilment import OrderFulfilment
from eventledger.examples.orders.read_models import CustomerOrders, DailySales, OrderList
from eventledger.examples.orders.stock import StockItem
from eventledger.projections import Context, DocumentProjection, OnFailure, RetryPolicy, on


class LineShares(DocumentProjection):
    """What share of each order's total each line makes. Its bug: a free order (total 0)
    divides by zero. Its policy parks such events and goes on (`OnFailure.SKIP`)."""

    name = "line_shares"
    categories = ("Order",)
    retry = RetryPolicy(max_attempts=3, initial_delay=0.01, on_failure=OnFailure.SKIP)

    @on
    async def created(self, event: OrderCreated, context: Context) -> None:
        assert context.docs is not None
        total = sum((line.total for line in event.lines), Decimal(0))
        shares = {line.sku: str(round(line.total / total, 4)) for line in event.lines}
        await context.docs.put(context.aggregate_id, {"shares": shares})


application = Application(
    "orders-demo",
    commands=handlers,
    aggregates=[Order, StockItem],
    projections=[OrderList, CustomerOrders, DailySales, OrderFulfilment, LineShares],
    snapshot_every={StockItem: 100},
)


def _line(sku: str, quantity: int, price: str) -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity, unit_price=Decimal(price))


async def seed(service: Service) -> bool:
    """Sample data for an empty store: stock, and orders in every state. False (and
    nothing written) when the store has events already."""
    if await service.store.head_position() > 0:
        return False

    async def send(command: Command) -> None:
        result = await service.bus.send(command, actor="demo:seed")
        # Once the process has passed this command's events, it has sent what they
        # cause (waiting for the head instead could return early on PostgreSQL, whose
        # head leaves out commits still becoming visible).
        await service.runner.wait_until("order_fulfilment", result.position, 30)

    for sku, quantity in (("BOOK", 40), ("PEN", 200), ("MUG", 25), ("LAMP", 3)):
        await send(AddStock(sku=sku, quantity=quantity))
    # Placed, waiting for payment (the process cancels it if unpaid in 30 minutes).
    await send(
        PlaceOrder(order_id="o-1001", customer_id="alice", lines=[_line("BOOK", 2, "12.50")])
    )
    # Paid: the process ships it.
    await send(PlaceOrder(order_id="o-1002", customer_id="bob", lines=[_line("PEN", 10, "1.20")]))
    await send(PayOrder(order_id="o-1002", amount=Decimal("12.00"), payment_id="pay-1002"))
    # Paid, shipped and delivered.
    lines = [_line("BOOK", 1, "12.50"), _line("MUG", 2, "8.00")]
    await send(PlaceOrder(order_id="o-1003", customer_id="carol", lines=lines))
    await send(PayOrder(order_id="o-1003", amount=Decimal("28.50"), payment_id="pay-1003"))
    await send(DeliverOrder(order_id="o-1003"))
    # Cancelled by the customer: the process gives the stock back.
    await send(PlaceOrder(order_id="o-1004", customer_id="dave", lines=[_line("MUG", 1, "8.00")]))
    await send(CancelOrder(order_id="o-1004", reason="ordered by mistake"))
    # More lamps than there are: the process cancels it.
    await send(PlaceOrder(order_id="o-1005", customer_id="erin", lines=[_line("LAMP", 5, "40.00")]))
    # A free sample: fine for the shop, but line_shares divides by its zero total.
    await send(PlaceOrder(order_id="o-1006", customer_id="frank", lines=[_line("PEN", 1, "0.00")]))
    await send(PayOrder(order_id="o-1006", amount=Decimal("0.00"), payment_id="pay-1006"))
    return True
