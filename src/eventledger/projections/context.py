"""What a projection's handlers and kinds work with: the handler's :class:`Context`
(the event's place, the batch's transaction, documents, tables) and the runner's
:class:`RunScope` (the store and what it keeps)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from eventledger.errors import InvalidInput
from eventledger.projections.documents import Documents
from eventledger.records import JSONObject, RecordedEvent
from eventledger.storage import ReadSideStorage, SqlTables
from eventledger.stores.base import EventStore, StoreTransaction

if TYPE_CHECKING:
    from eventledger.commands import CommandBus
    from eventledger.projections.base import Projection
    from eventledger.projections.caching import Change, ReadModelCache

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
    cache: ReadModelCache | None = None
    """The query cache told of changes to read models (see
    :mod:`eventledger.projections.caching`)."""

    def cache_for(self, projection: Projection) -> ReadModelCache | None:
        """The cache of `projection`'s queries: None without one, and for a partitioned
        read model (several processes write it at once; the cache does not cover that)."""
        if self.cache is None or getattr(projection, "partitions", 1) != 1:
            return None
        return self.cache

    async def change_ahead(self, projection: Projection) -> Change | None:
        """Before a transaction that will change what queries of `projection` see: tell
        the cache (then give the transaction to the change's ``commits_with``)."""
        cache = self.cache_for(projection)
        return None if cache is None else await cache.changing(projection.name)

    async def changing(
        self, tx: StoreTransaction, projection: Projection, *, taking_over: bool = False
    ) -> None:
        """In `tx`, which changes what queries of `projection` see: tell the cache."""
        cache = self.cache_for(projection)
        if cache is not None:
            change = await cache.changing(projection.name, taking_over=taking_over)
            change.commits_with(tx)

    async def serving(self, projection: Projection) -> None:
        """At each step of a running read model: tell the cache its runner is alive."""
        cache = self.cache_for(projection)
        if cache is not None:
            await cache.serving(projection.name)


@dataclass(slots=True)
class Context:
    """What a handler knows besides the event: where it is recorded, and where to write."""

    record: RecordedEvent
    tx: StoreTransaction | None
    docs: Documents | None
    tables: Mapping[str, str]
    sql: SqlTables | None = None
    _aggregate_id: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def position(self) -> int:
        return self.record.position

    @property
    def stream_id(self) -> str:
        return self.record.stream_id

    @property
    def aggregate_id(self) -> str:
        """The stream id after its category: ``Order-o-1`` → ``o-1``."""
        found = self._aggregate_id
        if found is None:
            head, sep, tail = self.record.stream_id.partition("-")
            found = self._aggregate_id = tail if sep else head
        return found

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
