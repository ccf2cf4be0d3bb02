"""Typed domain events, the registry that maps stored type names to classes, and upcasting.

An event is a pydantic model. Its stored type name is the class name unless
given, and its schema version is 1 unless given::

    >>> class OrderPlaced(Event, name="docs.OrderPlaced", version=2):
    ...     customer: str
    ...     total: int
    >>> OrderPlaced.event_type, OrderPlaced.event_version
    ('docs.OrderPlaced', 2)
    >>> OrderPlaced(customer="alice", total=20).to_data()
    {'customer': 'alice', 'total': 20}

Events are immutable, and unknown fields are refused, so a typo is an error
rather than a silently lost value. Every event class registers itself in
:data:`default_registry` when it is defined; a separate :class:`EventRegistry`
keeps a set of classes apart (say, per test).

Old stored payloads are lifted to the current schema on read by upcasters,
registered per type and version; stored events never change::

    >>> registry = EventRegistry()
    >>> class Paid(Event, version=2, registry=registry):
    ...     amount_cents: int
    >>> @registry.upcaster("Paid", from_version=1)
    ... def euros_to_cents(data: dict) -> dict:
    ...     return {"amount_cents": round(data.pop("amount") * 100)}
    >>> registry.decode_data("Paid", 1, {"amount": 12.5})
    Paid(amount_cents=1250)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import pydantic

from eventledger._validation import check_event_type
from eventledger.errors import EventDecodeError, InvalidInput, UnknownEventType
from eventledger.records import JSONObject, NewEvent, RecordedEvent

__all__ = [
    "Event",
    "EventDecodeError",
    "EventRegistry",
    "UnknownEventType",
    "Upcaster",
    "default_registry",
]

Upcaster = Callable[[JSONObject], JSONObject]


class Event(pydantic.BaseModel):
    """Base class of domain events. Subclass it with the event's fields."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str] = "Event"
    """The type name stored with the event (the class name unless given)."""
    event_version: ClassVar[int] = 1
    """The schema version of this class's payload; raise it when the shape changes."""

    def __init_subclass__(
        cls,
        *,
        name: str | None = None,
        version: int = 1,
        registry: EventRegistry | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.event_type = check_event_type(name or cls.__name__)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InvalidInput(f"{cls.__name__}: version must be an int >= 1, not {version!r}")
        cls.event_version = version
        cls.__event_registry__ = registry if registry is not None else default_registry

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        # Called once the fields exist, so a registry sees a complete class.
        cls.__event_registry__.register(cls)

    __event_registry__: ClassVar[EventRegistry]

    def to_data(self) -> JSONObject:
        """The payload as JSON-ready data."""
        return self.model_dump(mode="json")

    def to_new_event(self, metadata: JSONObject | None = None) -> NewEvent:
        """This event as a :class:`~eventledger.NewEvent`, ready to append."""
        from eventledger.personal.markers import personal_fields  # (imports Event)

        return NewEvent(
            self.event_type,
            self.to_data(),
            metadata or {},
            schema_version=self.event_version,
            personal=personal_fields(type(self)) or None,
        )


class EventRegistry:
    """Maps stored type names to event classes, and lifts old payloads on read."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Event]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._renames: dict[str, str] = {}
        # (stored type, schema version) -> the validator of a class that reads it as it
        # is (current name, current version): the common case, looked up once per type.
        self._direct: dict[tuple[str, int], Callable[[Any], Event]] = {}

    def register(self, event_class: type[Event]) -> type[Event]:
        """Register a class under its `event_type`. Defining a subclass does this."""
        name = event_class.event_type
        known = self._classes.get(name)
        if (
            known is not None
            and known is not event_class
            and not _same_definition(known, event_class)
        ):
            raise InvalidInput(
                f"event type {name!r} is taken by {_qualified(known)}; give"
                f" {_qualified(event_class)} another name: class"
                f" {event_class.__name__}(Event, name='...')"
            )
        self._classes[name] = event_class
        self._direct.clear()
        return event_class

    def get(self, event_type: str) -> type[Event] | None:
        """The class registered for a (possibly renamed) stored type name."""
        return self._classes.get(self._current_name(event_type))

    def __contains__(self, event_type: str) -> bool:
        return self.get(event_type) is not None

    def upcaster(self, event_type: str, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorate a function that lifts a payload of `event_type` from
        `from_version` to `from_version + 1`. Use the type's current name."""
        check_event_type(event_type)

        def register(function: Upcaster) -> Upcaster:
            key = (event_type, from_version)
            if key in self._upcasters:
                raise InvalidInput(
                    f"{event_type} already has an upcaster from version {from_version}"
                )
            self._upcasters[key] = function
            return function

        return register

    def rename(self, old_name: str, new_name: str) -> None:
        """Read events stored as `old_name` as `new_name` (their versions carry over)."""
        check_event_type(old_name)
        check_event_type(new_name)
        if self._current_name(new_name) == old_name:
            raise InvalidInput(f"renaming {old_name!r} to {new_name!r} would make a cycle")
        self._renames[old_name] = new_name
        self._direct.clear()

    def decode(self, recorded: RecordedEvent) -> Event:
        """The typed event of a recorded one. Raises :class:`UnknownEventType` for a
        type no class is registered for, :class:`EventDecodeError` when it cannot be
        upcast or validated."""
        event_class = self._classes.get(recorded.type)
        if (
            event_class is not None
            and event_class.event_version == recorded.schema_version
            and recorded.type not in self._renames
        ):
            # The common case, on every load: current name, current version.
            try:
                return event_class.model_validate(recorded.data)
            except pydantic.ValidationError:
                pass  # decode_data says which field, with the event's place
        try:
            return self.decode_data(recorded.type, recorded.schema_version, dict(recorded.data))
        except EventDecodeError as error:
            raise type(error)(
                f"{error} (stream {recorded.stream_id!r}, version {recorded.version},"
                f" position {recorded.position})"
            ) from error.__cause__

    def decode_page(self, page: Sequence[RecordedEvent]) -> list[Event]:
        """The typed events of `page`, in order: :meth:`decode` of each, with the class
        and its validator found once per event type, not once per event."""
        direct = self._direct
        decoded: list[Event] = []
        for recorded in page:
            validate = direct.get((recorded.type, recorded.schema_version))
            if validate is None:
                validate = self._direct_validator(recorded.type, recorded.schema_version)
            if validate is not None:
                try:
                    decoded.append(validate(recorded.data))
                    continue
                except pydantic.ValidationError:
                    pass  # decode says which field, with the event's place
            decoded.append(self.decode(recorded))
        return decoded

    def _direct_validator(
        self, event_type: str, schema_version: int
    ) -> Callable[[Any], Event] | None:
        event_class = self._classes.get(event_type)
        if (
            event_class is None
            or event_class.event_version != schema_version
            or event_type in self._renames
        ):
            return None
        validate: Callable[[Any], Event] = (
            event_class.__pydantic_validator__.validate_python
            if event_class.__pydantic_complete__
            else event_class.model_validate
        )
        self._direct[event_type, schema_version] = validate
        return validate

    def decode_data(self, event_type: str, schema_version: int, data: JSONObject) -> Event:
        name = self._current_name(event_type)
        event_class = self._classes.get(name)
        if event_class is None:
            raise UnknownEventType(
                f"no event class is registered for type {event_type!r}"
                + (f" (renamed to {name!r})" if name != event_type else "")
            )
        target = event_class.event_version
        if schema_version > target:
            raise EventDecodeError(
                f"{name} version {schema_version} was written by newer code; this code knows"
                f" version {target}"
            )
        version = schema_version
        while version < target:
            upcast = self._upcasters.get((name, version))
            if upcast is None:
                raise EventDecodeError(
                    f"{name} is stored at version {version} but the class is at version"
                    f" {target}, and no upcaster lifts version {version} to {version + 1};"
                    f" add @registry.upcaster({name!r}, from_version={version})"
                )
            try:
                lifted = upcast(data)
            except EventDecodeError:
                raise  # the upcaster's own verdict (UnknownEventType, say), kept as it is
            except Exception as error:
                raise EventDecodeError(
                    f"the upcaster of {name} from version {version} ({_qualified(upcast)})"
                    f" raised {type(error).__name__}: {error}"
                ) from error
            if not isinstance(lifted, Mapping):
                raise EventDecodeError(
                    f"the upcaster of {name} from version {version} ({_qualified(upcast)})"
                    f" returned {type(lifted).__name__}, not the payload as a dict"
                )
            data = dict(lifted)
            version += 1
        try:
            return event_class.model_validate(data)
        except pydantic.ValidationError as error:
            fields = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(payload)'}: {e['msg']}"
                for e in error.errors()
            )
            raise EventDecodeError(
                f"stored {name} v{schema_version} does not fit {_qualified(event_class)}: {fields}"
            ) from error

    def _current_name(self, event_type: str) -> str:
        seen = {event_type}
        while event_type in self._renames:
            event_type = self._renames[event_type]
            if event_type in seen:  # pragma: no cover - rename() refuses cycles
                break
            seen.add(event_type)
        return event_type


def _qualified(thing: object) -> str:
    """`module.QualifiedName` of a class or function (a callable without one: its repr)."""
    name = getattr(thing, "__qualname__", None)
    return f"{getattr(thing, '__module__', '?')}.{name}" if name else repr(thing)


def _same_definition(a: type, b: type) -> bool:
    """A class defined again (a reloaded module, a test run twice) may replace itself."""
    return _qualified(a) == _qualified(b)


default_registry = EventRegistry()
"""Where event classes register unless given a registry of their own."""
