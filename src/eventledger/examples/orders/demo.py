"""The demo: the Orders service with sample data, and one read model with a bug.

``eventledger demo`` serves :data:`application` and, on a fresh store, calls
:func:`seed`: stock for four products and five orders, one in each state an order
can be in (:data:`SEEDED`). One read model, ``line_shares``, has a deliberate bug
(it forgets that an order can be free), so the dead-letter queue has something to
show.

Every seeded order carries its customer's name, email and shipping address (personal
data, sealed with each customer's own key), and one customer, ``dave``, has been
forgotten (:data:`FORGOTTEN`): his order reads ``{"$redacted": "dave"}`` in their
place, and the read models keep nothing of them.

The demo's fulfilment process is the Orders example's with one rule more: a paid
order over 100.00 waits for someone to check it and ship it by hand
(``POST /commands/ShipOrder``), which is how the demo keeps an order in the paid state.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from eventledger import Application, Command, Service
from eventledger.examples.orders.commands import (
    AddStock,
    DeliverOrder,
    PayOrder,
    PlaceOrder,
    handlers,
)
from eventledger.examples.orders.domain import (
    Customer,
    Order,
    OrderCreated,
    OrderLine,
    OrderPaid,
    OrderStatus,
    ShippingAddress,
)
from eventledger.examples.orders.fulfilment import FulfilmentState, OrderFulfilment
from eventledger.examples.orders.read_models import CustomerOrders, DailySales, OrderList
from eventledger.examples.orders.stock import StockItem
from eventledger.personal import forget
from eventledger.process import Process
from eventledger.projections import Context, DocumentProjection, OnFailure, RetryPolicy, on


class UndefinedShare(ArithmeticError):
    """A share of a total of zero: the order is free."""


class LineShares(DocumentProjection):
    """What share of each order's total each line makes. Its bug: it forgets that an
    order can be free, and fails on one (a share of a total of zero is undefined). Its
    policy parks such events and goes on (`OnFailure.SKIP`)."""

    name = "line_shares"
    categories = ("Order",)
    retry = RetryPolicy(max_attempts=3, initial_delay=0.01, on_failure=OnFailure.SKIP)

    @on
    async def created(self, event: OrderCreated, context: Context) -> None:
        assert context.docs is not None
        total = sum((line.total for line in event.lines), Decimal(0))
        if total == 0:  # what dividing by it would fail on, said in words
            raise UndefinedShare(
                f"order {context.aggregate_id} costs {total}: a line's share of a total of"
                " zero is undefined (line_shares does not handle free orders)"
            )
        shares = {line.sku: str(round(line.total / total, 4)) for line in event.lines}
        await context.docs.put(context.aggregate_id, {"shares": shares})


class DemoFulfilment(OrderFulfilment):
    """The Orders example's fulfilment process, except that a paid order over
    `review_above` is not shipped: it waits, paid, for someone to check it and ship it
    by hand (``ShipOrder``)."""

    name = "order_fulfilment"
    category = "OrderFulfilment"  # the same process, whose deadlines live in these streams
    review_above: ClassVar[Decimal] = Decimal("100.00")

    @on
    def paid(self, event: OrderPaid, process: Process[FulfilmentState]) -> None:
        if event.amount <= self.review_above:
            super().paid(event, process)
            return
        process.cancel_timeout("payment")
        process.state.paid = True


application = Application(
    "orders-demo",
    commands=handlers,
    aggregates=[Order, StockItem],
    projections=[OrderList, CustomerOrders, DailySales, DemoFulfilment, LineShares],
    snapshot_every={StockItem: 100},
)


def _line(sku: str, quantity: int, price: str) -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity, unit_price=Decimal(price))


SEEDED: dict[str, OrderStatus] = {
    "o-1001": OrderStatus.CREATED,
    "o-1002": OrderStatus.PAID,
    "o-1003": OrderStatus.DELIVERED,
    "o-1004": OrderStatus.CANCELLED,
    "o-1005": OrderStatus.SHIPPED,
}
"""The orders :func:`seed` makes, and the state each is left in: one in each state an
order can be in. The process cancels o-1001 when it is still unpaid 30 minutes later."""


FORGOTTEN = "dave"
"""The customer :func:`seed` forgets (after his order was cancelled)."""


def _customer(name: str, street: str, city: str, postal_code: str, country: str) -> Customer:
    first = name.split()[0].lower()
    return Customer(
        name=name,
        email=f"{first}@example.com",
        shipping_address=ShippingAddress(
            street=street, city=city, postal_code=postal_code, country=country
        ),
    )


CUSTOMERS: dict[str, Customer] = {
    "alice": _customer("Alice Archer", "1 Acacia Avenue", "Bristol", "BS1 4DJ", "GB"),
    "bob": _customer("Bob Brenner", "Bergstrasse 12", "Zurich", "8001", "CH"),
    "carol": _customer("Carol Castillo", "Calle Mayor 3", "Madrid", "28013", "ES"),
    "dave": _customer("Dave Dekker", "Damrak 70", "Amsterdam", "1012 LM", "NL"),
    "erin": _customer("Erin Evans", "5 Elm Street", "Dublin", "D02 X285", "IE"),
}
"""Who each seeded order is for (made-up people)."""


def _place(order_id: str, customer_id: str, *lines: OrderLine) -> PlaceOrder:
    return PlaceOrder(
        order_id=order_id,
        customer_id=customer_id,
        lines=list(lines),
        customer=CUSTOMERS[customer_id],
    )


async def seed(service: Service) -> bool:
    """Sample data for an empty store: stock, the orders of :data:`SEEDED` with their
    customers, and :data:`FORGOTTEN` forgotten. False (and nothing written) when the
    store has events already."""
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
    # Created: placed, waiting for payment (the process cancels it if unpaid in 30 minutes).
    await send(_place("o-1001", "alice", _line("BOOK", 2, "12.50")))
    # Paid: over 100.00, so it waits for someone to check it and ship it.
    await send(_place("o-1002", "bob", _line("MUG", 15, "8.00")))
    await send(PayOrder(order_id="o-1002", amount=Decimal("120.00"), payment_id="pay-1002"))
    # Delivered: paid, shipped by the process, then delivered.
    await send(_place("o-1003", "carol", _line("BOOK", 1, "12.50"), _line("MUG", 2, "8.00")))
    await send(PayOrder(order_id="o-1003", amount=Decimal("28.50"), payment_id="pay-1003"))
    await send(DeliverOrder(order_id="o-1003"))
    # Cancelled: more lamps than there are, so the process cancels it.
    await send(_place("o-1004", "dave", _line("LAMP", 5, "40.00")))
    # Shipped: a free sample, paid and shipped by the process; line_shares parks it.
    await send(_place("o-1005", "erin", _line("PEN", 1, "0.00")))
    await send(PayOrder(order_id="o-1005", amount=Decimal("0.00"), payment_id="pay-1005"))
    # Forgotten: dave asked to be forgotten once his order was cancelled.
    await forget(service.store, FORGOTTEN)
    return True
