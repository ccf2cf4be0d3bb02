"""The Orders example's personal data: an order's customer details are sealed, shown by
the read models, and gone from them (and from a rebuild) once the customer is forgotten;
orders without details work as before; the command log keeps none of them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pydantic
import pytest
import pytest_asyncio

from eventledger import Repository, Service
from eventledger.examples.orders.app import application
from eventledger.examples.orders.commands import PlaceOrder
from eventledger.examples.orders.domain import Customer, Order, OrderLine, ShippingAddress
from eventledger.personal import Redacted, forget

pytestmark = pytest.mark.postgres

ANN = Customer(
    name="Ann Example",
    email="ann@example.com",
    shipping_address=ShippingAddress(
        street="1 Main Street", city="Oslo", postal_code="0150", country="NO"
    ),
)
PERSONAL = ("Ann Example", "ann@example.com", "1 Main Street", "Oslo")


def place(order_id: str, customer_id: str = "ann", customer: Customer | None = ANN) -> PlaceOrder:
    line = OrderLine(sku="BOOK", quantity=1, unit_price=Decimal("12.50"))
    return PlaceOrder(order_id=order_id, customer_id=customer_id, lines=[line], customer=customer)


@pytest.fixture(params=["sqlite", "postgres"])  # daily_sales needs SQL tables
def orders_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/orders.db"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest_asyncio.fixture
async def service(orders_url: str) -> AsyncIterator[Service]:
    async with application.run(orders_url) as running:
        yield running


async def caught_up(service: Service) -> None:
    head = await service.store.head_position()
    for name in ("order_list", "customer_orders"):
        await service.runner.wait_until(name, head, 20)


async def documents(service: Service) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name in ("order_list", "customer_orders"):
        for doc in await service.runner.documents(name).find(limit=100):
            found[
                f"{name}/{doc.get('kind', 'order')}/{doc.get('order_id', doc['customer_id'])}"
            ] = doc
    return found


async def test_the_read_models_show_the_customer_until_forgotten_then_nothing_of_them(
    service: Service,
) -> None:
    for command in (place("o-1"), place("o-2"), place("o-3", "bob", None)):
        await service.bus.send(command, actor="test")
    await caught_up(service)
    before = await documents(service)
    assert before["order_list/order/o-1"]["customer_name"] == "Ann Example"
    assert before["order_list/order/o-2"]["customer_email"] == "ann@example.com"
    assert before["customer_orders/customer/ann"]["name"] == "Ann Example"
    assert "customer_name" not in before["order_list/order/o-3"]  # placed without details
    assert "name" not in before["customer_orders/customer/bob"]
    order = await Repository(service.store, Order).load("o-1")
    assert order.customer_id == "ann"

    await forget(service.store, "ann")
    await caught_up(service)
    after = await documents(service)
    for value in PERSONAL:
        assert value not in str(after), value
    assert after["order_list/order/o-1"]["customer_forgotten"] is True
    assert after["customer_orders/customer/ann"]["forgotten"] is True
    assert after["customer_orders/customer/ann"]["orders"] == 2
    assert "customer_forgotten" not in after["order_list/order/o-3"]  # bob's

    # A rebuild from the log holds none of them either: the events read redacted.
    await service.runner.rebuild("order_list")
    await caught_up(service)
    rebuilt = await documents(service)
    assert rebuilt["order_list/order/o-1"]["customer_forgotten"] is True
    for value in PERSONAL:
        assert value not in str(rebuilt), value


async def test_the_event_reads_each_detail_as_redacted_and_the_command_log_keeps_none(
    service: Service,
) -> None:
    result = await service.bus.send(place("o-1"), actor="test")
    await forget(service.store, "ann")
    # The first event only: the fulfilment process may already have cancelled the order
    # (no stock), appending to the same stream.
    (created,) = [e async for e in service.store.read_stream("Order-o-1", limit=1)]
    assert created.type == "OrderCreated"
    event = application.registry.decode(created)
    customer = getattr(event, "customer", None)
    assert customer is not None
    assert (customer.name, customer.email, customer.shipping_address) == (Redacted("ann"),) * 3
    assert customer.forgotten
    kept = await service.store.command_log().by_id(uuid.UUID(result.command_id))
    assert kept is not None
    assert kept.payload["customer"]["email"] == {"$redacted": "ann"}
    for value in PERSONAL:
        assert value not in str(kept), value


def test_a_customer_detail_is_a_value_not_a_redaction_marker() -> None:
    with pytest.raises(pydantic.ValidationError, match="name is a value, not a redaction marker"):
        PlaceOrder.model_validate(
            {
                "order_id": "o-1",
                "customer_id": "ann",
                "lines": [{"sku": "BOOK", "quantity": 1, "unit_price": "1"}],
                "customer": {"name": {"$redacted": "ann"}, "email": "a@b"},
            }
        )
    assert place("o-1", customer=None).customer is None
