"""The Orders lifecycle with its fulfilment process, end to end on every store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from eventledger import (
    CommandBus,
    EventStore,
    Repository,
    causal_chain,
    open_store,
)
from eventledger.examples.orders.commands import (
    AddStock,
    CancelOrder,
    DeliverOrder,
    PayOrder,
    PlaceOrder,
    ReleaseStock,
    ReserveStock,
    StockLine,
    handlers,
)
from eventledger.examples.orders.domain import (
    Order,
    OrderCreated,
    OrderLine,
    OrderPaid,
    OrderStatus,
)
from eventledger.examples.orders.fulfilment import OrderFulfilment
from eventledger.examples.orders.stock import StockItem
from eventledger.process import Process, ProcessManager, on, starts
from eventledger.projections import OnFailure, ProjectionRunner, RetryPolicy, RunScope

BOOKS = [OrderLine(sku="BOOK", quantity=2, unit_price=Decimal("12.50"))]
FAST = RetryPolicy(max_attempts=3, initial_delay=0.001, max_delay=0.01)


class QuickFulfilment(OrderFulfilment):
    """The same process with a payment window short enough for a test."""

    name = "order_fulfilment"
    category = "OrderFulfilment"
    payment_window: ClassVar[timedelta] = timedelta(milliseconds=300)


class Shop:
    def __init__(self, store: EventStore, runner: ProjectionRunner, bus: CommandBus) -> None:
        self.store = store
        self.runner = runner
        self.bus = bus
        self.manager = runner.get("order_fulfilment")
        assert isinstance(self.manager, ProcessManager)

    async def send(self, command: Any, **options: Any) -> int:
        result = await self.bus.send(command, **options)
        await self.settle()
        return result.position

    async def settle(self) -> None:
        """Wait until the process has handled everything in the log."""
        await self.runner.wait_until("order_fulfilment", await self.store.head_position(), 10)

    async def order(self, order_id: str) -> Order:
        return await Repository(self.store, Order).load(order_id)

    async def stock(self, sku: str) -> StockItem:
        return await Repository(self.store, StockItem).load(sku)

    async def instance(self, order_id: str) -> Any:
        return await self.manager.instance(self.store, order_id)  # type: ignore[attr-defined]


@pytest_asyncio.fixture
async def shop(any_store_url: str) -> AsyncIterator[Shop]:
    store = await open_store(any_store_url)
    bus = CommandBus(store, handlers)
    runner = ProjectionRunner(store, [QuickFulfilment()], commands=bus, poll_interval=0.05)
    async with runner:
        shop = Shop(store, runner, bus)
        await shop.send(AddStock(sku="BOOK", quantity=10))
        yield shop
    await store.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.02)


async def test_an_order_runs_from_placed_to_delivered(shop: Shop) -> None:
    await shop.send(PlaceOrder(order_id="o-1", customer_id="alice", lines=BOOKS))
    stock = await shop.stock("BOOK")
    assert (stock.on_hand, stock.available, stock.reservations) == (10, 8, {"o-1": 2})
    instance = await shop.instance("o-1")
    assert instance.status == "active"
    assert list(instance.deadlines) == ["payment"]
    assert [c["command"] for c in instance.compensations] == ["ReleaseStock"]

    await shop.send(PayOrder(order_id="o-1", amount=Decimal("25.00"), payment_id="pay-1"))
    order = await shop.order("o-1")
    assert order.status is OrderStatus.SHIPPED  # the process shipped it on payment
    assert (order.carrier, order.tracking_number) == ("eventledger-post", "TRK-o-1")
    stock = await shop.stock("BOOK")
    assert (stock.on_hand, stock.available, stock.reservations) == (8, 8, {})
    assert (await shop.instance("o-1")).deadlines == {}

    await shop.send(DeliverOrder(order_id="o-1"))
    assert (await shop.order("o-1")).status is OrderStatus.DELIVERED
    instance = await shop.instance("o-1")
    assert instance.status == "completed"
    assert instance.state == {
        "customer_id": "alice",
        "skus": ["BOOK"],
        "paid": True,
        "shipped": True,
    }
    await asyncio.sleep(0.5)  # past the payment window: the cancelled deadline stays quiet
    await shop.settle()
    assert (await shop.order("o-1")).status is OrderStatus.DELIVERED


async def test_an_unpaid_order_is_cancelled_at_its_deadline_and_its_stock_released(
    shop: Shop,
) -> None:
    await shop.send(PlaceOrder(order_id="o-2", customer_id="bob", lines=BOOKS))
    assert (await shop.stock("BOOK")).available == 8

    async def cancelled() -> bool:
        await shop.settle()
        return (await shop.order("o-2")).status is OrderStatus.CANCELLED

    await eventually(cancelled)
    order = await shop.order("o-2")
    assert order.cancel_reason == "payment overdue"
    await shop.settle()
    assert (await shop.stock("BOOK")).available == 10
    instance = await shop.instance("o-2")
    assert (instance.status, instance.reason) == ("failed", "not paid within 0.3 seconds")
    deadline = [e async for e in shop.store.read_stream("OrderFulfilment-o-2")]
    assert [e.type for e in deadline] == ["eventledger.DeadlineReached"]
    assert deadline[0].data["timeout"] == "payment"


async def test_an_order_out_of_stock_is_cancelled_and_nothing_is_reserved(shop: Shop) -> None:
    lines = [
        OrderLine(sku="BOOK", quantity=1, unit_price=Decimal("12.50")),
        OrderLine(sku="LAMP", quantity=1, unit_price=Decimal("40.00")),
    ]
    await shop.send(PlaceOrder(order_id="o-3", customer_id="carol", lines=lines))
    await shop.settle()  # the cancellation the process sent
    order = await shop.order("o-3")
    assert order.status is OrderStatus.CANCELLED
    assert order.cancel_reason is not None
    assert "LAMP: 1 wanted for order o-3, 0 available" in order.cancel_reason
    assert (await shop.stock("BOOK")).available == 10  # the reservation was all or nothing
    instance = await shop.instance("o-3")
    assert instance.status == "failed"
    assert instance.reason.startswith("ReserveStock was refused")


async def test_a_refused_later_step_sends_the_armed_compensations_in_reverse(
    shop: Shop,
) -> None:
    await shop.send(PlaceOrder(order_id="o-8", customer_id="hal", lines=BOOKS))
    # Someone releases the reservation behind the process's back: shipping will fail.
    await shop.send(ReleaseStock(order_id="o-8", skus=["BOOK"]))
    await shop.send(PayOrder(order_id="o-8", amount=Decimal("25.00"), payment_id="pay-8"))
    await shop.settle()  # the cancellation the process sent, and what follows it
    order = await shop.order("o-8")
    assert order.status is OrderStatus.CANCELLED
    assert order.cancel_reason is not None
    assert "nothing is reserved for order o-8" in order.cancel_reason
    instance = await shop.instance("o-8")
    assert instance.status == "failed"
    assert instance.reason.startswith("ShipOrder was refused")
    assert instance.compensations == []
    # What the payment caused: the refused shipment sent nothing; the compensation and
    # the cancellation were sent, in that order.
    paid = [e async for e in shop.store.read_stream("Order-o-8")][1]
    assert paid.type == "OrderPaid"
    chain = await causal_chain(shop.store, paid.id)
    sent = [link.name for link in chain.effects if link.kind == "command"]
    assert sent == ["ReleaseStock", "CancelOrder"]
    assert (await shop.stock("BOOK")).available == 10


async def test_a_customer_s_cancellation_gives_the_stock_back(shop: Shop) -> None:
    await shop.send(PlaceOrder(order_id="o-4", customer_id="dan", lines=BOOKS))
    await shop.send(CancelOrder(order_id="o-4", reason="changed my mind"))
    await shop.settle()
    assert (await shop.stock("BOOK")).available == 10
    instance = await shop.instance("o-4")
    assert (instance.status, instance.compensations, instance.deadlines) == ("completed", [], {})


async def test_the_causal_chain_runs_through_the_process(shop: Shop) -> None:
    await shop.send(PlaceOrder(order_id="o-5", customer_id="erin", lines=BOOKS), actor="user:erin")
    await shop.send(
        PayOrder(order_id="o-5", amount=Decimal("25.00"), payment_id="pay-5"), actor="user:erin"
    )
    events = [e async for e in shop.store.read_stream("Order-o-5")]
    assert [e.type for e in events] == ["OrderCreated", "OrderPaid", "OrderShipped"]
    shipped = await causal_chain(shop.store, events[2].id)
    assert [(link.kind, link.name, link.actor) for link in shipped.causes] == [
        ("command", "PayOrder", "user:erin"),
        ("event", "OrderPaid", "user:erin"),
        ("command", "ShipOrder", "process:order_fulfilment"),
    ]
    created = await causal_chain(shop.store, events[0].id)
    assert [(link.kind, link.name) for link in created.effects] == [
        ("command", "ReserveStock"),
        ("event", "StockReserved"),
    ]
    assert events[2].metadata["actor"] == "process:order_fulfilment"


async def test_commands_are_sent_once_per_event_even_when_the_process_dies_before_saving(
    any_store_url: str,
) -> None:
    store = await open_store(any_store_url)
    bus = CommandBus(store, handlers)
    await bus.send(AddStock(sku="BOOK", quantity=10))
    await bus.send(PlaceOrder(order_id="o-6", customer_id="fay", lines=BOOKS))
    # A process that handles the event (and sends) but dies before its batch commits.
    doomed = QuickFulfilment()
    consumer = doomed.consumer(RunScope(store, store.read_side(), None, bus))
    records = [e async for e in store.read_all()]
    await consumer.batch([r for r in records if consumer.handles(r)]).prepare()
    assert (await Repository(store, StockItem).load("BOOK")).reservations == {"o-6": 2}
    # The next process handles the same events again: nothing is reserved twice.
    async with ProjectionRunner(store, [QuickFulfilment()], commands=bus) as runner:
        await runner.wait_until("order_fulfilment", records[-1].position, 10)
    stock_events = [e.type async for e in store.read_stream("Stock-BOOK")]
    assert stock_events == ["StockAdded", "StockReserved"]
    await store.close()


class Flaky(ProcessManager):
    """A process whose second step keeps failing (not a domain refusal: a fault)."""

    name = "flaky"
    categories = ("Order",)
    retry = RetryPolicy(max_attempts=3, initial_delay=0.001, on_failure=OnFailure.STOP)
    broken: ClassVar[bool] = True

    @starts
    def placed(self, event: OrderCreated, process: Process[Any]) -> None:
        line = StockLine(sku="BOOK", quantity=1)
        process.send(ReserveStock(order_id=process.instance_id, lines=[line]))

    @on
    def paid(self, event: OrderPaid, process: Process[Any]) -> None:
        if type(self).broken:
            raise ConnectionError("the warehouse is unreachable")
        process.send(DeliverOrder(order_id=process.instance_id))


async def test_a_step_that_keeps_failing_is_parked_and_retried_after_the_fix(
    any_store_url: str,
) -> None:
    store = await open_store(any_store_url)
    bus = CommandBus(store, handlers)
    await bus.send(AddStock(sku="BOOK", quantity=10))
    Flaky.broken = True
    async with ProjectionRunner(store, [Flaky()], commands=bus, poll_interval=0.05) as runner:
        await bus.send(PlaceOrder(order_id="o-7", customer_id="gus", lines=BOOKS))
        paid = await bus.send(PayOrder(order_id="o-7", amount=Decimal("25.00"), payment_id="p"))
        with pytest.raises(Exception, match="warehouse is unreachable"):
            await runner.wait_until("flaky", paid.position, 10)
        (status,) = await runner.status("flaky")
        assert status.state == "failed"
        (letter,) = await runner.dead_letters("flaky")
        assert (letter.event_type, letter.attempts) == ("OrderPaid", 3)
        assert "ConnectionError: the warehouse is unreachable" in letter.error
        Flaky.broken = False
        await runner.retry("flaky", letter.id)
        await runner.wait_until("flaky", paid.position, 10)
    assert [e.type async for e in store.read_stream("Stock-BOOK")] == [
        "StockAdded",
        "StockReserved",
    ]
    # The order was never shipped, so delivering it was refused: the process failed.
    instance = await Flaky().instance(store, "o-7")
    assert instance is not None
    assert instance.status == "failed"
    assert "DeliverOrder was refused" in (instance.reason or "")
    await store.close()


async def test_process_managers_need_a_command_bus_and_refuse_rebuilds(
    any_store_url: str,
) -> None:
    store = await open_store(any_store_url)
    with pytest.raises(ValueError, match="command bus"):
        ProjectionRunner(store, [QuickFulfilment()])
    bus = CommandBus(store, handlers)
    async with ProjectionRunner(store, [QuickFulfilment()], commands=bus) as runner:
        with pytest.raises(ValueError, match="would send its commands again"):
            await runner.rebuild("order_fulfilment")
        with pytest.raises(ValueError, match="would send its commands again"):
            await runner.reset("order_fulfilment")
    await store.close()
