"""What the projections code tells a query cache, and asks of it.

A :class:`ReadModelCache` (such as :class:`eventledger.cache.QueryCache`, over Redis)
keeps answers of read-model queries. The projections code holds up its side of the
bargain at three points, so that the cache can never serve an answer older than a
change that has committed:

- :meth:`ReadModelCache.changing` before every transaction that changes what queries
  of a read model see commits (a batch: before its transaction opens; a rebuild's
  swap, a reset: in it), and :meth:`Change.commits_with` with that transaction, so
  that the cache learns through ``tx.on_commit`` that it committed;
- :meth:`ReadModelCache.changing` with ``taking_over=True`` when a process becomes
  the one that runs a read model (what came before it is not known to the cache);
- :meth:`ReadModelCache.serving`, at each step of the running read model's loop:
  the process that runs it is alive and follows the rules above.

Queries (:class:`~eventledger.projections.queries.ReadModelQueries`) then go through
:meth:`ReadModelCache.documents` and :meth:`ReadModelCache.answer`. See
``docs/query-cache.md`` for the argument.

Partitioned read models (``partitions = N`` above 1) are not cached: their partitions
commit at once from several processes, and the rules above name one writer per read
model (:meth:`~eventledger.projections.context.RunScope.cache_for` leaves them out).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from eventledger.stores.base import StoreTransaction

if TYPE_CHECKING:
    from eventledger.projections.documents import DocumentQueries
    from eventledger.storage import ReadSideStorage

__all__ = ["Change", "ReadModelCache"]

T = TypeVar("T")


class Change(Protocol):
    """A change marked in the cache, to be tied to the transaction that commits it."""

    def commits_with(self, tx: StoreTransaction) -> None:
        """`tx` commits the change (the cache learns of it through ``tx.on_commit``)."""
        ...


class ReadModelCache(Protocol):
    """A cache of read-model query answers, told of every change before it commits."""

    async def changing(self, read_model: str, *, taking_over: bool = False) -> Change:
        """A change to what queries of `read_model` see is about to commit, in a
        transaction given to :meth:`Change.commits_with` (or, with `taking_over`, this
        process has just become the one that runs it). Call it before that transaction
        commits: before it opens, or in it."""
        ...

    async def serving(self, read_model: str) -> None:
        """The process that runs `read_model` is alive (called at each step of its loop,
        never while one of its transactions is open)."""
        ...

    def documents(
        self, read_model: str, queries: DocumentQueries, read_side: ReadSideStorage
    ) -> DocumentQueries:
        """`queries` (on the generation queries see), answered through the cache."""
        ...

    async def answer(
        self,
        read_model: str,
        read_side: ReadSideStorage,
        kind: str,
        query: Sequence[Any],
        compute: Callable[[], Awaitable[T]],
        *,
        at_least: int = 0,
    ) -> T:
        """The answer to `query` (of `kind`: ``get``, ``find``, ``count``, ``rows``) on
        `read_model`: cached, or `compute`'s (then kept when it is safe to)."""
        ...
