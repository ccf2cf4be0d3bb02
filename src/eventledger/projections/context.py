"""What a projection's handlers and kinds work with: the handler's :class:`Context`
(the event's place, the batch's transaction, documents, tables) and the runner's
:class:`RunScope` (the store and what it keeps)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from eventledger.errors import InvalidInput
from eventledger.projections.documents import Documents
from eventledger.records import JSONObject, RecordedEvent
from eventledger.storage import ReadSideStorage, SqlTables
from eventledger.stores.base import EventStore, StoreTransaction

if TYPE_CHECKING:
    from eventledger.commands import CommandBus

__all__ = ["Context", "RunScope"]


@dataclass(frozen=True, slots=True)
class RunScope:
    """What a runner gives its projections to run with: the store, and what the store
    keeps for them (see :mod:`eventledger.storage`)."""

    store: EventStore
    read_side: ReadSideStorage
    sql: SqlTables | None = None
    """The SQL tables of SQL read models, where the backend has SQL."""
    commands: CommandBus | None = None
    """The command bus process managers send with."""


@dataclass(slots=True)
class Context:
    """What a handler knows besides the event: where it is recorded, and where to write."""

    record: RecordedEvent
    tx: StoreTransaction | None
    docs: Documents | None
    tables: Mapping[str, str]
    sql: SqlTables | None = None

    @property
    def position(self) -> int:
        return self.record.position

    @property
    def stream_id(self) -> str:
        return self.record.stream_id

    @property
    def aggregate_id(self) -> str:
        """The stream id after its category: ``Order-o-1`` → ``o-1``."""
        head, sep, tail = self.record.stream_id.partition("-")
        return tail if sep else head

    @property
    def recorded_at(self) -> datetime:
        return self.record.recorded_at

    @property
    def metadata(self) -> JSONObject:
        return self.record.metadata

    async def execute(self, sql: str, **params: Any) -> None:
        """Run SQL in the batch's transaction, portably: ``{table}`` placeholders name this
        generation's tables, ``:name`` placeholders take `params`."""
        if self.tx is None:
            raise InvalidInput("this projection has no SQL transaction")
        text, args = self._portable(sql, params)
        await self.tx.execute(text, *args)

    async def fetch(self, sql: str, **params: Any) -> list[Sequence[Any]]:
        """Like :meth:`execute`, returning rows (reads see the batch's own writes)."""
        if self.tx is None:
            raise InvalidInput("this projection has no SQL transaction")
        text, args = self._portable(sql, params)
        return await self.tx.fetch(text, *args)

    def _portable(self, sql: str, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        if self.sql is None:
            raise InvalidInput("this store has no SQL; SQL read models need SQLite or PostgreSQL")
        return self.sql.bind(sql.format(**self.tables), params)

    def table(self, name: str) -> str:
        """The table a :class:`SqlProjection` writes for `name` in this generation."""
        try:
            return self.tables[name]
        except KeyError:
            raise InvalidInput(f"no table {name!r}; tables: {', '.join(self.tables)}") from None
