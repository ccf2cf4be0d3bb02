"""The one exception hierarchy of eventledger.

Every error the library raises is an :class:`EventLedgerError`. Store errors
also subclass the matching builtin or PEP 249 name, so that code written
against a database driver's vocabulary keeps working::

    EventLedgerError
    ├── InvalidInput (ValueError)         bad argument; nothing was written
    │   ├── UnsupportedStoreURL
    │   ├── CommandInvalid                a command's fields, each error named
    │   ├── IdempotencyKeyReused          one key, two different commands
    │   ├── EventTooLarge                 an event over the store's size limit
    │   └── UnsupportedFeature            the backend does not keep what a feature needs
    ├── NotFound (LookupError)            no such thing
    │   ├── UnknownCommand
    │   └── AggregateNotFound             no events for the aggregate asked for
    ├── ConflictError                     the state moved on under you
    │   ├── WrongExpectedVersion
    │   ├── AlreadyExists                 a command creates what exists already
    │   ├── KeyTaken                      a concurrent command took the idempotency key
    │   └── LeaseLost                     another process took a subscription over
    ├── IntegrityError                    the log would break an invariant
    │   └── DuplicateEventId
    ├── OperationalError                  the database failed or is unusable
    │   ├── StoreClosed
    │   └── SchemaVersionError
    ├── DomainError                       a domain rule was broken (subclass per rule)
    ├── AggregateStateError               state changed outside an event handler
    ├── EventDecodeError                  a stored event cannot become its class
    │   └── UnknownEventType
    ├── ProjectionFailed                  a projection stopped on an event (see dead letters)
    └── ProjectionTimeout (TimeoutError)  a projection did not reach a position in time

Messages name the values involved and, where possible, what to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from eventledger.records import ExpectedVersion

__all__ = [
    "AggregateNotFound",
    "AggregateStateError",
    "AlreadyExists",
    "CommandInvalid",
    "ConflictError",
    "DomainError",
    "DuplicateEventId",
    "EventDecodeError",
    "EventLedgerError",
    "EventTooLarge",
    "FieldError",
    "IdempotencyKeyReused",
    "IntegrityError",
    "InvalidInput",
    "KeyTaken",
    "LeaseLost",
    "NotFound",
    "OperationalError",
    "ProjectionFailed",
    "ProjectionTimeout",
    "SchemaVersionError",
    "StoreClosed",
    "UnknownCommand",
    "UnknownEventType",
    "UnsupportedFeature",
    "UnsupportedStoreURL",
    "WrongExpectedVersion",
]


class EventLedgerError(Exception):
    """Root of every error raised by eventledger."""


class InvalidInput(EventLedgerError, ValueError):
    """An argument was malformed. Raised before anything is written."""


class UnsupportedStoreURL(InvalidInput):
    """`open_store` was given a URL it cannot open."""


class NotFound(EventLedgerError, LookupError):
    """What was asked for does not exist (a command name, a stream, a read model's id)."""


class UnknownCommand(NotFound):
    """No handler is registered for a command name."""


class AggregateNotFound(NotFound):
    """No events exist for the aggregate asked for."""


class CommandInvalid(InvalidInput):
    """A command's payload failed validation; `errors` names each bad field.

    >>> error = CommandInvalid("PlaceOrder", [FieldError(("lines", 0, "quantity"), "must be > 0")])
    >>> print(error)
    PlaceOrder is not valid: lines.0.quantity: must be > 0
    """

    def __init__(self, command: str, errors: list[FieldError]) -> None:
        self.command = command
        self.errors = errors
        detail = "; ".join(f"{error.path_text}: {error.message}" for error in errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        super().__init__(f"{command} is not valid: {detail}{more}")


class FieldError(NamedTuple):
    """One invalid field: where it is (a path of names and list indexes) and why."""

    path: tuple[str | int, ...]
    message: str
    kind: str = "value_error"

    @property
    def path_text(self) -> str:
        return ".".join(str(part) for part in self.path) or "(the whole command)"


class EventTooLarge(InvalidInput):
    """An event's data and metadata take more bytes than the store allows; nothing was
    written."""


class IdempotencyKeyReused(InvalidInput):
    """An idempotency key came back with another command or payload than its first use."""


class ConflictError(EventLedgerError):
    """The operation conflicts with a concurrent change; reload and decide again."""


class WrongExpectedVersion(ConflictError):
    """An append's expected version did not match the stream's actual version.

    >>> print(WrongExpectedVersion("order-1", 3, 5))
    Wrong expected version for stream 'order-1': expected 3, actual 5. Reload the stream and ...
    """

    def __init__(self, stream_id: str, expected: ExpectedVersion, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        actual_text = "no stream" if actual == 0 else str(actual)
        super().__init__(
            f"Wrong expected version for stream {stream_id!r}: expected {_expected_text(expected)},"
            f" actual {actual_text}. Reload the stream and decide again."
        )

    def __reduce__(self) -> tuple[type[WrongExpectedVersion], tuple[str, ExpectedVersion, int]]:
        return (type(self), (self.stream_id, self.expected, self.actual))


class IntegrityError(EventLedgerError):
    """The write would break an invariant of the log."""


class DuplicateEventId(IntegrityError):
    """Event ids given to an append were already recorded somewhere else.

    Retrying an append with the same ids at the same place is fine (it returns
    the first result); reusing ids for other events is not.
    """

    def __init__(self, stream_id: str, event_ids: list[str], detail: str) -> None:
        self.stream_id = stream_id
        self.event_ids = event_ids
        shown = ", ".join(event_ids[:3]) + (" ..." if len(event_ids) > 3 else "")
        super().__init__(
            f"Event id(s) {shown} given to an append to stream {stream_id!r} were already"
            f" recorded: {detail}. Give new events new ids; reuse ids only to retry the very"
            " same append."
        )


class OperationalError(EventLedgerError):
    """The database failed, or is not usable by this version of eventledger."""


class StoreClosed(OperationalError):
    """The store was used after `close()`."""


class SchemaVersionError(OperationalError):
    """The database schema was written by a newer eventledger than this one."""


class AlreadyExists(ConflictError):
    """A command creates an aggregate whose stream exists already; no retry changes
    that, so it is answered at once."""


class KeyTaken(ConflictError):
    """Another command recorded this idempotency key first; the transaction must roll
    back, and the first command's result is the answer."""


class LeaseLost(ConflictError):
    """Another process took a subscription over; this one must stop writing for it."""


class UnsupportedFeature(InvalidInput):
    """The store's backend does not keep what a feature needs (a memory store and SQL
    read models, say). Raised when the feature is set up, not deep inside it."""


class DomainError(EventLedgerError):
    """A domain rule was broken. Subclass it per rule; nothing was recorded."""


class AggregateStateError(EventLedgerError):
    """State was changed outside an event handler, or an event has no handler."""


class EventDecodeError(EventLedgerError):
    """A stored event cannot be turned into its class (no upcaster, or invalid payload)."""


class UnknownEventType(EventDecodeError):
    """No class is registered for a stored event type."""


class ProjectionFailed(EventLedgerError):
    """A projection stopped on an event it could not handle (see its dead letters)."""


class ProjectionTimeout(EventLedgerError, TimeoutError):
    """A projection did not reach a position in time."""


def _expected_text(expected: ExpectedVersion) -> str:
    if isinstance(expected, int):
        return "no stream" if expected == 0 else str(expected)
    return expected.name
