"""Where the read side keeps its state, per backend: checkpoints, leases, dead letters,
read model generations and documents.

The SQL stores keep it in tables beside the events (so a projection's writes and
its checkpoint commit in one transaction); the memory store keeps it in the
shared log. Callers pass the store's transaction for anything that must commit
with a batch.
"""

from __future__ import annotations

import abc
import dataclasses
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from eventledger import _json
from eventledger._sql import EPOCH, SqlDialect, micros
from eventledger.errors import InvalidInput
from eventledger.records import RecordedEvent
from eventledger.stores.base import EventStore, StoreTransaction
from eventledger.stores.memory import MemoryStore, MemoryTransaction

FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
KINDS = ("text", "number", "boolean")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event a subscription's handler kept failing on."""

    id: int
    subscription: str
    position: int
    event_id: uuid.UUID
    stream_id: str
    event_type: str
    attempts: int
    error: str
    traceback: str
    status: str
    parked_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class Range:
    """A range condition for a document query: ``Range(gte=10, lt=20)``."""

    gt: Any = None
    gte: Any = None
    lt: Any = None
    lte: Any = None

    def bounds(self) -> list[tuple[str, Any]]:
        ops = (("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<="))
        return [(op, getattr(self, name)) for name, op in ops if getattr(self, name) is not None]


Where = Mapping[str, Any]


class ReadSideStorage(abc.ABC):
    """The read side's state for one store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    # checkpoints
    @abc.abstractmethod
    async def get_checkpoint(self, name: str) -> int | None: ...
    @abc.abstractmethod
    async def checkpoints(self) -> dict[str, int]:
        """Every checkpoint by name (shadow copies of rebuilds are named ``name@N``)."""

    @abc.abstractmethod
    async def set_checkpoint(self, tx: StoreTransaction, name: str, position: int) -> None: ...
    @abc.abstractmethod
    async def delete_checkpoint(self, tx: StoreTransaction, name: str) -> None: ...

    # leases
    @abc.abstractmethod
    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool: ...
    @abc.abstractmethod
    async def hold_lease(self, tx: StoreTransaction, name: str, owner: str, ttl: float) -> bool:
        """Extend the lease inside `tx`; False if another owner has it (abort the batch)."""

    @abc.abstractmethod
    async def release_lease(self, name: str, owner: str) -> None: ...
    @abc.abstractmethod
    async def lease_owner(self, name: str) -> str | None: ...

    # dead letters
    @abc.abstractmethod
    async def park(
        self,
        tx: StoreTransaction,
        subscription: str,
        event: RecordedEvent,
        attempts: int,
        error: str,
        traceback: str,
    ) -> int: ...
    @abc.abstractmethod
    async def dead_letters(
        self, subscription: str | None, status: str | None
    ) -> list[DeadLetter]: ...
    @abc.abstractmethod
    async def resolve(self, tx: StoreTransaction, letter_id: int, status: str) -> None: ...

    async def dead_letter(self, letter_id: int) -> DeadLetter | None:
        for letter in await self.dead_letters(None, None):
            if letter.id == letter_id:
                return letter
        return None

    # read model generations
    @abc.abstractmethod
    async def generation(self, name: str) -> int | None: ...
    @abc.abstractmethod
    async def set_generation(self, tx: StoreTransaction, name: str, generation: int) -> None: ...

    # documents
    @abc.abstractmethod
    async def create_collection(
        self, tx: StoreTransaction, table: str, indexes: Mapping[str, str]
    ) -> None: ...
    @abc.abstractmethod
    async def drop_collection(self, tx: StoreTransaction, table: str) -> None: ...
    @abc.abstractmethod
    async def point_view(self, tx: StoreTransaction, view: str, table: str) -> None: ...
    @abc.abstractmethod
    async def get_raw_documents(
        self, tx: StoreTransaction | None, table: str, ids: Sequence[str]
    ) -> dict[str, bytes | str]:
        """The documents with these ids, as JSON text."""

    async def get_documents(
        self, tx: StoreTransaction | None, table: str, ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        raw = await self.get_raw_documents(tx, table, ids)
        return {key: _json.loads(value) for key, value in raw.items()}

    @abc.abstractmethod
    async def write_documents(
        self,
        tx: StoreTransaction,
        table: str,
        upserts: Mapping[str, bytes | str],
        deletes: Iterable[str],
    ) -> None:
        """Create or replace documents (given as JSON text) and delete others."""

    @abc.abstractmethod
    async def find(
        self,
        table: str,
        indexes: Mapping[str, str],
        where: Where,
        order_by: Sequence[str],
        limit: int,
        offset: int,
    ) -> list[dict[str, Any]]: ...
    @abc.abstractmethod
    async def count(self, table: str, indexes: Mapping[str, str], where: Where) -> int: ...


def storage_for(store: EventStore) -> ReadSideStorage:
    if isinstance(store, MemoryStore):
        return MemoryStorage(store)
    if store.dialect in ("postgres", "sqlite"):
        return SqlStorage(store)
    raise InvalidInput(f"no read-side storage for the {store.dialect!r} store {store.url}")


# --- SQL ------------------------------------------------------------------------------------


class SqlStorage(ReadSideStorage, SqlDialect):
    def __init__(self, store: EventStore) -> None:
        ReadSideStorage.__init__(self, store)
        SqlDialect.__init__(self, store)

    def doc_table(self, name: str) -> str:
        return f'{self.schema}"{name}"'

    # checkpoints

    async def get_checkpoint(self, name: str) -> int | None:
        rows = await self.store.fetch(
            f"SELECT position FROM {self.t('checkpoints')} WHERE name = {self.p(1)}", name
        )
        return int(rows[0][0]) if rows else None

    async def checkpoints(self) -> dict[str, int]:
        rows = await self.store.fetch(f"SELECT name, position FROM {self.t('checkpoints')}")
        return {str(row[0]): int(row[1]) for row in rows}

    async def set_checkpoint(self, tx: StoreTransaction, name: str, position: int) -> None:
        await tx.execute(
            f"INSERT INTO {self.t('checkpoints')} (name, position, updated_at)"
            f" VALUES ({self.p(1)}, {self.p(2)}, {self.now()})"
            " ON CONFLICT (name) DO UPDATE SET position = excluded.position,"
            " updated_at = excluded.updated_at",
            name,
            position,
        )

    async def delete_checkpoint(self, tx: StoreTransaction, name: str) -> None:
        await tx.execute(f"DELETE FROM {self.t('checkpoints')} WHERE name = {self.p(1)}", name)

    # leases

    def _expiry(self, ttl: float) -> str:
        if self.postgres:
            return f"clock_timestamp() + interval '{float(ttl)} seconds'"
        return str(micros(datetime.now(UTC)) + int(ttl * 1_000_000))

    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        async with self.store.transaction() as tx:
            return await self.hold_lease(tx, name, owner, ttl)

    async def hold_lease(self, tx: StoreTransaction, name: str, owner: str, ttl: float) -> bool:
        now = self.now()
        row = await tx.fetchrow(
            f"INSERT INTO {self.t('leases')} (name, owner, expires_at)"
            f" VALUES ({self.p(1)}, {self.p(2)}, {self._expiry(ttl)})"
            " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
            " expires_at = excluded.expires_at"
            f" WHERE {self.t('leases')}.owner = excluded.owner"
            f" OR {self.t('leases')}.expires_at < {now}"
            " RETURNING owner",
            name,
            owner,
        )
        return row is not None

    async def release_lease(self, name: str, owner: str) -> None:
        async with self.store.transaction() as tx:
            await tx.execute(
                f"DELETE FROM {self.t('leases')} WHERE name = {self.p(1)} AND owner = {self.p(2)}",
                name,
                owner,
            )

    async def lease_owner(self, name: str) -> str | None:
        rows = await self.store.fetch(
            f"SELECT owner FROM {self.t('leases')} WHERE name = {self.p(1)}"
            f" AND expires_at >= {self.now()}",
            name,
        )
        return str(rows[0][0]) if rows else None

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
        columns = (
            "subscription, position, event_id, stream_id, event_type, attempts, error, traceback"
        )
        values = ", ".join(self.p(n) for n in range(1, 9))
        parked = "" if self.postgres else f", {self.now()}"
        row = await tx.fetchrow(
            f"INSERT INTO {self.t('dead_letters')} ({columns}{', parked_at' if parked else ''})"
            f" VALUES ({values}{parked}) RETURNING id",
            subscription,
            event.position,
            self.uuid_param(event.id),
            event.stream_id,
            event.type,
            attempts,
            error,
            traceback,
        )
        assert row is not None
        return int(row[0])

    async def dead_letters(self, subscription: str | None, status: str | None) -> list[DeadLetter]:
        conditions, args = [], []
        if subscription is not None:
            args.append(subscription)
            conditions.append(f"subscription = {self.p(len(args))}")
        if status is not None:
            args.append(status)
            conditions.append(f"status = {self.p(len(args))}")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = await self.store.fetch(
            "SELECT id, subscription, position, event_id, stream_id, event_type, attempts, error,"
            f" traceback, status, parked_at, resolved_at FROM {self.t('dead_letters')}{where}"
            " ORDER BY id",
            *args,
        )
        return [
            DeadLetter(
                int(r[0]),
                r[1],
                int(r[2]),
                self.uuid_value(r[3]),
                r[4],
                r[5],
                int(r[6]),
                r[7],
                r[8],
                r[9],
                self.time_value(r[10]) or EPOCH,
                self.time_value(r[11]),
            )
            for r in rows
        ]

    async def resolve(self, tx: StoreTransaction, letter_id: int, status: str) -> None:
        await tx.execute(
            f"UPDATE {self.t('dead_letters')} SET status = {self.p(1)},"
            f" resolved_at = {self.now()} WHERE id = {self.p(2)}",
            status,
            letter_id,
        )

    # generations

    async def generation(self, name: str) -> int | None:
        rows = await self.store.fetch(
            f"SELECT generation FROM {self.t('read_models')} WHERE name = {self.p(1)}", name
        )
        return int(rows[0][0]) if rows else None

    async def set_generation(self, tx: StoreTransaction, name: str, generation: int) -> None:
        await tx.execute(
            f"INSERT INTO {self.t('read_models')} (name, generation, updated_at)"
            f" VALUES ({self.p(1)}, {self.p(2)}, {self.now()})"
            " ON CONFLICT (name) DO UPDATE SET generation = excluded.generation,"
            " updated_at = excluded.updated_at",
            name,
            generation,
        )

    # documents

    def field(self, name: str, kind: str) -> str:
        if self.postgres:
            path = ", ".join(f"'{part}'" for part in name.split("."))
            text = f"(doc #>> ARRAY[{path}])"
            if kind == "number":
                return f"({text}::numeric)"
            if kind == "boolean":
                return f"({text}::boolean)"
            return f'({text} COLLATE "C")'
        if kind == "number":
            # Decimals arrive as JSON strings ("28.00"); compare them as numbers.
            return f"CAST(json_extract(doc, '$.{name}') AS REAL)"
        return f"json_extract(doc, '$.{name}')"

    async def create_collection(
        self, tx: StoreTransaction, table: str, indexes: Mapping[str, str]
    ) -> None:
        doc_type = "jsonb" if self.postgres else "TEXT"
        key = 'text COLLATE "C"' if self.postgres else "TEXT"
        await tx.execute(
            f"CREATE TABLE IF NOT EXISTS {self.doc_table(table)}"
            f" (id {key} PRIMARY KEY, doc {doc_type} NOT NULL)"
        )
        for number, (name, kind) in enumerate(sorted(indexes.items())):
            index = f'"{table}__i{number}"'
            await tx.execute(
                f"CREATE INDEX IF NOT EXISTS {index} ON {self.doc_table(table)}"
                f" (({self.field(name, kind)}))"
            )

    async def drop_collection(self, tx: StoreTransaction, table: str) -> None:
        cascade = " CASCADE" if self.postgres else ""  # its view goes too; point_view remakes it
        await tx.execute(f"DROP TABLE IF EXISTS {self.doc_table(table)}{cascade}")

    async def point_view(self, tx: StoreTransaction, view: str, table: str) -> None:
        await tx.execute(f"DROP VIEW IF EXISTS {self.doc_table(view)}")
        await tx.execute(
            f"CREATE VIEW {self.doc_table(view)} AS SELECT * FROM {self.doc_table(table)}"
        )

    async def get_raw_documents(
        self, tx: StoreTransaction | None, table: str, ids: Sequence[str]
    ) -> dict[str, bytes | str]:
        found: dict[str, bytes | str] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            if self.postgres:
                sql = (
                    f"SELECT id, doc::text FROM {self.doc_table(table)} WHERE id = ANY($1::text[])"
                )
                args: list[Any] = [chunk]
            else:
                marks = ", ".join("?" * len(chunk))
                sql = f"SELECT id, doc FROM {self.doc_table(table)} WHERE id IN ({marks})"
                args = chunk
            rows = await (tx.fetch(sql, *args) if tx is not None else self.store.fetch(sql, *args))
            for row in rows:
                found[row[0]] = row[1]
        return found

    async def write_documents(
        self,
        tx: StoreTransaction,
        table: str,
        upserts: Mapping[str, bytes | str],
        deletes: Iterable[str],
    ) -> None:
        removed = list(deletes)
        if removed:
            if self.postgres:
                await tx.execute(
                    f"DELETE FROM {self.doc_table(table)} WHERE id = ANY($1::text[])", removed
                )
            else:
                await tx.executemany(
                    f"DELETE FROM {self.doc_table(table)} WHERE id = ?", [(i,) for i in removed]
                )
        if not upserts:
            return
        if self.postgres:
            # One statement for the whole batch: ids and documents as two arrays.
            await tx.execute(
                f"INSERT INTO {self.doc_table(table)} (id, doc)"
                " SELECT * FROM unnest($1::text[], $2::text[]::jsonb[])"
                " ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                list(upserts),
                [_text(doc) for doc in upserts.values()],
            )
        else:
            await tx.executemany(
                f"INSERT INTO {self.doc_table(table)} (id, doc) VALUES (?, ?)"
                " ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                [(key, _text(doc)) for key, doc in upserts.items()],
            )

    def _where(self, indexes: Mapping[str, str], where: Where, args: list[Any]) -> str:
        conditions: list[str] = []
        for name, condition in where.items():
            kind = _indexed(indexes, name)
            expression = self.field(name, kind)
            if isinstance(condition, Range):
                for op, value in condition.bounds():
                    args.append(_param(value, kind, self.postgres))
                    conditions.append(f"{expression} {op} {self.p(len(args))}")
            elif isinstance(condition, list | tuple | set | frozenset):
                if not condition:
                    conditions.append("1 = 0")
                    continue
                marks = []
                for value in condition:
                    args.append(_param(value, kind, self.postgres))
                    marks.append(self.p(len(args)))
                conditions.append(f"{expression} IN ({', '.join(marks)})")
            elif condition is None:
                conditions.append(f"{expression} IS NULL")
            else:
                args.append(_param(condition, kind, self.postgres))
                conditions.append(f"{expression} = {self.p(len(args))}")
        return f" WHERE {' AND '.join(conditions)}" if conditions else ""

    async def find(
        self,
        table: str,
        indexes: Mapping[str, str],
        where: Where,
        order_by: Sequence[str],
        limit: int,
        offset: int,
    ) -> list[dict[str, Any]]:
        args: list[Any] = []
        sql = f"SELECT doc FROM {self.doc_table(table)}{self._where(indexes, where, args)}"
        order = []
        for item in order_by:
            name = item.lstrip("-")
            direction = "DESC" if item.startswith("-") else "ASC"
            order.append(f"{self.field(name, _indexed(indexes, name))} {direction} NULLS LAST")
        order.append("id ASC")
        args += [limit, offset]
        sql += (
            f" ORDER BY {', '.join(order)} LIMIT {self.p(len(args) - 1)} OFFSET {self.p(len(args))}"
        )
        rows = await self.store.fetch(sql, *args)
        return [row[0] if isinstance(row[0], dict) else _json.loads(row[0]) for row in rows]

    async def count(self, table: str, indexes: Mapping[str, str], where: Where) -> int:
        args: list[Any] = []
        sql = f"SELECT count(*) FROM {self.doc_table(table)}{self._where(indexes, where, args)}"
        rows = await self.store.fetch(sql, *args)
        return int(rows[0][0])


def _indexed(indexes: Mapping[str, str], name: str) -> str:
    kind = indexes.get(name)
    if kind is None:
        raise InvalidInput(
            f"field {name!r} is not an indexed field of this read model; queries use declared"
            f" indexes ({', '.join(sorted(indexes)) or 'none declared'})"
        )
    return kind


def _param(value: Any, kind: str, postgres: bool) -> Any:
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise InvalidInput(f"a number field is compared with numbers, not {value!r}")
        if isinstance(value, Decimal) and not postgres:
            return float(value)  # SQLite compares the field as REAL
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidInput(f"a boolean field is compared with True or False, not {value!r}")
        return value if postgres else int(value)
    if not isinstance(value, str):
        raise InvalidInput(f"a text field is compared with strings, not {value!r}")
    return value


def _check_condition(condition: Any, kind: str) -> None:
    """Refuse values of the wrong kind, as the SQL stores do when binding them."""
    if isinstance(condition, Range):
        values: Iterable[Any] = [bound for _, bound in condition.bounds()]
    elif isinstance(condition, list | tuple | set | frozenset):
        values = condition
    else:
        values = [] if condition is None else [condition]
    for value in values:
        _param(value, kind, False)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _discard(mapping: dict[str, Any], key: str) -> None:
    mapping.pop(key, None)


# --- memory -----------------------------------------------------------------------------------


class MemoryStorage(ReadSideStorage):
    def __init__(self, store: MemoryStore) -> None:
        super().__init__(store)
        self.log = store.log

    @staticmethod
    def _tx(tx: StoreTransaction) -> MemoryTransaction:
        assert isinstance(tx, MemoryTransaction)
        return tx

    async def get_checkpoint(self, name: str) -> int | None:
        with self.log.lock:
            return self.log.checkpoints.get(name)

    async def checkpoints(self) -> dict[str, int]:
        with self.log.lock:
            return dict(self.log.checkpoints)

    async def set_checkpoint(self, tx: StoreTransaction, name: str, position: int) -> None:
        self._tx(tx).defer(lambda: self.log.checkpoints.__setitem__(name, position))

    async def delete_checkpoint(self, tx: StoreTransaction, name: str) -> None:
        self._tx(tx).defer(lambda: _discard(self.log.checkpoints, name))

    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        with self.log.lock:
            return self._take(name, owner, ttl)

    def _take(self, name: str, owner: str, ttl: float) -> bool:
        holder = self.log.leases.get(name)
        now = time.monotonic()
        if holder is not None and holder[0] != owner and holder[1] >= now:
            return False
        self.log.leases[name] = (owner, now + ttl)
        return True

    async def hold_lease(self, tx: StoreTransaction, name: str, owner: str, ttl: float) -> bool:
        return await self.acquire_lease(name, owner, ttl)

    async def release_lease(self, name: str, owner: str) -> None:
        with self.log.lock:
            if self.log.leases.get(name, ("", 0.0))[0] == owner:
                del self.log.leases[name]

    async def lease_owner(self, name: str) -> str | None:
        with self.log.lock:
            holder = self.log.leases.get(name)
            return holder[0] if holder and holder[1] >= time.monotonic() else None

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
        self._tx(tx).defer(lambda: self.log.dead_letters.append({"letter": letter}))
        return letter_id

    async def dead_letters(self, subscription: str | None, status: str | None) -> list[DeadLetter]:
        with self.log.lock:
            letters = [entry["letter"] for entry in self.log.dead_letters]
        return [
            letter
            for letter in letters
            if (subscription is None or letter.subscription == subscription)
            and (status is None or letter.status == status)
        ]

    async def resolve(self, tx: StoreTransaction, letter_id: int, status: str) -> None:
        def change() -> None:
            for entry in self.log.dead_letters:
                letter = entry["letter"]
                if letter.id == letter_id:
                    entry["letter"] = dataclasses.replace(
                        letter, status=status, resolved_at=datetime.now(UTC)
                    )

        self._tx(tx).defer(change)

    async def generation(self, name: str) -> int | None:
        with self.log.lock:
            return self.log.read_models.get(name)

    async def set_generation(self, tx: StoreTransaction, name: str, generation: int) -> None:
        self._tx(tx).defer(lambda: self.log.read_models.__setitem__(name, generation))

    async def create_collection(
        self, tx: StoreTransaction, table: str, indexes: Mapping[str, str]
    ) -> None:
        with self.log.lock:
            self.log.documents.setdefault(table, {})

    async def drop_collection(self, tx: StoreTransaction, table: str) -> None:
        self._tx(tx).defer(lambda: _discard(self.log.documents, table))

    async def point_view(self, tx: StoreTransaction, view: str, table: str) -> None:
        self._tx(tx).defer(lambda: self.log.views.__setitem__(view, table))

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
        encoded = {key: _text(raw).encode() for key, raw in upserts.items()}
        removed = list(deletes)

        def change() -> None:
            docs = self.log.documents.setdefault(table, {})
            for key in removed:
                docs.pop(key, None)
            docs.update(encoded)

        self._tx(tx).defer(change)

    def _matching(
        self, table: str, indexes: Mapping[str, str], where: Where
    ) -> list[tuple[str, dict[str, Any]]]:
        kinds = {name: _indexed(indexes, name) for name in where}
        for name, condition in where.items():
            _check_condition(condition, kinds[name])
        with self.log.lock:
            values = list(self._table(table).items())
        docs = []
        for key, value in values:
            doc = _json.loads(value)
            if all(
                _matches(_value(doc, name, kinds[name]), condition, kinds[name])
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
            kind = _indexed(indexes, name)
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
    """A value as the SQL stores compare it: numbers as numbers (also from strings)."""
    if value is None:
        return None
    if kind == "number":
        try:
            return Decimal(str(value))
        except ArithmeticError:
            return None
    if kind == "boolean":
        return bool(value)
    return str(value)


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
        return all(checks[op](value, _normal(bound, kind)) for op, bound in condition.bounds())
    if isinstance(condition, list | tuple | set | frozenset):
        return value in {_normal(option, kind) for option in condition}
    if condition is None:
        return value is None
    return bool(value == _normal(condition, kind))
