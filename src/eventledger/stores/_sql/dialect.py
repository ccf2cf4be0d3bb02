"""The differences between the SQL backends, as one object each backend supplies.

Shared SQL code asks the dialect for placeholders, table names, time, UUID, JSON
and boolean values, and document field expressions; it never asks which backend
it runs on.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eventledger import _json

__all__ = ["Dialect"]


class Dialect(abc.ABC):
    """SQL for one backend's database."""

    doc_text: str = "doc"
    """How a document column reads as JSON text in a SELECT list."""

    @abc.abstractmethod
    def p(self, n: int) -> str:
        """The placeholder of the n-th parameter (1-based)."""

    def marks(self, count: int, start: int = 1) -> str:
        return ", ".join(self.p(n) for n in range(start, start + count))

    @abc.abstractmethod
    def t(self, name: str) -> str:
        """One of eventledger's own tables (``checkpoints``, ``commands``, ...)."""

    @abc.abstractmethod
    def object_name(self, name: str) -> str:
        """A read model's table or view, quoted (and qualified where the backend has schemas)."""

    @abc.abstractmethod
    def now(self) -> str:
        """The current time as an SQL expression."""

    @abc.abstractmethod
    def expiry(self, seconds: float) -> str:
        """The time `seconds` from now, as an SQL expression."""

    @abc.abstractmethod
    def time_param(self, moment: datetime) -> Any:
        """A time as a bound parameter."""

    @abc.abstractmethod
    def time_value(self, value: Any) -> datetime | None:
        """A time read back from the database."""

    def uuid_param(self, value: uuid.UUID) -> Any:
        return value

    def uuid_value(self, value: Any) -> uuid.UUID:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(bytes=value)

    def json_param(self, value: Any) -> bytes | str:
        """A value for a JSON column."""
        return _json.dumps(value).decode()

    def json_value(self, value: Any) -> Any:
        """A JSON column read back (a driver that decodes JSON itself gives a value)."""
        return _json.loads(value) if isinstance(value, str | bytes) else value

    @abc.abstractmethod
    def boolean(self, value: bool) -> str:
        """A boolean literal."""

    @abc.abstractmethod
    def any_of(self, column: str, values: Sequence[Any], args: list[Any]) -> str:
        """``column`` equals one of `values`, binding them by appending to `args`."""

    # documents

    doc_key_type: str = "TEXT"
    doc_value_type: str = "TEXT"
    cascade: str = ""
    """What DROP TABLE adds so that views on the table go with it."""

    @abc.abstractmethod
    def field(self, name: str, kind: str) -> str:
        """The expression an indexed document field is compared and indexed by."""

    @abc.abstractmethod
    def field_param(self, value: Any, kind: str) -> Any:
        """A value compared with a field of `kind` (already checked), as bound."""
