"""PostgreSQL's SQL: ``$n`` placeholders, eventledger's tables in the store's schema,
``timestamptz``, ``uuid`` and ``json`` columns (the text as written: jsonb would give
numbers back in another form), text compared in the "C" collation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eventledger import _json
from eventledger.stores._sql.dialect import Dialect

__all__ = ["PostgresDialect"]

_DOUBLE_MAX = "1.7976931348623157e308"
_NUMBER_LITERAL = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]{1,3})?$"


class PostgresDialect(Dialect):
    doc_text = "doc::text"
    doc_key_type = 'text COLLATE "C"'
    doc_value_type = "json"
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
        return _json.dumps(value)  # the connection's json codecs take bytes

    def boolean(self, value: bool) -> str:
        return "true" if value else "false"

    def any_of(self, column: str, values: Sequence[Any], args: list[Any]) -> str:
        args.append(list(values))
        return f"{column} = ANY(${len(args)}::text[])"

    def field(self, name: str, kind: str) -> str:
        # What a field holds for queries, the same on every backend (see
        # eventledger.projections.documents): anything else reads as missing (NULL),
        # and no document can make the expression (or its index) fail.
        path = "'{" + ",".join(name.split(".")) + "}'"
        text = f"(doc #>> {path})"
        kind_of = f"json_typeof(doc #> {path})"
        if kind == "number":
            # JSON numbers, and strings that are JSON number literals ("28.00") with an
            # exponent of at most three digits; compared as doubles, tiny ones as 0.
            n = f"({text}::numeric)"
            clamped = (
                f"(CASE WHEN abs({n}) < 1e-300 THEN 0"
                f" WHEN {n} > {_DOUBLE_MAX} THEN {_DOUBLE_MAX}"
                f" WHEN {n} < -{_DOUBLE_MAX} THEN -{_DOUBLE_MAX} ELSE {n} END)::float8"
            )
            return (
                f"(CASE WHEN {kind_of} = 'number' THEN {clamped}"
                f" WHEN {kind_of} = 'string' AND {text} ~ '{_NUMBER_LITERAL}' THEN {clamped}"
                " END)"
            )
        if kind == "boolean":
            return f"(CASE WHEN {kind_of} = 'boolean' THEN {text}::boolean END)"
        return (
            f"(CASE WHEN {kind_of} IN ('string', 'boolean') THEN {text}"
            f" WHEN {kind_of} = 'number' AND {text} ~ '^-?[0-9]+$' THEN {text}"
            ' END COLLATE "C")'
        )

    def field_param(self, value: Any, kind: str) -> Any:
        if kind == "number":
            return float(value)  # compared as doubles
        return value
