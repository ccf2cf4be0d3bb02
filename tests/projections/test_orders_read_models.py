"""The Orders read models, kept by a runner on every store that can hold them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from eventledger import EventStore, InvalidInput, Repository
from eventledger.examples.orders.domain import Order, OrderLine
from eventledger.examples.orders.read_models import (
    CustomerOrders,
    DailySales,
    OrderList,
)
from eventledger.projections import ProjectionRunner, Range

BOOK = OrderLine(sku="BOOK", quantity=2, unit_price=Decimal("12.50"))
PEN = OrderLine(sku="PEN", quantity=1, unit_price=Decimal("3.00"))


async def place_orders(store: EventStore) -> int:
    """Six orders of three customers in every state; returns the last position."""
    orders = Repository(store, Order)
    plan = [
        ("o-1", "alice", [BOOK], "created"),
        ("o-2", "alice", [BOOK, PEN], "paid"),
        ("o-3", "bob", [PEN], "shipped"),
        ("o-4", "bob", [BOOK], "delivered"),
        ("o-5", "carol", [PEN], "cancelled"),
        ("o-6", "carol", [BOOK], "refunded"),
    ]
    last = 0
    for order_id, customer, lines, state in plan:
        order = Order.create(order_id, customer, lines)
        if state in ("paid", "shipped", "delivered", "refunded"):
            order.pay(order.total, f"pay-{order_id}")
        if state in ("shipped", "delivered"):
            order.ship("DHL", f"T-{order_id}")
        if state == "delivered":
            order.deliver()
        if state in ("cancelled", "refunded"):
            order.cancel("changed mind")
        result = await orders.save(order)
        assert result is not None
        last = result.position
    return last


def projections_for(store: EventStore) -> list[OrderList | CustomerOrders | DailySales]:
    chosen: list[OrderList | CustomerOrders | DailySales] = [OrderList(), CustomerOrders()]
    if "sql_tables" in store.capabilities:
        chosen.append(DailySales())
    return chosen


async def test_order_list_answers_queries_by_status_customer_and_total(
    any_store: EventStore,
) -> None:
    async with ProjectionRunner(any_store, projections_for(any_store), poll_interval=0.1) as runner:
        position = await place_orders(any_store)
        for name in ("order_list", "customer_orders"):
            await runner.wait_until(name, position, timeout=10)
        orders = runner.documents("order_list")
        assert await orders.count() == 6
        o2 = await orders.get("o-2")
        assert o2 is not None
        assert (o2["status"], o2["total"], o2["paid"], o2["customer_id"]) == (
            "paid",
            "28.00",
            "28.00",
            "alice",
        )
        by_status = {s: await orders.count({"status": s}) for s in ("created", "paid", "cancelled")}
        assert by_status == {"created": 1, "paid": 1, "cancelled": 2}
        shipped_or_delivered = await orders.find(
            {"status": ["shipped", "delivered"]}, order_by="status"
        )
        assert [d["order_id"] for d in shipped_or_delivered] == ["o-4", "o-3"]
        cheap = await orders.find({"total": Range(lt=Decimal(10))}, order_by="-total")
        assert [d["order_id"] for d in cheap] == ["o-3", "o-5"]
        big = await orders.find({"total": Range(gte=25)}, order_by=["-total", "created_at"])
        assert [d["order_id"] for d in big] == ["o-2", "o-1", "o-4", "o-6"]
        page_one = await orders.find(order_by="created_at", limit=4)
        page_two = await orders.find(order_by="created_at", limit=4, offset=4)
        assert [d["order_id"] for d in page_one + page_two] == [f"o-{n}" for n in range(1, 7)]
        alice = await orders.find({"customer_id": "alice", "status": "paid"})
        assert [d["order_id"] for d in alice] == ["o-2"]
        with pytest.raises(InvalidInput, match="not an indexed field"):
            await orders.find({"carrier": "DHL"})
        with pytest.raises(InvalidInput, match="compared with numbers"):
            await orders.find({"total": "cheap"})


async def test_customer_orders_counts_orders_and_what_was_paid(any_store: EventStore) -> None:
    async with ProjectionRunner(any_store, projections_for(any_store), poll_interval=0.1) as runner:
        position = await place_orders(any_store)
        await runner.wait_until("customer_orders", position, timeout=10)
        customers = runner.documents("customer_orders")
        found = await customers.find({"kind": "customer"}, order_by="-paid_total")
        summary = [(c["customer_id"], c["orders"], c["paid_total"]) for c in found]
        assert summary == [("alice", 2, "28.00"), ("bob", 2, "28.00"), ("carol", 2, "0.00")]
        assert (await customers.get("customer:bob") or {})["order_ids"] == ["o-3", "o-4"]


async def test_daily_sales_sums_revenue_net_of_refunds(any_store: EventStore) -> None:
    if "sql_tables" not in any_store.capabilities:
        with pytest.raises(InvalidInput, match="SQL projections need a SQLite or PostgreSQL"):
            ProjectionRunner(any_store, [DailySales()])
        return
    async with ProjectionRunner(any_store, [DailySales()], poll_interval=0.1) as runner:
        position = await place_orders(any_store)
        await runner.wait_until("daily_sales", position, timeout=10)
        rows = await runner.query(
            "daily_sales", "SELECT orders_paid, revenue_cents FROM {daily_sales}"
        )
        # Paid: o-2 28.00, o-3 3.00, o-4 25.00, o-6 25.00 (then refunded).
        assert [tuple(r) for r in rows] == [(4, 8100 - 2500)]
