"""Three read models over the same Order events.

- ``order_list``: one document per order, queried by status, customer, total and date;
- ``customer_orders``: one document per customer with the number and value of orders;
- ``daily_sales``: a SQL table of orders paid and revenue per day (refunds subtracted).
"""

from __future__ import annotations

from decimal import Decimal

from eventledger.examples.orders.domain import (
    OrderCancelled,
    OrderCreated,
    OrderDelivered,
    OrderPaid,
    OrderShipped,
)
from eventledger.projections import Context, DocumentProjection, From, SqlProjection, on
from eventledger.records import RecordedEvent


class OrderList(DocumentProjection):
    """Every order with its status: what an order list page shows."""

    name = "order_list"
    categories = ("Order",)
    indexes = {
        "status": "text",
        "customer_id": "text",
        "total": "number",
        "created_at": "text",
    }
    # Simple changes need no handler: fields merged into the order's document.
    maps = {
        OrderPaid: {"status": "paid", "paid": From("amount")},
        OrderShipped: {"status": "shipped", "carrier": From("carrier")},
        OrderDelivered: {"status": "delivered"},
        OrderCancelled: {"status": "cancelled", "cancel_reason": From("reason")},
    }

    @on
    async def created(self, event: OrderCreated, context: Context) -> None:
        assert context.docs is not None
        total = sum((line.unit_price * line.quantity for line in event.lines), Decimal(0))
        await context.docs.put(
            context.aggregate_id,
            {
                "order_id": context.aggregate_id,
                "customer_id": event.customer_id,
                "status": "created",
                "lines": len(event.lines),
                "total": str(total),
                "created_at": context.recorded_at.isoformat(),
            },
        )


class CustomerOrders(DocumentProjection):
    """Orders per customer: how many, in which states, and what they paid."""

    name = "customer_orders"
    categories = ("Order",)
    indexes = {"kind": "text", "orders": "number", "paid_total": "number"}

    def document_id(self, record: RecordedEvent) -> str | None:
        # Prefetch the order's pointer document; the customer's follows from it.
        _, _, order_id = record.stream_id.partition("-")
        return f"order:{order_id}"

    @on
    async def created(self, event: OrderCreated, context: Context) -> None:
        assert context.docs is not None
        await context.docs.put(
            f"order:{context.aggregate_id}", {"kind": "order", "customer_id": event.customer_id}
        )
        customer = await context.docs.get(f"customer:{event.customer_id}") or {
            "kind": "customer",
            "customer_id": event.customer_id,
            "orders": 0,
            "paid_total": "0",
            "order_ids": [],
        }
        customer["orders"] += 1
        customer["order_ids"].append(context.aggregate_id)
        await context.docs.put(f"customer:{event.customer_id}", customer)

    @on
    async def paid(self, event: OrderPaid | OrderCancelled, context: Context) -> None:
        assert context.docs is not None
        order = await context.docs.get(f"order:{context.aggregate_id}")
        if order is None:
            return
        key = f"customer:{order['customer_id']}"
        customer = await context.docs.get(key)
        if customer is None:
            return
        change = event.amount if isinstance(event, OrderPaid) else -event.refund_due
        customer["paid_total"] = str(Decimal(customer["paid_total"]) + change)
        await context.docs.put(key, customer)


class DailySales(SqlProjection):
    """Orders paid and revenue per day, in a plain SQL table."""

    name = "daily_sales"
    categories = ("Order",)
    tables = {
        "daily_sales": """
            CREATE TABLE {daily_sales} (
                day           TEXT    PRIMARY KEY,
                orders_paid   INTEGER NOT NULL,
                revenue_cents BIGINT  NOT NULL
            )
        """
    }

    @on
    async def paid(self, event: OrderPaid, context: Context) -> None:
        await self._add(context, orders=1, cents=int(event.amount * 100))

    @on
    async def cancelled(self, event: OrderCancelled, context: Context) -> None:
        if event.refund_due:
            await self._add(context, orders=0, cents=-int(event.refund_due * 100))

    async def _add(self, context: Context, *, orders: int, cents: int) -> None:
        await context.execute(
            "INSERT INTO {daily_sales} (day, orders_paid, revenue_cents)"
            " VALUES (:day, :orders, :cents)"
            " ON CONFLICT (day) DO UPDATE SET"
            " orders_paid = {daily_sales}.orders_paid + excluded.orders_paid,"
            " revenue_cents = {daily_sales}.revenue_cents + excluded.revenue_cents",
            day=context.recorded_at.date().isoformat(),
            orders=orders,
            cents=cents,
        )
