"""Stock: one aggregate per SKU, with units on hand and reservations per order.

The rules:

- units are added in positive quantities;
- an order reserves units only while enough are available (on hand and not
  reserved for another order); reserving again for the same order changes nothing;
- a reservation is released (the order did not go ahead) or dispatched (the
  order shipped: the units leave the warehouse). Releasing what is not reserved
  changes nothing; dispatching it is refused.
"""

from __future__ import annotations

import pydantic

from eventledger import Aggregate, DomainError, Event, applies


class StockAdded(Event):
    quantity: int


class StockReserved(Event):
    order_id: str
    quantity: int


class StockReleased(Event):
    order_id: str
    quantity: int


class StockDispatched(Event):
    order_id: str
    quantity: int


class StockError(DomainError):
    """A stock rule was broken."""


class OutOfStock(StockError):
    pass


class NotReserved(StockError):
    pass


class StockItem(Aggregate, category="Stock"):
    on_hand: int = 0
    reservations: dict[str, int] = pydantic.Field(default_factory=dict)

    @property
    def available(self) -> int:
        return self.on_hand - sum(self.reservations.values())

    def add(self, quantity: int) -> None:
        if quantity <= 0:
            raise StockError(f"add a positive quantity of {self.id}, not {quantity}")
        self.record(StockAdded(quantity=quantity))

    def reserve(self, order_id: str, quantity: int) -> None:
        if order_id in self.reservations:
            return  # reserved already: a repeat changes nothing
        if quantity <= 0:
            raise StockError(f"reserve a positive quantity of {self.id}, not {quantity}")
        if quantity > self.available:
            raise OutOfStock(
                f"{self.id}: {quantity} wanted for order {order_id}, {self.available} available"
            )
        self.record(StockReserved(order_id=order_id, quantity=quantity))

    def release(self, order_id: str) -> None:
        quantity = self.reservations.get(order_id)
        if quantity is not None:
            self.record(StockReleased(order_id=order_id, quantity=quantity))

    def dispatch(self, order_id: str) -> None:
        quantity = self.reservations.get(order_id)
        if quantity is None:
            raise NotReserved(f"{self.id}: nothing is reserved for order {order_id}")
        self.record(StockDispatched(order_id=order_id, quantity=quantity))

    @applies
    def _added(self, event: StockAdded) -> None:
        self.on_hand += event.quantity

    @applies
    def _reserved(self, event: StockReserved) -> None:
        self.reservations = {**self.reservations, event.order_id: event.quantity}

    @applies
    def _released(self, event: StockReleased) -> None:
        self.reservations = {k: v for k, v in self.reservations.items() if k != event.order_id}

    @applies
    def _dispatched(self, event: StockDispatched) -> None:
        self.reservations = {k: v for k, v in self.reservations.items() if k != event.order_id}
        self.on_hand -= event.quantity
