"""Orders: created with a customer and lines, paid, shipped, delivered, or cancelled.

The customer's name, email and shipping address are personal data of the customer
(:class:`Customer`): sealed with the customer's own key, and read as
:class:`~eventledger.personal.Redacted` once the customer is forgotten.

The rules between the states:

- an order needs at least one line; quantities are positive, prices not negative;
- it is paid once, with exactly its total, and only while it is created;
- it ships only when paid, and is delivered only when shipped;
- it can be cancelled until it ships (a paid order's cancellation records the refund due).
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Annotated

import pydantic

from eventledger import Aggregate, DomainError, Event, applies
from eventledger.personal import Personal, Redacted

Money = Annotated[
    Decimal,
    pydantic.Field(ge=0, max_digits=12, decimal_places=2),
    # What the API says it takes: a decimal string with at most two places (numbers
    # are accepted too).
    pydantic.WithJsonSchema(
        {"type": "string", "pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$", "examples": ["12.50"]},
        mode="validation",
    ),
]
Sku = Annotated[
    str,
    pydantic.StringConstraints(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
    ),
]
"""A stock keeping unit: letters, digits and ``_.:-`` (it names a stock stream)."""


class OrderLine(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    sku: Sku
    quantity: int = pydantic.Field(gt=0, le=10_000)
    unit_price: Money

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


Text = Annotated[str, pydantic.StringConstraints(min_length=1, max_length=200)]
# Control characters are named: JSON Schema's \s and Python's differ on some of them.
_EMAIL_PART = r"[^@\s\x00-\x1f\x7f-\x9f]+"
Email = Annotated[
    str,
    pydantic.StringConstraints(
        min_length=3, max_length=254, pattern=rf"^{_EMAIL_PART}@{_EMAIL_PART}$"
    ),
]


class ShippingAddress(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    street: Text
    city: Text
    postal_code: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=20)]
    country: Text


class Customer(pydantic.BaseModel):
    """Who an order is for, as ``PlaceOrder`` takes it. Each field is personal data of
    the order's ``customer_id`` (so the command log does not keep it either)."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    name: Annotated[Text, Personal(subject="customer_id")]
    email: Annotated[Email, Personal(subject="customer_id")]
    shipping_address: Annotated[ShippingAddress | None, Personal(subject="customer_id")] = None

    @pydantic.model_validator(mode="after")
    def _values_not_markers(self) -> Customer:
        for name in ("name", "email", "shipping_address"):
            if isinstance(getattr(self, name), Redacted):
                raise ValueError(f"{name} is a value, not a redaction marker")
        return self


class OrderCustomer(pydantic.BaseModel):
    """The customer as ``OrderCreated`` records them: each field reads as
    :class:`Redacted` once the customer is forgotten."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str | Redacted, Personal(subject="customer_id")]
    email: Annotated[str | Redacted, Personal(subject="customer_id")]
    shipping_address: Annotated[
        ShippingAddress | Redacted | None, Personal(subject="customer_id")
    ] = None

    @property
    def forgotten(self) -> bool:
        return isinstance(self.name, Redacted) or isinstance(self.email, Redacted)


# --- events ----------------------------------------------------------------------------


class OrderCreated(Event):
    customer_id: str
    lines: list[OrderLine]
    customer: OrderCustomer | None = None


class OrderPaid(Event):
    amount: Money
    payment_id: str


class OrderShipped(Event):
    carrier: str
    tracking_number: str


class OrderDelivered(Event):
    pass


class OrderCancelled(Event):
    reason: str
    refund_due: Money = Decimal(0)


# --- rules -----------------------------------------------------------------------------


class OrderError(DomainError):
    """An order rule was broken."""


class EmptyOrder(OrderError):
    pass


class WrongAmount(OrderError):
    pass


class InvalidTransition(OrderError):
    """The order is not in a state that allows this."""


class OrderStatus(enum.StrEnum):
    NEW = "new"
    CREATED = "created"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


# --- the aggregate ---------------------------------------------------------------------


class Order(Aggregate, category="Order"):
    status: OrderStatus = OrderStatus.NEW
    customer_id: str = ""
    lines: list[OrderLine] = pydantic.Field(default_factory=list)
    paid: Decimal = Decimal(0)
    carrier: str | None = None
    tracking_number: str | None = None
    cancel_reason: str | None = None

    @property
    def total(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal(0))

    @classmethod
    def create(
        cls,
        order_id: str,
        customer_id: str,
        lines: list[OrderLine],
        customer: Customer | None = None,
    ) -> Order:
        if not lines:
            raise EmptyOrder(f"order {order_id} needs at least one line")
        if not customer_id:
            raise OrderError(f"order {order_id} needs a customer")
        order = cls(id=order_id)
        details = None if customer is None else OrderCustomer(**dict(customer))
        order.record(OrderCreated(customer_id=customer_id, lines=lines, customer=details))
        return order

    def pay(self, amount: Decimal, payment_id: str) -> None:
        self._require(OrderStatus.CREATED, "be paid")
        if amount != self.total:
            raise WrongAmount(f"order {self.id} costs {self.total}, not {amount}")
        self.record(OrderPaid(amount=amount, payment_id=payment_id))

    def ship(self, carrier: str, tracking_number: str) -> None:
        self._require(OrderStatus.PAID, "ship")
        self.record(OrderShipped(carrier=carrier, tracking_number=tracking_number))

    def deliver(self) -> None:
        self._require(OrderStatus.SHIPPED, "be delivered")
        self.record(OrderDelivered())

    def cancel(self, reason: str) -> None:
        if self.status not in (OrderStatus.CREATED, OrderStatus.PAID):
            raise InvalidTransition(
                f"order {self.id} cannot be cancelled: it is {self.status.value}"
            )
        self.record(OrderCancelled(reason=reason, refund_due=self.paid))

    def _require(self, status: OrderStatus, action: str) -> None:
        if self.status is not status:
            raise InvalidTransition(
                f"order {self.id} cannot {action}: it is {self.status.value}, not {status.value}"
            )

    # --- how each event changes the state -------------------------------------------------

    @applies
    def _created(self, event: OrderCreated) -> None:
        self.status = OrderStatus.CREATED
        self.customer_id = event.customer_id
        self.lines = list(event.lines)

    @applies
    def _paid(self, event: OrderPaid) -> None:
        self.status = OrderStatus.PAID
        self.paid = event.amount

    @applies
    def _shipped(self, event: OrderShipped) -> None:
        self.status = OrderStatus.SHIPPED
        self.carrier = event.carrier
        self.tracking_number = event.tracking_number

    @applies
    def _delivered(self, event: OrderDelivered) -> None:
        self.status = OrderStatus.DELIVERED

    @applies
    def _cancelled(self, event: OrderCancelled) -> None:
        self.status = OrderStatus.CANCELLED
        self.cancel_reason = event.reason
