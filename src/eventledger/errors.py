"""The one exception hierarchy of eventledger.

Every error the library raises is an :class:`EventLedgerError`. Store errors
also subclass the matching builtin or PEP 249 name, so that code written
against a database driver's vocabulary keeps working::

    EventLedgerError
    ├── InvalidInput (ValueError)         bad argument; nothing was written
    │   └── UnsupportedStoreURL
    ├── ConflictError                     the state moved on under you
    │   └── WrongExpectedVersion
    ├── IntegrityError                    the log would break an invariant
    │   └── DuplicateEventId
    └── OperationalError                  the database failed or is unusable
        ├── StoreClosed
        └── SchemaVersionError

Messages name the values involved and, where possible, what to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eventledger.records import ExpectedVersion

__all__ = [
    "ConflictError",
    "DuplicateEventId",
    "EventLedgerError",
    "IntegrityError",
    "InvalidInput",
    "OperationalError",
    "SchemaVersionError",
    "StoreClosed",
    "UnsupportedStoreURL",
    "WrongExpectedVersion",
]


class EventLedgerError(Exception):
    """Root of every error raised by eventledger."""


class InvalidInput(EventLedgerError, ValueError):
    """An argument was malformed. Raised before anything is written."""


class UnsupportedStoreURL(InvalidInput):
    """`open_store` was given a URL it cannot open."""


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


def _expected_text(expected: ExpectedVersion) -> str:
    if isinstance(expected, int):
        return "no stream" if expected == 0 else str(expected)
    return expected.name
