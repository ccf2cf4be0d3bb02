"""Document queries answered through a :class:`~eventledger.cache.QueryCache`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eventledger.projections.documents import DocumentQueries
from eventledger.storage import ReadSideStorage, Where

if TYPE_CHECKING:
    from eventledger.cache.query_cache import QueryCache

__all__ = ["CachedDocumentQueries"]


class CachedDocumentQueries(DocumentQueries):
    """The queries of a :class:`~eventledger.projections.DocumentQueries`, each answered
    from the cache when it safely can be. `at_least` (a position: the caller's own
    write, say) refuses cached answers computed before it."""

    def __init__(
        self,
        queries: DocumentQueries,
        cache: QueryCache,
        read_model: str,
        read_side: ReadSideStorage,
    ) -> None:
        # The queries themselves are `queries`' (no super().__init__: nothing of it is used).
        self.indexes = queries.indexes
        self._queries = queries
        self._cache = cache
        self._read_model = read_model
        self._read_side = read_side
        self._indexed = sorted(self.indexes.items())

    async def get(self, doc_id: str, *, at_least: int = 0) -> dict[str, Any] | None:
        async def compute() -> dict[str, Any] | None:
            return await self._queries.get(doc_id)

        return await self._cache.answer(
            self._read_model, self._read_side, "get", [doc_id], compute, at_least=at_least
        )

    async def find(
        self,
        where: Where | None = None,
        *,
        order_by: str | Sequence[str] = (),
        limit: int = 100,
        offset: int = 0,
        at_least: int = 0,
    ) -> list[dict[str, Any]]:
        async def compute() -> list[dict[str, Any]]:
            return await self._queries.find(where, order_by=order_by, limit=limit, offset=offset)

        ordered = [order_by] if isinstance(order_by, str) else list(order_by)
        query = [dict(where or {}), ordered, limit, offset, self._indexed]
        return await self._cache.answer(
            self._read_model, self._read_side, "find", query, compute, at_least=at_least
        )

    async def count(self, where: Where | None = None, *, at_least: int = 0) -> int:
        async def compute() -> int:
            return await self._queries.count(where)

        query = [dict(where or {}), self._indexed]
        return await self._cache.answer(
            self._read_model, self._read_side, "count", query, compute, at_least=at_least
        )
