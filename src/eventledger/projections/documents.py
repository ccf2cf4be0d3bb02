"""Document read models: one JSON document per id, with declared indexes.

What an indexed field holds for queries is the same on every backend:

- ``number``: a JSON number, or a string that is a JSON number literal with an
  exponent of at most three digits (``"28.00"``, ``"-1.5e3"``); compared as a
  double, with magnitudes below 1e-300 as 0;
- ``text``: a JSON string; an integer as its digits (``5`` as ``"5"``); ``true`` and
  ``false`` as those words; compared by code point;
- ``boolean``: ``true`` or ``false``.

Anything else (another kind of value, an object, a list, null) counts as missing:
it matches ``None`` and sorts last. Query values are checked before any backend
sees them: numbers of magnitude 1e-300 to 1e300 (or 0), strings without a NUL.

Inside a projection's batch a :class:`Documents` handle reads through and writes
back: a document read twice is fetched once, and all writes reach the database
in one statement when the batch commits, with its checkpoint. Handlers run before
that transaction opens (reading committed documents: the projection's lease means
no one else writes them), so the transaction is only as long as the writes. Outside,
:class:`DocumentQueries` answers queries on the generation queries see.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from eventledger import _json
from eventledger.errors import InvalidInput
from eventledger.storage import Range, ReadSideStorage, Where
from eventledger.stores.base import StoreTransaction

__all__ = ["DocumentQueries", "Documents", "Range"]

MAX_PAGE = 1000
MIN_NUMBER, MAX_NUMBER = 1e-300, 1e300
"""The magnitudes a number field is compared with: every backend holds them exactly
as doubles."""
MAX_TEXT = 10_000
_MISSING = object()


class Documents:
    """The documents of one read model within one batch (read-through, write-back)."""

    def __init__(
        self, storage: ReadSideStorage, table: str, tx: StoreTransaction | None = None
    ) -> None:
        self._storage = storage
        self._table = table
        self._tx = tx
        # Documents as JSON text: a get decodes a fresh copy, a put encodes (and so
        # checks) at once, and the flush writes what is already encoded.
        self._cache: dict[str, bytes | str | None] = {}
        self._dirty: set[str] = set()

    async def prefetch(self, ids: Sequence[str]) -> None:
        """Fetch many documents in one query before handlers ask for them one by one."""
        # Only ids that pass the checks: the cache holds checked ids alone, so get and put
        # check an id once per batch (a bad one fails there, naming it).
        wanted = [i for i in dict.fromkeys(ids) if _valid_id(i) and i not in self._cache]
        if not wanted:
            return
        found = await self._storage.get_raw_documents(self._tx, self._table, wanted)
        for key in wanted:
            self._cache[key] = found.get(key)

    async def get(self, doc_id: str) -> dict[str, Any] | None:
        """The document with this id (a copy you may change and `put` back), or None."""
        if type(doc_id) is not str or doc_id not in self._cache:
            _check_id(doc_id)
            await self.prefetch([doc_id])
        raw = self._cache[doc_id]
        if raw is None:
            return None
        doc: dict[str, Any] = _json.loads(raw)
        return doc

    async def put(self, doc_id: str, doc: Mapping[str, Any]) -> None:
        """Create or replace a document."""
        if type(doc_id) is not str or doc_id not in self._cache:
            _check_id(doc_id)
        if type(doc) is not dict:
            if not isinstance(doc, Mapping):
                raise InvalidInput(f"a document is a dict, not {type(doc).__name__}")
            doc = dict(doc)
        try:
            encoded = _json.dumps(doc)
        except _json.JSONEncodeError as error:
            raise InvalidInput(f"document {doc_id!r} cannot be stored as JSON: {error}") from None
        if b"\\u0000" in encoded and _has_nul(doc):
            raise InvalidInput(f"document {doc_id!r} holds a NUL character, which no store keeps")
        self._cache[doc_id] = encoded
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

    async def flush(self, tx: StoreTransaction | None = None) -> None:
        """Write what changed in `tx` (default: the one given at the start); the runner
        calls this in the transaction that moves the checkpoint."""
        target = tx or self._tx
        if target is None:
            raise InvalidInput("documents are written in a transaction of the store")
        if not self._dirty:
            return
        upserts = {k: raw for k in self._dirty if (raw := self._cache.get(k)) is not None}
        deletes = [k for k in self._dirty if self._cache.get(k) is None]
        await self._storage.write_documents(target, self._table, upserts, deletes)
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
                if not condition.bounds():
                    raise InvalidInput(f"{name}: a Range needs at least one bound")
                values: Iterable[Any] = [bound for _, bound in condition.bounds()]
            elif isinstance(condition, list | tuple | set | frozenset):
                values = condition
            else:
                values = [] if condition is None else [condition]
            for value in values:
                _check_value(value, kind)
        return conditions


def _valid_id(doc_id: object) -> bool:
    return isinstance(doc_id, str) and 0 < len(doc_id) <= 255 and "\x00" not in doc_id


def _check_id(doc_id: object) -> None:
    if not _valid_id(doc_id):
        raise InvalidInput(
            "a document id is a non-empty string of at most 255 characters and no NUL"
            f" character, not {doc_id!r}"
        )


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


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
        try:
            magnitude = abs(float(value))
        except OverflowError:
            magnitude = math.inf
        if not (magnitude == 0 or MIN_NUMBER <= magnitude <= MAX_NUMBER):
            raise InvalidInput(
                f"a number field is compared with numbers of magnitude {MIN_NUMBER:g} to"
                f" {MAX_NUMBER:g} (or 0), not {value!r}"
            )
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidInput(f"a boolean field is compared with True or False, not {value!r}")
    elif not isinstance(value, str):
        raise InvalidInput(f"a text field is compared with strings, not {value!r}")
    elif "\x00" in value or len(value) > MAX_TEXT:
        raise InvalidInput(
            f"a text field is compared with strings of at most {MAX_TEXT} characters and no"
            f" NUL character, not {value[:40]!r}"
        )
