"""Three read models over the same Order events.

- ``order_list``: one document per order, queried by status, customer, total and date;
- ``customer_orders``: one document per customer with the number and value of orders;
- ``daily_sales``: a SQL table of orders paid and revenue per day (refunds subtracted).

``order_list`` and ``customer_orders`` show the customer's name and email when the
order carries them; when the customer is forgotten (``SubjectForgotten``, in the
``Subject`` category) they drop them, so the read models keep nothing readable of them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from eventledger.examples.orders.domain import (
    OrderCancelled,
    OrderCreated,
    OrderCustomer,
    OrderDelivered,
    OrderPaid,
    OrderShipped,
)
from eventledger.personal import Redacted, SubjectForgotten
from eventledger.projections import Context, DocumentProjection, From, SqlProjection, on
from eventledger.records import RecordedEvent

PERSONAL_FIELDS = ("customer_name", "customer_email")
"""What the read models copy of a customer's personal data."""


def customer_fields(customer: OrderCustomer | None) -> dict[str, Any]:
    """The customer's name and email for a document (none of a forgotten customer)."""
    if customer is None:
        return {}
    shown: dict[str, Any] = {}
    for field, value in (("customer_name", customer.name), ("customer_email", customer.email)):
        if not isinstance(value, Redacted):
            shown[field] = value
    if customer.forgotten:
        shown["customer_forgotten"] = True
    return shown


def without_customer(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with nothing readable of its (forgotten) customer left."""
    kept = {k: v for k, v in doc.items() if k not in PERSONAL_FIELDS}
    kept["customer_forgotten"] = True
    return kept


def _forgotten_orders(event: SubjectForgotten) -> list[str]:
    """The orders whose values of the forgotten customer read as redacted now."""
    return sorted({s.partition("-")[2] for s in event.streams if s.startswith("Order-")})


class OrderList(DocumentProjection):
    """Every order with its status: what an order list page shows."""

    name = "order_list"
    categories = ("Order", "Subject")
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
                **customer_fields(event.customer),
            },
        )

    @on
    async def forgotten(self, event: SubjectForgotten, context: Context) -> None:
        assert context.docs is not None
        for order_id in _forgotten_orders(event):
            doc = await context.docs.get(order_id)
            if doc is not None and doc.get("customer_id") == event.subject:
                await context.docs.put(order_id, without_customer(doc))


class CustomerOrders(DocumentProjection):
    """Orders per customer: how many, in which states, and what they paid."""

    name = "customer_orders"
    categories = ("Order", "Subject")
    indexes = {"kind": "text", "orders": "number", "paid_total": "number"}

    def document_id(self, record: RecordedEvent) -> str | None:
        # Prefetch the order's pointer document; the customer's follows from it.
        category, _, entity = record.stream_id.partition("-")
        return f"customer:{entity}" if category == "Subject" else f"order:{entity}"

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
        if event.customer is not None:  # the latest order's details win
            shown = customer_fields(event.customer)
            customer.pop("name", None)
            customer.pop("email", None)
            if "customer_name" in shown:
                customer["name"] = shown["customer_name"]
            if "customer_email" in shown:
                customer["email"] = shown["customer_email"]
            if shown.get("customer_forgotten"):
                customer["forgotten"] = True
        await context.docs.put(f"customer:{event.customer_id}", customer)

    @on
    async def forgotten(self, event: SubjectForgotten, context: Context) -> None:
        assert context.docs is not None
        key = f"customer:{event.subject}"
        customer = await context.docs.get(key)
        if customer is not None:
            kept = {k: v for k, v in customer.items() if k not in ("name", "email")}
            await context.docs.put(key, {**kept, "forgotten": True})

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
