"""The commands of the Orders example and their handlers.

Customers place, pay and cancel orders; the warehouse adds stock and delivers;
the fulfilment process (``fulfilment.py``) reserves and releases stock and ships.
Shipping changes the order and its stock items in one transaction.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import pydantic

from eventledger import Command, CommandContext, CommandHandlers
from eventledger.examples.orders.domain import Customer, Money, Order, OrderLine, Sku
from eventledger.examples.orders.stock import StockItem

Id = Annotated[
    str,
    pydantic.StringConstraints(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
    ),
]
"""Ids of orders, customers, SKUs and payments: letters, digits and ``_.:-``."""

handlers = CommandHandlers()


class PlaceOrder(Command):
    """Place an order for a customer: its lines, with quantities and unit prices, and
    optionally who the customer is (name, email, shipping address: personal data of
    `customer_id`, which the command log does not keep)."""

    order_id: Id
    customer_id: Id
    lines: list[OrderLine] = pydantic.Field(min_length=1, max_length=100)
    customer: Customer | None = None


class PayOrder(Command):
    """Pay an order: the amount must be its total, once, while it is created."""

    order_id: Id
    amount: Money
    payment_id: Id


class ShipOrder(Command):
    """Ship a paid order; its reserved units leave the warehouse with it."""

    order_id: Id
    carrier: str = pydantic.Field(min_length=1, max_length=64)
    tracking_number: str = pydantic.Field(min_length=1, max_length=64)


class DeliverOrder(Command):
    """Record that a shipped order arrived."""

    order_id: Id


class CancelOrder(Command):
    """Cancel an order before it ships (a paid one records the refund due)."""

    order_id: Id
    reason: str = pydantic.Field(min_length=1, max_length=200)


class StockLine(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    sku: Sku
    quantity: int = pydantic.Field(gt=0, le=10_000)


class AddStock(Command):
    """Add units of a SKU to the warehouse."""

    sku: Sku
    quantity: int = pydantic.Field(gt=0, le=1_000_000)


class ReserveStock(Command):
    """Reserve units for an order: all of its lines, or none."""

    order_id: Id
    lines: list[StockLine] = pydantic.Field(min_length=1, max_length=100)


class ReleaseStock(Command):
    """Give an order's reserved units back (what is not reserved is left alone)."""

    order_id: Id
    skus: list[Sku] = pydantic.Field(min_length=1, max_length=100)


@handlers.handler
async def place_order(command: PlaceOrder, context: CommandContext) -> str:
    context.add(
        Order.create(command.order_id, command.customer_id, command.lines, command.customer)
    )
    return command.order_id


@handlers.handler
async def pay_order(command: PayOrder, context: CommandContext) -> str:
    order = await context.load(Order, command.order_id)
    order.pay(Decimal(command.amount), command.payment_id)
    return order.status.value


@handlers.handler
async def ship_order(command: ShipOrder, context: CommandContext) -> str:
    """The order ships and its reserved units leave the warehouse: one transaction."""
    order = await context.load(Order, command.order_id)
    order.ship(command.carrier, command.tracking_number)
    for sku in sorted({line.sku for line in order.lines}):
        item = await context.load(StockItem, sku)
        item.dispatch(command.order_id)
    return order.status.value


@handlers.handler
async def deliver_order(command: DeliverOrder, context: CommandContext) -> str:
    order = await context.load(Order, command.order_id)
    order.deliver()
    return order.status.value


@handlers.handler
async def cancel_order(command: CancelOrder, context: CommandContext) -> str:
    order = await context.load(Order, command.order_id)
    order.cancel(command.reason)
    return order.status.value


@handlers.handler
async def add_stock(command: AddStock, context: CommandContext) -> int:
    item = await context.find(StockItem, command.sku)
    if item is None:
        item = StockItem(id=command.sku)
        context.add(item)
    item.add(command.quantity)
    return item.available


@handlers.handler
async def reserve_stock(command: ReserveStock, context: CommandContext) -> None:
    """All lines or none: one short SKU refuses the whole reservation."""
    wanted: dict[str, int] = {}
    for line in command.lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    for sku, quantity in sorted(wanted.items()):
        item = await context.find(StockItem, sku)
        if item is None:
            item = StockItem(id=sku)
            context.add(item)
        item.reserve(command.order_id, quantity)


@handlers.handler
async def release_stock(command: ReleaseStock, context: CommandContext) -> None:
    for sku in sorted(set(command.skus)):
        item = await context.find(StockItem, sku)
        if item is not None:
            item.release(command.order_id)
