"""SQLite's SQL: ``?`` placeholders, tables named ``eventledger_*``, times as integer
microseconds since the epoch (UTC), UUIDs as their 16 bytes, JSON as text."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from eventledger.stores._sql.dialect import Dialect

__all__ = ["EPOCH", "SQLITE", "SqliteDialect", "micros", "moment"]

_DOUBLE_MAX = "1.7976931348623157e308"

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
        # What a field holds for queries, the same on every backend (see
        # eventledger.projections.documents): anything else reads as missing (NULL).
        path = f"'$.{name}'"
        value = f"json_extract(doc, {path})"
        kind_of = f"json_type(doc, {path})"
        if kind == "number":
            # JSON numbers, and strings that are JSON number literals ("28.00") with an
            # exponent of at most three digits; compared as doubles, tiny ones as 0.
            literal = (
                f"(json_valid({value}) AND json_type({value}) IN ('integer', 'real')"
                f" AND {value} = trim({value}, ' ' || char(9, 10, 13))"
                f" AND NOT lower({value}) GLOB '*e*[0-9][0-9][0-9][0-9]*')"
            )
            number = (
                f"(CASE WHEN {kind_of} IN ('integer', 'real') THEN CAST({value} AS REAL)"
                f" WHEN {kind_of} = 'text' AND {literal} THEN CAST({value} AS REAL) END)"
            )
            return (
                f"(CASE WHEN abs({number}) < 1e-300 THEN 0.0"
                f" WHEN {number} > {_DOUBLE_MAX} THEN {_DOUBLE_MAX}"
                f" WHEN {number} < -{_DOUBLE_MAX} THEN -{_DOUBLE_MAX} ELSE {number} END)"
            )
        if kind == "boolean":
            return f"(CASE {kind_of} WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"
        return (
            f"(CASE {kind_of} WHEN 'text' THEN {value}"
            f" WHEN 'integer' THEN CAST({value} AS TEXT)"
            " WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' END)"
        )

    def field_param(self, value: Any, kind: str) -> Any:
        if kind == "number":
            return float(value)  # compared as doubles
        if kind == "boolean":
            return int(value)
        return value


SQLITE = SqliteDialect()
