"""Which driver errors mean the connection (or the server) failed, rather than the
statement: those become :class:`~eventledger.OperationalError`, the connection is
thrown away, and work that is safe to repeat runs again on a fresh one."""

from __future__ import annotations

import asyncpg

from eventledger.errors import (
    ConflictError,
    DuplicateEventId,
    EventLedgerError,
    OperationalError,
)
from eventledger.records import ExpectedVersion

__all__ = [
    "APPEND_COLLISIONS",
    "append_refused",
    "is_connection_failure",
    "leaves_connection_idle",
]

# What a connection that died under us raises (InternalClientError: a server that
# cut an idle connection leaves asyncpg's protocol in a state it cannot leave).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.InternalClientError,
)
# Server errors that end the session: connection exceptions (08), an administrator's
# or the server's shutdown, a server still starting (57P01-57P03), and a session
# killed for idling in a transaction (25P03).
_SESSION_ENDING = ("08", "57P01", "57P02", "57P03", "57P05", "25P03")


def is_connection_failure(error: BaseException) -> bool:
    """Whether `error` says the connection or the server failed (so the statement may not
    have run, and another connection may succeed)."""
    if isinstance(error, asyncpg.PostgresError):
        state = error.sqlstate or ""
        return state.startswith(_SESSION_ENDING) or getattr(error, "severity", "") == "FATAL"
    return isinstance(error, (*CONNECTION_ERRORS, TimeoutError))


def leaves_connection_idle(error: BaseException) -> bool:
    """Whether the connection is still fit for use after `error`: a statement's error
    leaves it idle; failures, cancellations (57014) and FATAL errors do not."""
    if not isinstance(error, asyncpg.PostgresError):
        return False
    state = error.sqlstate or ""
    severity = getattr(error, "severity", "") or ""
    return not (state.startswith(("08", "57")) or severity in ("FATAL", "PANIC"))


APPEND_COLLISIONS: tuple[type[asyncpg.PostgresError], ...] = (
    asyncpg.UniqueViolationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)
"""What the database refuses an append statement with when it collides with other
writes (see :func:`append_refused`)."""


def append_refused(
    error: asyncpg.PostgresError,
    stream_id: str,
    expected: ExpectedVersion,
    event_ids: list[str],
    writer: str,
) -> EventLedgerError:
    """What one of :data:`APPEND_COLLISIONS` means, where the caller cannot look further
    (inside a transaction, which the error aborted; or a command's one statement, of
    which nothing was written): reused event ids, a concurrent writer that took the next
    version, or a collision with another transaction. `writer` is what ran the append
    ("transaction", "command")."""
    if isinstance(error, asyncpg.UniqueViolationError):
        if error.constraint_name == "events_id_key":
            return DuplicateEventId(
                stream_id,
                event_ids,
                f"some of them are recorded already; every event a {writer} appends must be new",
            )
        if error.constraint_name == "events_stream_version_key":
            return ConflictError(
                f"another writer appended to {stream_id!r} at the same time (this {writer}"
                f" expected {expected!r}); run it again"
            )
        return OperationalError(f"append to {stream_id!r} failed: {error}")
    return ConflictError(
        f"append to {stream_id!r} collided with a concurrent transaction ({error});"
        " run this one again"
    )
