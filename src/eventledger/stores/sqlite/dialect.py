"""SQLite's SQL: ``?`` placeholders, tables named ``eventledger_*``, times as integer
microseconds since the epoch (UTC), UUIDs as their 16 bytes, JSON as text."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from eventledger.stores._sql.dialect import Dialect

__all__ = ["EPOCH", "SQLITE", "SqliteDialect", "micros", "moment"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(when: datetime) -> int:
    """A time as integer microseconds since the epoch."""
    delta = when - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def moment(value: int) -> datetime:
    """Integer microseconds since the epoch as a time (UTC)."""
    return EPOCH + timedelta(microseconds=value)


class SqliteDialect(Dialect):
    def p(self, n: int) -> str:
        return "?"

    def t(self, name: str) -> str:
        return f"eventledger_{name}"

    def object_name(self, name: str) -> str:
        return f'"{name}"'

    def now(self) -> str:
        return str(micros(datetime.now(UTC)))

    def expiry(self, seconds: float) -> str:
        return str(micros(datetime.now(UTC)) + int(seconds * 1_000_000))

    def time_param(self, when: datetime) -> Any:
        return micros(when)

    def time_value(self, value: Any) -> datetime | None:
        return None if value is None else moment(int(value))

    def uuid_param(self, value: uuid.UUID) -> Any:
        return value.bytes

    def boolean(self, value: bool) -> str:
        return "1" if value else "0"

    def any_of(self, column: str, values: Sequence[Any], args: list[Any]) -> str:
        args.extend(values)
        return f"{column} IN ({', '.join('?' * len(values))})"

    def field(self, name: str, kind: str) -> str:
        if kind == "number":
            # Decimals arrive as JSON strings ("28.00"); compare them as numbers.
            return f"CAST(json_extract(doc, '$.{name}') AS REAL)"
        return f"json_extract(doc, '$.{name}')"

    def field_param(self, value: Any, kind: str) -> Any:
        if kind == "number" and isinstance(value, Decimal):
            return float(value)  # the field is compared as REAL
        if kind == "boolean":
            return int(value)
        return value


SQLITE = SqliteDialect()
