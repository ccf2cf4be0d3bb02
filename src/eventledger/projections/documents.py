"""Document read models: one JSON document per id, with declared indexes.

Inside a projection's batch a :class:`Documents` handle reads through and writes
back: a document read twice is fetched once, and all writes reach the database
in one statement when the batch commits, with its checkpoint. Outside,
:class:`DocumentQueries` answers queries on the generation queries see.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from eventledger import _json
from eventledger.errors import InvalidInput
from eventledger.storage import Range, ReadSideStorage, Where
from eventledger.stores.base import StoreTransaction

__all__ = ["DocumentQueries", "Documents", "Range"]

MAX_PAGE = 1000
_MISSING = object()


class Documents:
    """The documents of one read model within one batch (read-through, write-back)."""

    def __init__(self, storage: ReadSideStorage, table: str, tx: StoreTransaction) -> None:
        self._storage = storage
        self._table = table
        self._tx = tx
        # Documents as JSON text: a get decodes a fresh copy, a put encodes (and so
        # checks) at once, and the flush writes what is already encoded.
        self._cache: dict[str, bytes | str | None] = {}
        self._dirty: set[str] = set()

    async def prefetch(self, ids: Sequence[str]) -> None:
        """Fetch many documents in one query before handlers ask for them one by one."""
        wanted = [i for i in dict.fromkeys(ids) if i not in self._cache]
        if not wanted:
            return
        found = await self._storage.get_raw_documents(self._tx, self._table, wanted)
        for key in wanted:
            self._cache[key] = found.get(key)

    async def get(self, doc_id: str) -> dict[str, Any] | None:
        """The document with this id (a copy you may change and `put` back), or None."""
        _check_id(doc_id)
        if doc_id not in self._cache:
            await self.prefetch([doc_id])
        raw = self._cache[doc_id]
        if raw is None:
            return None
        doc: dict[str, Any] = _json.loads(raw)
        return doc

    async def put(self, doc_id: str, doc: Mapping[str, Any]) -> None:
        """Create or replace a document."""
        _check_id(doc_id)
        if not isinstance(doc, Mapping):
            raise InvalidInput(f"a document is a dict, not {type(doc).__name__}")
        try:
            self._cache[doc_id] = _json.dumps(dict(doc))
        except _json.JSONEncodeError as error:
            raise InvalidInput(f"document {doc_id!r} cannot be stored as JSON: {error}") from None
        self._dirty.add(doc_id)

    async def update(self, doc_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge `changes` into the document (creating it if missing); returns the result."""
        doc = await self.get(doc_id) or {}
        doc.update(changes)
        await self.put(doc_id, doc)
        return doc

    async def delete(self, doc_id: str) -> None:
        _check_id(doc_id)
        self._cache[doc_id] = None
        self._dirty.add(doc_id)

    async def flush(self) -> None:
        """Write what changed (the runner calls this before the batch commits)."""
        if not self._dirty:
            return
        upserts = {k: raw for k in self._dirty if (raw := self._cache.get(k)) is not None}
        deletes = [k for k in self._dirty if self._cache.get(k) is None]
        await self._storage.write_documents(self._tx, self._table, upserts, deletes)
        self._dirty.clear()


class DocumentQueries:
    """Queries on a document read model, as its current generation has it."""

    def __init__(self, storage: ReadSideStorage, view: str, indexes: Mapping[str, str]) -> None:
        self._storage = storage
        self._view = view
        self.indexes = dict(indexes)

    async def get(self, doc_id: str) -> dict[str, Any] | None:
        _check_id(doc_id)
        found = await self._storage.get_raw_documents(None, self._view, [doc_id])
        raw = found.get(doc_id)
        if raw is None:
            return None
        doc: dict[str, Any] = _json.loads(raw)
        return doc

    async def find(
        self,
        where: Where | None = None,
        *,
        order_by: str | Sequence[str] = (),
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Documents matching `where` (``{"status": "paid", "total": Range(gte=10)}``; a
        list means any of; None means missing), ordered by indexed fields (``"-total"``
        for descending; ties by id), one page at a time."""
        if isinstance(order_by, str):
            order_by = (order_by,)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}, not {limit!r}")
        if not isinstance(offset, int) or offset < 0:
            raise InvalidInput(f"offset must be an int >= 0, not {offset!r}")
        for item in order_by:
            if not isinstance(item, str):
                raise InvalidInput(f"order_by takes field names, not {item!r}")
            _indexed(self.indexes, item.removeprefix("-"))
        return await self._storage.find(
            self._view, self.indexes, self._checked(where), list(order_by), limit, offset
        )

    async def count(self, where: Where | None = None) -> int:
        return await self._storage.count(self._view, self.indexes, self._checked(where))

    def _checked(self, where: Where | None) -> dict[str, Any]:
        """The conditions, after refusing what no backend could compare: an unindexed
        field, a value of the wrong kind."""
        conditions = dict(where or {})
        for name, condition in conditions.items():
            kind = _indexed(self.indexes, name)
            if isinstance(condition, Range):
                values: Iterable[Any] = [bound for _, bound in condition.bounds()]
            elif isinstance(condition, list | tuple | set | frozenset):
                values = condition
            else:
                values = [] if condition is None else [condition]
            for value in values:
                _check_value(value, kind)
        return conditions


def _check_id(doc_id: object) -> None:
    if not isinstance(doc_id, str) or not doc_id or len(doc_id) > 255:
        raise InvalidInput(f"a document id is a non-empty string of at most 255, not {doc_id!r}")


def _indexed(indexes: Mapping[str, str], name: str) -> str:
    kind = indexes.get(name)
    if kind is None:
        raise InvalidInput(
            f"field {name!r} is not an indexed field of this read model; queries use declared"
            f" indexes ({', '.join(sorted(indexes)) or 'none declared'})"
        )
    return kind


def _check_value(value: Any, kind: str) -> None:
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise InvalidInput(f"a number field is compared with numbers, not {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidInput(f"a boolean field is compared with True or False, not {value!r}")
    elif not isinstance(value, str):
        raise InvalidInput(f"a text field is compared with strings, not {value!r}")
