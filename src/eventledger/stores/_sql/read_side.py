"""The read side in SQL: checkpoints, leases, dead letters, generations and documents in
tables beside the events, so that a batch's writes and its checkpoint commit together."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eventledger import _json
from eventledger.records import RecordedEvent
from eventledger.storage import EPOCH, DeadLetter, LeaseInfo, Range, Where
from eventledger.stores._sql.dialect import Dialect
from eventledger.stores.base import EventStore, StoreTransaction, library_sql

__all__ = ["SqlReadSide"]

_LETTER_COLUMNS = (
    "id, subscription, position, event_id, stream_id, event_type, attempts, error,"
    " traceback, status, parked_at, resolved_at"
)
CHUNK = 500


class SqlReadSide:
    """:class:`~eventledger.storage.ReadSideStorage` in the store's own database."""

    def __init__(self, store: EventStore, dialect: Dialect) -> None:
        self.store = store
        self.sql = dialect

    async def _fetch(
        self, tx: StoreTransaction | None, sql: str, *args: Any
    ) -> list[Sequence[Any]]:
        return await (tx.fetch(sql, *args) if tx is not None else self.store.fetch(sql, *args))

    # checkpoints

    async def get_checkpoint(self, name: str) -> int | None:
        d = self.sql
        rows = await self.store.fetch(
            f"SELECT position FROM {d.t('checkpoints')} WHERE name = {d.p(1)}", name
        )
        return int(rows[0][0]) if rows else None

    async def checkpoints(self) -> dict[str, int]:
        rows = await self.store.fetch(f"SELECT name, position FROM {self.sql.t('checkpoints')}")
        return {str(row[0]): int(row[1]) for row in rows}

    @library_sql
    async def set_checkpoint(self, tx: StoreTransaction, name: str, position: int) -> None:
        d = self.sql
        await tx.execute(
            f"INSERT INTO {d.t('checkpoints')} (name, position, updated_at)"
            f" VALUES ({d.p(1)}, {d.p(2)}, {d.now()})"
            " ON CONFLICT (name) DO UPDATE SET position = excluded.position,"
            " updated_at = excluded.updated_at",
            name,
            position,
        )

    @library_sql
    async def delete_checkpoint(self, tx: StoreTransaction, name: str) -> None:
        d = self.sql
        await tx.execute(f"DELETE FROM {d.t('checkpoints')} WHERE name = {d.p(1)}", name)

    # leases

    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        async with self.store.transaction() as tx:
            return await self.hold_lease(tx, name, owner, ttl)

    @library_sql
    async def hold_lease(self, tx: StoreTransaction, name: str, owner: str, ttl: float) -> bool:
        d = self.sql
        leases = d.t("leases")
        row = await tx.fetchrow(
            f"INSERT INTO {leases} (name, owner, expires_at)"
            f" VALUES ({d.p(1)}, {d.p(2)}, {d.expiry(ttl)})"
            " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
            " expires_at = excluded.expires_at"
            f" WHERE {leases}.owner = excluded.owner OR {leases}.expires_at < {d.now()}"
            " RETURNING owner",
            name,
            owner,
        )
        return row is not None

    async def release_lease(self, name: str, owner: str) -> None:
        d = self.sql
        async with self.store.transaction() as tx:
            await tx.execute(
                f"DELETE FROM {d.t('leases')} WHERE name = {d.p(1)} AND owner = {d.p(2)}",
                name,
                owner,
            )

    async def lease(self, name: str) -> LeaseInfo | None:
        d = self.sql
        rows = await self.store.fetch(
            f"SELECT name, owner, expires_at FROM {d.t('leases')} WHERE name = {d.p(1)}"
            f" AND expires_at >= {d.now()}",
            name,
        )
        if not rows:
            return None
        return LeaseInfo(rows[0][0], rows[0][1], d.time_value(rows[0][2]) or EPOCH)

    # dead letters

    @library_sql
    async def park(
        self,
        tx: StoreTransaction,
        subscription: str,
        event: RecordedEvent,
        attempts: int,
        error: str,
        traceback: str,
    ) -> int:
        d = self.sql
        row = await tx.fetchrow(
            f"INSERT INTO {d.t('dead_letters')} (subscription, position, event_id, stream_id,"
            " event_type, attempts, error, traceback, parked_at)"
            f" VALUES ({d.marks(8)}, {d.now()}) RETURNING id",
            subscription,
            event.position,
            d.uuid_param(event.id),
            event.stream_id,
            event.type,
            attempts,
            error,
            traceback,
        )
        assert row is not None
        return int(row[0])

    def _letter(self, r: Sequence[Any]) -> DeadLetter:
        d = self.sql
        return DeadLetter(
            int(r[0]),
            r[1],
            int(r[2]),
            d.uuid_value(r[3]),
            r[4],
            r[5],
            int(r[6]),
            r[7],
            r[8],
            r[9],
            d.time_value(r[10]) or EPOCH,
            d.time_value(r[11]),
        )

    async def dead_letters(
        self,
        subscription: str | None,
        status: str | None,
        *,
        after: int = 0,
        limit: int | None = None,
    ) -> list[DeadLetter]:
        d = self.sql
        args: list[Any] = [after]
        conditions = [f"id > {d.p(1)}"]
        if subscription is not None:
            args.append(subscription)
            conditions.append(f"subscription = {d.p(len(args))}")
        if status is not None:
            args.append(status)
            conditions.append(f"status = {d.p(len(args))}")
        page = ""
        if limit is not None:
            args.append(limit)
            page = f" LIMIT {d.p(len(args))}"
        rows = await self.store.fetch(
            f"SELECT {_LETTER_COLUMNS} FROM {d.t('dead_letters')}"
            f" WHERE {' AND '.join(conditions)} ORDER BY id{page}",
            *args,
        )
        return [self._letter(r) for r in rows]

    async def dead_letter(self, letter_id: int) -> DeadLetter | None:
        d = self.sql
        rows = await self.store.fetch(
            f"SELECT {_LETTER_COLUMNS} FROM {d.t('dead_letters')} WHERE id = {d.p(1)}", letter_id
        )
        return self._letter(rows[0]) if rows else None

    @library_sql
    async def resolve(self, tx: StoreTransaction, letter_id: int, status: str) -> None:
        d = self.sql
        await tx.execute(
            f"UPDATE {d.t('dead_letters')} SET status = {d.p(1)}, resolved_at = {d.now()}"
            f" WHERE id = {d.p(2)}",
            status,
            letter_id,
        )

    # generations

    async def generation(self, name: str) -> int | None:
        d = self.sql
        rows = await self.store.fetch(
            f"SELECT generation FROM {d.t('read_models')} WHERE name = {d.p(1)}", name
        )
        return int(rows[0][0]) if rows else None

    @library_sql
    async def set_generation(self, tx: StoreTransaction, name: str, generation: int) -> None:
        d = self.sql
        await tx.execute(
            f"INSERT INTO {d.t('read_models')} (name, generation, updated_at)"
            f" VALUES ({d.p(1)}, {d.p(2)}, {d.now()})"
            " ON CONFLICT (name) DO UPDATE SET generation = excluded.generation,"
            " updated_at = excluded.updated_at",
            name,
            generation,
        )

    # documents

    async def create_collection(
        self, tx: StoreTransaction, table: str, indexes: Mapping[str, str]
    ) -> None:
        d = self.sql
        await tx.execute(
            f"CREATE TABLE IF NOT EXISTS {d.object_name(table)}"
            f" (id {d.doc_key_type} PRIMARY KEY, doc {d.doc_value_type} NOT NULL)"
        )
        for number, (name, kind) in enumerate(sorted(indexes.items())):
            # Indexes of the first form (named __iN) could fail on a value of the wrong
            # kind; the expressions of __xN cannot. Older ones go.
            await tx.execute(f"DROP INDEX IF EXISTS {d.object_name(f'{table}__i{number}')}")
            index = f'"{table}__x{number}"'
            await tx.execute(
                f"CREATE INDEX IF NOT EXISTS {index} ON {d.object_name(table)}"
                f" (({d.field(name, kind)}))"
            )

    async def drop_collection(self, tx: StoreTransaction, table: str) -> None:
        # Its view goes too (where the backend needs CASCADE); point_view remakes it.
        await tx.execute(f"DROP TABLE IF EXISTS {self.sql.object_name(table)}{self.sql.cascade}")

    async def point_view(self, tx: StoreTransaction, view: str, table: str) -> None:
        d = self.sql
        await tx.execute(f"DROP VIEW IF EXISTS {d.object_name(view)}")
        await tx.execute(
            f"CREATE VIEW {d.object_name(view)} AS SELECT * FROM {d.object_name(table)}"
        )

    async def get_raw_documents(
        self, tx: StoreTransaction | None, table: str, ids: Sequence[str]
    ) -> dict[str, bytes | str]:
        d = self.sql
        found: dict[str, bytes | str] = {}
        for start in range(0, len(ids), CHUNK):
            args: list[Any] = []
            condition = d.any_of("id", ids[start : start + CHUNK], args)
            rows = await self._fetch(
                tx, f"SELECT id, {d.doc_text} FROM {d.object_name(table)} WHERE {condition}", *args
            )
            for row in rows:
                found[row[0]] = row[1]
        return found

    @library_sql
    async def write_documents(
        self,
        tx: StoreTransaction,
        table: str,
        upserts: Mapping[str, bytes | str],
        deletes: Iterable[str],
    ) -> None:
        d = self.sql
        removed = list(deletes)
        for start in range(0, len(removed), CHUNK):
            args: list[Any] = []
            condition = d.any_of("id", removed[start : start + CHUNK], args)
            await tx.execute(f"DELETE FROM {d.object_name(table)} WHERE {condition}", *args)
        if upserts:
            await self._upsert_documents(tx, table, upserts)

    async def _upsert_documents(
        self, tx: StoreTransaction, table: str, upserts: Mapping[str, bytes | str]
    ) -> None:
        d = self.sql
        await tx.executemany(
            f"INSERT INTO {d.object_name(table)} (id, doc) VALUES ({d.marks(2)})"
            " ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            [(key, _text(doc)) for key, doc in upserts.items()],
        )

    def _where(self, indexes: Mapping[str, str], where: Where, args: list[Any]) -> str:
        d = self.sql
        conditions: list[str] = []
        for name, condition in where.items():
            kind = indexes[name]
            expression = d.field(name, kind)
            if isinstance(condition, Range):
                for op, value in condition.bounds():
                    args.append(d.field_param(value, kind))
                    conditions.append(f"{expression} {op} {d.p(len(args))}")
            elif isinstance(condition, list | tuple | set | frozenset):
                if not condition:
                    conditions.append("1 = 0")
                    continue
                marks = []
                for value in condition:
                    args.append(d.field_param(value, kind))
                    marks.append(d.p(len(args)))
                conditions.append(f"{expression} IN ({', '.join(marks)})")
            elif condition is None:
                conditions.append(f"{expression} IS NULL")
            else:
                args.append(d.field_param(condition, kind))
                conditions.append(f"{expression} = {d.p(len(args))}")
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
        d = self.sql
        args: list[Any] = []
        sql = f"SELECT {d.doc_text} FROM {d.object_name(table)}{self._where(indexes, where, args)}"
        order = []
        for item in order_by:
            name = item.lstrip("-")
            direction = "DESC" if item.startswith("-") else "ASC"
            order.append(f"{d.field(name, indexes[name])} {direction} NULLS LAST")
        order.append("id ASC")
        args += [limit, offset]
        sql += f" ORDER BY {', '.join(order)} LIMIT {d.p(len(args) - 1)} OFFSET {d.p(len(args))}"
        rows = await self.store.fetch(sql, *args)
        return [_json.loads(row[0]) for row in rows]

    async def count(self, table: str, indexes: Mapping[str, str], where: Where) -> int:
        args: list[Any] = []
        where_sql = self._where(indexes, where, args)
        rows = await self.store.fetch(
            f"SELECT count(*) FROM {self.sql.object_name(table)}{where_sql}", *args
        )
        return int(rows[0][0])


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
