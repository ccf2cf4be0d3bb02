"""What the SQL stores' side tables have in common: placeholders, table names, time.

PostgreSQL keeps eventledger's tables in the store's schema and takes ``$1``
placeholders and ``timestamptz``; SQLite prefixes table names with
``eventledger_``, takes ``?`` and keeps times as microseconds since the epoch.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from eventledger import _json
from eventledger.stores.base import EventStore

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class SqlDialect:
    """SQL for one store's database."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.postgres = store.dialect == "postgres"
        self.schema = f'"{getattr(store, "schema", "")}".' if self.postgres else ""
        self.prefix = self.schema if self.postgres else "eventledger_"

    def p(self, n: int) -> str:
        """The placeholder of the n-th parameter (1-based)."""
        return f"${n}" if self.postgres else "?"

    def marks(self, count: int, start: int = 1) -> str:
        return ", ".join(self.p(n) for n in range(start, start + count))

    def t(self, name: str) -> str:
        """One of eventledger's own tables."""
        return f"{self.prefix}{name}"

    def now(self) -> str:
        """The current time as an SQL expression."""
        return "clock_timestamp()" if self.postgres else str(micros(datetime.now(UTC)))

    def time_param(self, moment: datetime) -> Any:
        """A time as a bound parameter."""
        return moment if self.postgres else micros(moment)

    def time_value(self, value: Any) -> datetime | None:
        """A time read back from the database."""
        if value is None or isinstance(value, datetime):
            return value
        return EPOCH + timedelta(microseconds=int(value))

    def uuid_param(self, value: Any) -> Any:
        return value if self.postgres else value.bytes

    def uuid_value(self, value: Any) -> uuid.UUID:
        """A UUID read back (SQLite keeps its 16 bytes)."""
        return value if isinstance(value, uuid.UUID) else uuid.UUID(bytes=value)

    def json_param(self, value: Any) -> bytes | str:
        """A value as a JSON parameter: bytes for PostgreSQL's jsonb codec, text for SQLite."""
        encoded = _json.dumps(value)
        return encoded if self.postgres else encoded.decode()

    def json_value(self, value: Any) -> Any:
        """A JSON column read back (PostgreSQL's codec has decoded it already)."""
        return _json.loads(value) if isinstance(value, str | bytes) else value
