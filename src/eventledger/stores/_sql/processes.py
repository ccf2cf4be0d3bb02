"""Process-manager instances and deadlines in SQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from eventledger.storage import EPOCH, InstanceRow, TimeoutRow
from eventledger.stores._sql.dialect import Dialect
from eventledger.stores.base import EventStore, StoreTransaction, library_sql

__all__ = ["SqlProcessStorage"]

_INSTANCE_COLUMNS = "process, instance_id, status, state, bookkeeping, started_at, updated_at"
CHUNK = 500


class SqlProcessStorage:
    """:class:`~eventledger.storage.ProcessStorage` in the store's own database."""

    def __init__(self, store: EventStore, dialect: Dialect) -> None:
        self.store = store
        self.sql = dialect

    def _instance(self, row: Sequence[Any]) -> InstanceRow:
        d = self.sql
        return InstanceRow(
            row[0],
            row[1],
            row[2],
            d.json_value(row[3]),
            d.json_value(row[4]),
            d.time_value(row[5]) or EPOCH,
            d.time_value(row[6]) or EPOCH,
        )

    async def instances(self, process: str, ids: Sequence[str]) -> dict[str, InstanceRow]:
        d = self.sql
        found: dict[str, InstanceRow] = {}
        for start in range(0, len(ids), CHUNK):
            args: list[Any] = [process]
            condition = d.any_of("instance_id", ids[start : start + CHUNK], args)
            rows = await self.store.fetch(
                f"SELECT {_INSTANCE_COLUMNS} FROM {d.t('process_instances')}"
                f" WHERE process = {d.p(1)} AND {condition}",
                *args,
            )
            for row in rows:
                found[row[1]] = self._instance(row)
        return found

    async def list_instances(
        self,
        process: str,
        status: str | None,
        limit: int,
        offset: int,
        *,
        after: tuple[datetime, str] | None = None,
    ) -> list[InstanceRow]:
        d = self.sql
        args: list[Any] = [process]
        condition = ""
        if status is not None:
            args.append(status)
            condition = f" AND status = {d.p(len(args))}"
        if after is not None:
            moment = d.time_param(after[0])
            args += [moment, moment, after[1]]
            n = len(args)
            condition += (
                f" AND (updated_at < {d.p(n - 2)}"
                f" OR (updated_at = {d.p(n - 1)} AND instance_id > {d.p(n)}))"
            )
        args += [limit, offset]
        rows = await self.store.fetch(
            f"SELECT {_INSTANCE_COLUMNS} FROM {d.t('process_instances')}"
            f" WHERE process = {d.p(1)}{condition} ORDER BY updated_at DESC, instance_id"
            f" LIMIT {d.p(len(args) - 1)} OFFSET {d.p(len(args))}",
            *args,
        )
        return [self._instance(row) for row in rows]

    async def count_instances(self, process: str) -> dict[str, int]:
        d = self.sql
        rows = await self.store.fetch(
            f"SELECT status, count(*) FROM {d.t('process_instances')}"
            f" WHERE process = {d.p(1)} GROUP BY status",
            process,
        )
        return {str(row[0]): int(row[1]) for row in rows}

    @library_sql
    async def save(
        self,
        tx: StoreTransaction,
        rows: Iterable[InstanceRow],
        scheduled: Iterable[TimeoutRow],
        cancelled: Iterable[uuid.UUID],
    ) -> None:
        d = self.sql
        instances = [
            (
                r.process,
                r.instance_id,
                r.status,
                d.json_param(r.state),
                d.json_param(r.bookkeeping),
                d.time_param(r.started_at),
                d.time_param(r.updated_at),
            )
            for r in rows
        ]
        if instances:
            await tx.executemany(
                f"INSERT INTO {d.t('process_instances')} ({_INSTANCE_COLUMNS})"
                f" VALUES ({d.marks(7)}) ON CONFLICT (process, instance_id) DO UPDATE SET"
                " status = excluded.status, state = excluded.state,"
                " bookkeeping = excluded.bookkeeping, updated_at = excluded.updated_at",
                instances,
            )
        removed = [(d.uuid_param(i),) for i in cancelled]
        if removed:
            await tx.executemany(
                f"DELETE FROM {d.t('process_timeouts')} WHERE id = {d.p(1)}", removed
            )
        added = [
            (
                d.uuid_param(t.id),
                t.process,
                t.instance_id,
                t.name,
                d.time_param(t.due_at),
                d.json_param(t.metadata),
            )
            for t in scheduled
        ]
        if added:
            await tx.executemany(
                f"INSERT INTO {d.t('process_timeouts')}"
                " (id, process, instance_id, name, due_at, metadata)"
                f" VALUES ({d.marks(6)}) ON CONFLICT (id) DO NOTHING",
                added,
            )

    async def due(self, process: str, now: datetime, limit: int) -> list[TimeoutRow]:
        d = self.sql
        rows = await self.store.fetch(
            "SELECT id, process, instance_id, name, due_at, metadata"
            f" FROM {d.t('process_timeouts')}"
            f" WHERE process = {d.p(1)} AND fired = {d.boolean(False)} AND due_at <= {d.p(2)}"
            f" ORDER BY due_at LIMIT {d.p(3)}",
            process,
            d.time_param(now),
            limit,
        )
        return [
            TimeoutRow(
                d.uuid_value(r[0]),
                r[1],
                r[2],
                r[3],
                d.time_value(r[4]) or EPOCH,
                d.json_value(r[5]),
            )
            for r in rows
        ]

    async def mark_fired(self, timeout_id: uuid.UUID) -> None:
        d = self.sql
        async with self.store.transaction() as tx:
            await tx.execute(
                f"UPDATE {d.t('process_timeouts')} SET fired = {d.boolean(True)}"
                f" WHERE id = {d.p(1)}",
                d.uuid_param(timeout_id),
            )
