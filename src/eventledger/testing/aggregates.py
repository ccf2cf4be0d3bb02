"""Given past events, when a domain method runs, then these events, or this error.

>>> from eventledger.aggregate import Aggregate, DomainError, applies
>>> from eventledger.events import Event, EventRegistry
>>> kit = EventRegistry()
>>> class Switched(Event, registry=kit):
...     on: bool
>>> class AlreadyOn(DomainError):
...     pass
>>> class Lamp(Aggregate):
...     on: bool = False
...     def switch_on(self) -> None:
...         if self.on:
...             raise AlreadyOn("the lamp is on already")
...         self.record(Switched(on=True))
...     @applies(Switched)
...     def _switched(self, event: Switched) -> None:
...         self.on = event.on
>>> lamp = given(Lamp).when(lambda lamp: lamp.switch_on()).then(Switched(on=True))
>>> lamp.on
True
>>> given(Lamp, Switched(on=True)).when(lambda lamp: lamp.switch_on()).raises(AlreadyOn)
AlreadyOn('the lamp is on already')

No store is involved: this checks the domain alone, fast. A creation is a
`when` that returns the new aggregate: ``given(Order).when(lambda _:
Order.create(...))``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from eventledger.aggregate import Aggregate
from eventledger.events import Event

__all__ = ["Outcome", "Scenario", "given"]

A = TypeVar("A", bound=Aggregate)
E = TypeVar("E", bound=BaseException)


def given(aggregate_type: type[A], *events: Event, id: str = "test-1") -> Scenario[A]:
    """An aggregate of `aggregate_type` that has already recorded `events`."""
    return Scenario(aggregate_type, events, id)


class Scenario(Generic[A]):
    def __init__(
        self, aggregate_type: type[A], events: tuple[Event, ...], aggregate_id: str
    ) -> None:
        self.aggregate = aggregate_type.from_events(aggregate_id, events)

    def when(self, action: Callable[[A], Any]) -> Outcome[A]:
        """Run `action` on the aggregate; whatever it records or raises is the outcome."""
        subject = self.aggregate
        try:
            returned = action(subject)
        except Exception as error:  # the outcome under test, checked by raises()
            return Outcome(subject, error)
        if isinstance(returned, Aggregate):
            subject = returned  # type: ignore[assignment]
        return Outcome(subject, None)


class Outcome(Generic[A]):
    def __init__(self, aggregate: A, error: Exception | None) -> None:
        self.aggregate = aggregate
        self.error = error
        self.recorded = list(aggregate.pending_events)

    def then(self, *expected: Event) -> A:
        """Assert that exactly these events were recorded, in this order; return the
        aggregate for further checks of its state."""
        if self.error is not None:
            raise AssertionError(
                f"expected events {_show(expected)}, but the action raised"
                f" {type(self.error).__name__}: {self.error}"
            ) from self.error
        if list(expected) != self.recorded:
            raise AssertionError(
                f"expected events {_show(expected)}\n     but recorded {_show(self.recorded)}"
            )
        return self.aggregate

    def then_nothing(self) -> A:
        """Assert that the action recorded nothing and raised nothing."""
        return self.then()

    def raises(self, error_type: type[E], match: str | None = None) -> E:
        """Assert that the action raised `error_type` (its message matching the regular
        expression `match`) and recorded nothing; return the error."""
        if self.error is None:
            raise AssertionError(
                f"expected {error_type.__name__}, but nothing was raised; recorded"
                f" {_show(self.recorded)}"
            )
        if not isinstance(self.error, error_type):
            raise AssertionError(
                f"expected {error_type.__name__}, but {type(self.error).__name__} was raised:"
                f" {self.error}"
            ) from self.error
        if match is not None and not re.search(match, str(self.error)):
            raise AssertionError(
                f"{error_type.__name__} message {str(self.error)!r} does not match {match!r}"
            )
        if self.recorded:
            raise AssertionError(
                f"{error_type.__name__} was raised, but only after recording"
                f" {_show(self.recorded)}: check the rules before recording"
            )
        return self.error


def _show(events: Any) -> str:
    return "[" + ", ".join(repr(e) for e in events) + "]" if events else "nothing"
