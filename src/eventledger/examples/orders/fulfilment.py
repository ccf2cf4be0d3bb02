"""The fulfilment process: from a placed order to a delivered one, or back out.

When an order is placed, reserve its stock and wait for payment, at most
`payment_window`. Paid in time: ship it (which dispatches the reserved units).
Not paid in time, out of stock, or a step refused: release what was reserved
and cancel the order. Cancelled by the customer: release the stock. Delivered:
done.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import pydantic

from eventledger import Command
from eventledger.examples.orders.commands import (
    CancelOrder,
    ReleaseStock,
    ReserveStock,
    ShipOrder,
    StockLine,
)
from eventledger.examples.orders.domain import (
    OrderCancelled,
    OrderCreated,
    OrderDelivered,
    OrderPaid,
)
from eventledger.process import Process, ProcessManager, ends, on, on_timeout, starts


class FulfilmentState(pydantic.BaseModel):
    customer_id: str = ""
    skus: list[str] = pydantic.Field(default_factory=list)
    paid: bool = False
    shipped: bool = False


class OrderFulfilment(ProcessManager):
    name = "order_fulfilment"
    categories = ("Order", "OrderFulfilment")
    state_type = FulfilmentState
    payment_window: ClassVar[timedelta] = timedelta(minutes=30)
    carrier: ClassVar[str] = "eventledger-post"

    @starts
    def placed(self, event: OrderCreated, process: Process[FulfilmentState]) -> None:
        order_id = process.instance_id
        process.state.customer_id = event.customer_id
        process.state.skus = sorted({line.sku for line in event.lines})
        process.send(
            ReserveStock(
                order_id=order_id,
                lines=[StockLine(sku=line.sku, quantity=line.quantity) for line in event.lines],
            ),
            compensation=ReleaseStock(order_id=order_id, skus=process.state.skus),
        )
        process.schedule("payment", self.payment_window)

    @on
    def paid(self, event: OrderPaid, process: Process[FulfilmentState]) -> None:
        process.cancel_timeout("payment")
        process.state.paid = True
        # Deterministic: the same event always sends the same command.
        process.send(
            ShipOrder(
                order_id=process.instance_id,
                carrier=self.carrier,
                tracking_number=f"TRK-{process.instance_id}",
            )
        )

    @ends
    def delivered(self, event: OrderDelivered, process: Process[FulfilmentState]) -> None:
        process.state.shipped = True

    @ends
    def cancelled(self, event: OrderCancelled, process: Process[FulfilmentState]) -> None:
        process.compensate()  # give the reserved units back

    @on_timeout("payment")
    def payment_overdue(self, process: Process[FulfilmentState]) -> None:
        process.fail(
            f"not paid within {_duration(self.payment_window)}",
            then=[CancelOrder(order_id=process.instance_id, reason="payment overdue")],
        )

    def on_rejected(
        self, command: Command, error: Exception, process: Process[FulfilmentState]
    ) -> Any:
        then: list[Command] = []
        if not isinstance(command, CancelOrder):
            then.append(CancelOrder(order_id=process.instance_id, reason=str(error)[:200]))
        process.fail(f"{command.command_name} was refused: {error}", then=then)


def _duration(span: timedelta) -> str:
    """``30 minutes``, ``1 hour``, ``1.5 seconds``."""
    seconds = span.total_seconds()
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"
