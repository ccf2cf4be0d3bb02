"""Aggregates: state that changes only through the events it records.

An aggregate is a pydantic model whose fields are its state. Domain methods
check the rules and :meth:`~Aggregate.record` events; one handler per event
type, marked with :func:`applies`, changes the state::

    >>> from eventledger.events import EventRegistry
    >>> class Opened(Event, registry=EventRegistry()):
    ...     owner: str
    >>> class Account(Aggregate):
    ...     owner: str = ""
    ...     @classmethod
    ...     def open(cls, account_id: str, owner: str) -> "Account":
    ...         account = cls(id=account_id)
    ...         account.record(Opened(owner=owner))
    ...         return account
    ...     @applies(Opened)
    ...     def _opened(self, event: Opened) -> None:
    ...         self.owner = event.owner
    >>> account = Account.open("7", "alice")
    >>> account.owner, account.version, account.stream_id, len(account.pending_events)
    ('alice', 1, 'Account-7', 1)

Outside a handler the state cannot be assigned (:class:`AggregateStateError`).
A domain method that breaks a rule raises a :class:`DomainError` before it
records anything.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Self, TypeVar, overload

import orjson
import pydantic

from eventledger._annotations import annotated_types
from eventledger._validation import check_stream_id
from eventledger.errors import (
    AggregateNotFound,
    AggregateStateError,
    DomainError,
    InvalidInput,
)
from eventledger.events import Event

__all__ = [
    "Aggregate",
    "AggregateNotFound",
    "AggregateStateError",
    "DomainError",
    "applies",
]

F = TypeVar("F", bound=Callable[..., None])


@overload
def applies(function: F, /) -> F: ...
@overload
def applies(*event_classes: type[Event]) -> Callable[[F], F]: ...
def applies(*targets: Any) -> Any:
    """Mark a method as the handler of one or more event types.

    ``@applies(OrderPaid)`` names the types; bare ``@applies`` reads them from
    the annotation of the handler's event parameter (``event: A | B`` handles
    both).
    """
    if len(targets) == 1 and inspect.isfunction(targets[0]):
        function = targets[0]
        function.__applies_to__ = None  # type: ignore[attr-defined]  # from the annotation, later
        return function
    for target in targets:
        if not (isinstance(target, type) and issubclass(target, Event)):
            raise InvalidInput(f"@applies takes Event subclasses, not {target!r}")

    def mark(function: F) -> F:
        function.__applies_to__ = tuple(targets)  # type: ignore[attr-defined]
        return function

    return mark


class Aggregate(pydantic.BaseModel):
    """Base class of aggregates. Subclass it with the state as fields.

    Class options: ``class Order(Aggregate, category="Order")`` sets the stream
    name prefix (default: the class name); stream ids are ``f"{category}-{id}"``.
    Override :meth:`stream_id_for` for another scheme. Raise
    ``snapshot_version`` when handlers change meaning without the fields
    changing, so that older snapshots are ignored.
    """

    model_config = pydantic.ConfigDict(extra="forbid", validate_assignment=False)

    id: str

    category: ClassVar[str] = "Aggregate"
    snapshot_version: ClassVar[int] = 1
    __handlers__: ClassVar[dict[type[Event], str]] = {}
    __state_fields__: ClassVar[frozenset[str]] = frozenset()

    _version: int = pydantic.PrivateAttr(default=0)
    _pending: list[Event] = pydantic.PrivateAttr(default_factory=list)
    _applying: bool = pydantic.PrivateAttr(default=False)

    def __init_subclass__(cls, *, category: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if category is not None:
            cls.category = category
        elif "category" not in cls.__dict__:
            cls.category = cls.__name__

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        handlers: dict[type[Event], str] = {}
        for klass in reversed(cls.__mro__):
            for name, member in vars(klass).items():
                targets = getattr(member, "__applies_to__", ())
                if targets is None:
                    function = (
                        member.__func__
                        if isinstance(member, classmethod | staticmethod)
                        else member
                    )
                    targets = annotated_types(
                        function,
                        Event,
                        position=1,
                        owner=cls,
                        arity=(2,),
                        usage="(self, event) for @applies",
                        instead="@applies(EventType)",
                    )
                for event_class in targets or ():
                    handlers[event_class] = name
        cls.__handlers__ = handlers
        cls.__state_fields__ = frozenset(cls.model_fields)
        cls._fingerprint = None

    _fingerprint: ClassVar[str | None] = None

    # --- identity and version ---------------------------------------------------------

    @classmethod
    def stream_id_for(cls, aggregate_id: str) -> str:
        """The stream that holds the events of the aggregate with this id."""
        return check_stream_id(f"{cls.category}-{aggregate_id}")

    @property
    def stream_id(self) -> str:
        return self.stream_id_for(self.id)

    @property
    def version(self) -> int:
        """The version of the last event applied, recorded ones included (0: none)."""
        private = self.__pydantic_private__
        assert private is not None
        return int(private["_version"])

    @property
    def pending_events(self) -> tuple[Event, ...]:
        """Events recorded since the aggregate was loaded or saved."""
        return tuple(self._pending)

    @property
    def saved_version(self) -> int:
        """The version the store holds: what a save expects to find."""
        return self._version - len(self._pending)

    # --- recording and applying ---------------------------------------------------------

    def record(self, event: Event) -> None:
        """Apply a new event to the state and keep it for the next save."""
        self._apply(event)
        self._pending.append(event)

    def _apply(self, event: Event, version: int | None = None) -> None:
        # Bookkeeping goes straight to pydantic's private dict: this runs once per
        # event on every load, and attribute access through pydantic is slow.
        handler = self._handler_for(type(event))
        private = self.__pydantic_private__
        assert private is not None
        private["_applying"] = True
        try:
            getattr(self, handler)(event)
        finally:
            private["_applying"] = False
        private["_version"] = private["_version"] + 1 if version is None else version

    def _replay(self, events: Sequence[Event], versions: Sequence[int]) -> None:
        # A page of stored events on a load, at `versions`: the loop of _apply with the
        # handler lookup and the applying flag done once per page (a failed handler
        # fails the load, so no state half-applied is ever handed out). Each handler
        # sees the version before its event, as when the event was recorded.
        handlers = type(self).__handlers__
        private = self.__pydantic_private__
        assert private is not None
        private["_applying"] = True
        try:
            for event, version in zip(events, versions, strict=True):
                handler = handlers.get(type(event))
                if handler is None:
                    handler = self._handler_for(type(event))
                getattr(self, handler)(event)
                private["_version"] = version
        finally:
            private["_applying"] = False

    @classmethod
    def _handler_for(cls, event_class: type[Event]) -> str:
        handler = cls.__handlers__.get(event_class)
        if handler is None:
            raise AggregateStateError(
                f"{cls.__name__} has no handler for {event_class.__name__}; add a method"
                f" marked @applies({event_class.__name__}) (it may do nothing)"
            )
        return handler

    @classmethod
    def handled_event_types(cls) -> tuple[type[Event], ...]:
        return tuple(cls.__handlers__)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self).__state_fields__:
            private = self.__pydantic_private__
            if private is None or not private["_applying"]:
                raise AggregateStateError(
                    f"{type(self).__name__}.{name} changes only in an event handler:"
                    " record an event instead of assigning the state"
                )
            self.__dict__[name] = value  # no validation on assignment: skip pydantic's path
            return
        super().__setattr__(name, value)

    def mark_saved(self) -> None:
        """Forget the pending events (the repository calls this after a save)."""
        self._pending.clear()

    @classmethod
    def from_events(cls, aggregate_id: str, events: Iterable[Event]) -> Self:
        """Rebuild an aggregate from its events, in order (nothing is pending)."""
        aggregate = cls(id=aggregate_id)
        for event in events:
            aggregate._apply(event)
        return aggregate

    # --- snapshots -----------------------------------------------------------------------

    def to_snapshot(self) -> dict[str, Any]:
        """The state as JSON-ready data. Override with :meth:`from_snapshot` for state
        that pydantic cannot serialise."""
        return self.model_dump(mode="json")

    @classmethod
    def from_snapshot(cls, state: dict[str, Any], version: int) -> Self:
        aggregate = cls.model_validate(state)
        aggregate._version = version
        return aggregate

    @classmethod
    def snapshot_fingerprint(cls) -> str:
        """Changes when the state's shape or ``snapshot_version`` does, so that a
        snapshot taken by an older shape of the aggregate is ignored."""
        if cls._fingerprint is None:
            shape = orjson.dumps(
                [cls.snapshot_version, cls.model_json_schema()], option=orjson.OPT_SORT_KEYS
            )
            cls._fingerprint = f"{cls.snapshot_version}:{hashlib.sha256(shape).hexdigest()[:16]}"
        return cls._fingerprint
