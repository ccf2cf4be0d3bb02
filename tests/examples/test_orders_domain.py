"""The Order rules, checked with the given/when/then kit (no store)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from eventledger.examples.orders.domain import (
    EmptyOrder,
    InvalidTransition,
    Order,
    OrderCancelled,
    OrderCreated,
    OrderDelivered,
    OrderError,
    OrderLine,
    OrderPaid,
    OrderShipped,
    OrderStatus,
    WrongAmount,
)
from eventledger.testing import given

LINES = [
    OrderLine(sku="BOOK-1", quantity=2, unit_price=Decimal("12.50")),
    OrderLine(sku="PEN-3", quantity=1, unit_price=Decimal("3.00")),
]
CREATED = OrderCreated(customer_id="alice", lines=LINES)
PAID = OrderPaid(amount=Decimal("28.00"), payment_id="pay-1")
SHIPPED = OrderShipped(carrier="DHL", tracking_number="T-1")


def test_an_order_is_created_with_its_lines() -> None:
    order = given(Order).when(lambda _: Order.create("o-1", "alice", LINES)).then(CREATED)
    assert order.status is OrderStatus.CREATED
    assert order.total == Decimal("28.00")
    assert order.stream_id == "Order-o-1"


def test_an_order_without_lines_is_refused() -> None:
    given(Order).when(lambda _: Order.create("o-1", "alice", [])).raises(
        EmptyOrder, match="at least one line"
    )


def test_an_order_without_a_customer_is_refused() -> None:
    given(Order).when(lambda _: Order.create("o-1", "", LINES)).raises(OrderError, "customer")


def test_lines_validate_their_fields() -> None:
    with pytest.raises(ValueError, match="quantity"):
        OrderLine(sku="X", quantity=0, unit_price=Decimal(1))
    with pytest.raises(ValueError, match="unit_price"):
        OrderLine(sku="X", quantity=1, unit_price=Decimal(-1))


def test_a_created_order_is_paid_with_its_total() -> None:
    order = given(Order, CREATED).when(lambda o: o.pay(Decimal("28.00"), "pay-1")).then(PAID)
    assert order.status is OrderStatus.PAID


def test_paying_the_wrong_amount_is_refused() -> None:
    given(Order, CREATED).when(lambda o: o.pay(Decimal("20"), "pay-1")).raises(
        WrongAmount, match="costs 28.00, not 20"
    )


def test_an_order_is_paid_only_once() -> None:
    given(Order, CREATED, PAID).when(lambda o: o.pay(Decimal("28.00"), "pay-2")).raises(
        InvalidTransition, match="cannot be paid: it is paid, not created"
    )


def test_a_paid_order_ships_and_is_delivered() -> None:
    given(Order, CREATED, PAID).when(lambda o: o.ship("DHL", "T-1")).then(SHIPPED)
    order = given(Order, CREATED, PAID, SHIPPED).when(lambda o: o.deliver()).then(OrderDelivered())
    assert order.status is OrderStatus.DELIVERED
    assert order.version == 4


def test_an_unpaid_order_does_not_ship() -> None:
    given(Order, CREATED).when(lambda o: o.ship("DHL", "T-1")).raises(
        InvalidTransition, match="cannot ship: it is created, not paid"
    )


def test_only_a_shipped_order_is_delivered() -> None:
    given(Order, CREATED, PAID).when(lambda o: o.deliver()).raises(InvalidTransition)


def test_cancelling_a_paid_order_records_the_refund_due() -> None:
    given(Order, CREATED, PAID).when(lambda o: o.cancel("changed my mind")).then(
        OrderCancelled(reason="changed my mind", refund_due=Decimal("28.00"))
    )


def test_a_shipped_order_cannot_be_cancelled() -> None:
    given(Order, CREATED, PAID, SHIPPED).when(lambda o: o.cancel("late")).raises(
        InvalidTransition, match="cannot be cancelled: it is shipped"
    )


def test_a_cancelled_order_accepts_nothing_more() -> None:
    cancelled = OrderCancelled(reason="x")
    given(Order, CREATED, cancelled).when(lambda o: o.pay(Decimal("28.00"), "p")).raises(
        InvalidTransition
    )
    given(Order, CREATED, cancelled).when(lambda o: o.cancel("again")).raises(InvalidTransition)
