"""PostgreSQL's SQL: ``$n`` placeholders, eventledger's tables in the store's schema,
``timestamptz``, ``uuid`` and ``jsonb`` columns, text compared in the "C" collation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eventledger import _json
from eventledger.stores._sql.dialect import Dialect

__all__ = ["PostgresDialect"]


class PostgresDialect(Dialect):
    doc_text = "doc::text"
    doc_key_type = 'text COLLATE "C"'
    doc_value_type = "jsonb"
    cascade = " CASCADE"

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._q = f'"{schema}"'

    def p(self, n: int) -> str:
        return f"${n}"

    def t(self, name: str) -> str:
        return f"{self._q}.{name}"

    def object_name(self, name: str) -> str:
        return f'{self._q}."{name}"'

    def now(self) -> str:
        return "clock_timestamp()"

    def expiry(self, seconds: float) -> str:
        return f"clock_timestamp() + interval '{float(seconds)} seconds'"

    def time_param(self, when: datetime) -> Any:
        return when

    def time_value(self, value: Any) -> datetime | None:
        return value if value is None or isinstance(value, datetime) else None

    def json_param(self, value: Any) -> bytes | str:
        return _json.dumps(value)  # the connection's jsonb codec takes bytes

    def boolean(self, value: bool) -> str:
        return "true" if value else "false"

    def any_of(self, column: str, values: Sequence[Any], args: list[Any]) -> str:
        args.append(list(values))
        return f"{column} = ANY(${len(args)}::text[])"

    def field(self, name: str, kind: str) -> str:
        path = ", ".join(f"'{part}'" for part in name.split("."))
        text = f"(doc #>> ARRAY[{path}])"
        if kind == "number":
            return f"({text}::numeric)"
        if kind == "boolean":
            return f"({text}::boolean)"
        return f'({text} COLLATE "C")'

    def field_param(self, value: Any, kind: str) -> Any:
        return value
