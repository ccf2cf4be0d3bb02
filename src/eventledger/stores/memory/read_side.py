"""The memory backend's read side: checkpoints, leases, dead letters and documents,
kept in the log's shared state and changed when a transaction commits."""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from eventledger import _json
from eventledger.records import RecordedEvent
from eventledger.storage import DeadLetter, LeaseInfo, Range, Where
from eventledger.stores.base import StoreTransaction
from eventledger.stores.memory.log import MemoryLog, in_transaction

__all__ = ["MemoryReadSide"]

_NUMBER_LITERAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]{1,3})?")


class MemoryReadSide:
    """:class:`~eventledger.storage.ReadSideStorage` of a memory store."""

    def __init__(self, log: MemoryLog) -> None:
        self.log = log

    # checkpoints

    async def get_checkpoint(self, name: str) -> int | None:
        with self.log.lock:
            return self.log.checkpoints.get(name)

    async def checkpoints(self) -> dict[str, int]:
        with self.log.lock:
            return dict(self.log.checkpoints)

    async def set_checkpoint(self, tx: StoreTransaction, name: str, position: int) -> None:
        in_transaction(tx).defer(lambda: self.log.checkpoints.__setitem__(name, position))

    async def delete_checkpoint(self, tx: StoreTransaction, name: str) -> None:
        def delete() -> None:
            self.log.checkpoints.pop(name, None)

        in_transaction(tx).defer(delete)

    # leases

    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        with self.log.lock:
            now = datetime.now(UTC)
            holder = self.log.leases.get(name)
            if holder is not None and holder.owner != owner and holder.expires_at >= now:
                return False
            self.log.leases[name] = LeaseInfo(name, owner, now + timedelta(seconds=ttl))
            return True

    async def hold_lease(self, tx: StoreTransaction, name: str, owner: str, ttl: float) -> bool:
        return await self.acquire_lease(name, owner, ttl)

    async def release_lease(self, name: str, owner: str) -> None:
        with self.log.lock:
            holder = self.log.leases.get(name)
            if holder is not None and holder.owner == owner:
                del self.log.leases[name]

    async def lease(self, name: str) -> LeaseInfo | None:
        with self.log.lock:
            holder = self.log.leases.get(name)
        return holder if holder is not None and holder.expires_at >= datetime.now(UTC) else None

    # dead letters

    async def park(
        self,
        tx: StoreTransaction,
        subscription: str,
        event: RecordedEvent,
        attempts: int,
        error: str,
        traceback: str,
    ) -> int:
        letter_id = next(self.log.dead_letter_ids)
        letter = DeadLetter(
            letter_id,
            subscription,
            event.position,
            event.id,
            event.stream_id,
            event.type,
            attempts,
            error,
            traceback,
            "parked",
            datetime.now(UTC),
            None,
        )
        in_transaction(tx).defer(lambda: self.log.dead_letters.__setitem__(letter_id, letter))
        return letter_id

    async def dead_letters(
        self,
        subscription: str | None,
        status: str | None,
        *,
        after: int = 0,
        limit: int | None = None,
    ) -> list[DeadLetter]:
        with self.log.lock:
            letters = sorted(self.log.dead_letters.values(), key=lambda letter: letter.id)
        found = [
            letter
            for letter in letters
            if letter.id > after
            and (subscription is None or letter.subscription == subscription)
            and (status is None or letter.status == status)
        ]
        return found if limit is None else found[:limit]

    async def dead_letter(self, letter_id: int) -> DeadLetter | None:
        with self.log.lock:
            return self.log.dead_letters.get(letter_id)

    async def resolve(self, tx: StoreTransaction, letter_id: int, status: str) -> None:
        def change() -> None:
            letter = self.log.dead_letters.get(letter_id)
            if letter is not None:
                self.log.dead_letters[letter_id] = dataclasses.replace(
                    letter, status=status, resolved_at=datetime.now(UTC)
                )

        in_transaction(tx).defer(change)

    # generations

    async def generation(self, name: str) -> int | None:
        with self.log.lock:
            return self.log.read_models.get(name)

    async def set_generation(self, tx: StoreTransaction, name: str, generation: int) -> None:
        in_transaction(tx).defer(lambda: self.log.read_models.__setitem__(name, generation))

    # documents

    async def create_collection(
        self, tx: StoreTransaction, table: str, indexes: Mapping[str, str]
    ) -> None:
        with self.log.lock:
            self.log.documents.setdefault(table, {})

    async def drop_collection(self, tx: StoreTransaction, table: str) -> None:
        def drop() -> None:
            self.log.documents.pop(table, None)

        in_transaction(tx).defer(drop)

    async def point_view(self, tx: StoreTransaction, view: str, table: str) -> None:
        in_transaction(tx).defer(lambda: self.log.views.__setitem__(view, table))

    def _table(self, name: str) -> dict[str, bytes]:
        return self.log.documents.get(self.log.views.get(name, name), {})

    async def get_raw_documents(
        self, tx: StoreTransaction | None, table: str, ids: Sequence[str]
    ) -> dict[str, bytes | str]:
        with self.log.lock:
            docs = self._table(table)
            return {key: docs[key] for key in ids if key in docs}

    async def write_documents(
        self,
        tx: StoreTransaction,
        table: str,
        upserts: Mapping[str, bytes | str],
        deletes: Iterable[str],
    ) -> None:
        encoded = {
            key: raw.encode() if isinstance(raw, str) else raw for key, raw in upserts.items()
        }
        removed = list(deletes)

        def change() -> None:
            docs = self.log.documents.setdefault(table, {})
            for key in removed:
                docs.pop(key, None)
            docs.update(encoded)

        in_transaction(tx).defer(change)

    def _matching(
        self, table: str, indexes: Mapping[str, str], where: Where
    ) -> list[tuple[str, dict[str, Any]]]:
        with self.log.lock:
            values = list(self._table(table).items())
        docs = []
        for key, value in values:
            doc = _json.loads(value)
            if all(
                _matches(_value(doc, name, indexes[name]), condition, indexes[name])
                for name, condition in where.items()
            ):
                docs.append((key, doc))
        return docs

    async def find(
        self,
        table: str,
        indexes: Mapping[str, str],
        where: Where,
        order_by: Sequence[str],
        limit: int,
        offset: int,
    ) -> list[dict[str, Any]]:
        docs = sorted(self._matching(table, indexes, where), key=lambda item: item[0])
        for item in reversed(order_by):
            name = item.lstrip("-")
            kind = indexes[name]
            present = [d for d in docs if _value(d[1], name, kind) is not None]
            missing = [d for d in docs if _value(d[1], name, kind) is None]
            present.sort(key=lambda d: _value(d[1], name, kind), reverse=item.startswith("-"))
            docs = present + missing
        return [doc for _, doc in docs[offset : offset + limit]]

    async def count(self, table: str, indexes: Mapping[str, str], where: Where) -> int:
        return len(self._matching(table, indexes, where))


def _value(doc: Mapping[str, Any], name: str, kind: str) -> Any:
    value: Any = doc
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return _normal(value, kind)


def _normal(value: Any, kind: str) -> Any:
    """What a field holds for queries, as the SQL backends read it (see
    eventledger.projections.documents); None: missing."""
    if kind == "number":
        if isinstance(value, bool):
            return None
        if isinstance(value, str):
            if not _NUMBER_LITERAL.fullmatch(value):
                return None
            number = float(value)
        elif isinstance(value, int | float):
            number = float(value)
        else:
            return None
        if abs(number) < 1e-300:
            return 0.0
        return max(-sys.float_info.max, min(number, sys.float_info.max))
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return None


def _matches(value: Any, condition: Any, kind: str) -> bool:
    if isinstance(condition, Range):
        if value is None:
            return False
        checks = {
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
        }
        return all(checks[op](value, _wanted(bound, kind)) for op, bound in condition.bounds())
    if isinstance(condition, list | tuple | set | frozenset):
        return value in {_wanted(option, kind) for option in condition}
    if condition is None:
        return value is None
    return bool(value == _wanted(condition, kind))


def _wanted(value: Any, kind: str) -> Any:
    """A query's value (checked already) as fields are compared: numbers as doubles."""
    return float(value) if kind == "number" else value
