"""Where process managers keep their instances and deadlines, per backend.

Instances and deadlines change in the transaction that moves the process
manager's checkpoint, so a crash never leaves state that disagrees with the
position it was computed at.
"""

from __future__ import annotations

import abc
import dataclasses
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventledger._sql import EPOCH, SqlDialect
from eventledger.records import JSONObject
from eventledger.stores.base import EventStore, StoreTransaction
from eventledger.stores.memory import MemoryStore, MemoryTransaction


@dataclass(slots=True)
class InstanceRow:
    process: str
    instance_id: str
    status: str
    state: JSONObject
    bookkeeping: JSONObject
    started_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TimeoutRow:
    id: uuid.UUID
    process: str
    instance_id: str
    name: str
    due_at: datetime
    metadata: JSONObject


class ProcessStorage(abc.ABC):
    @abc.abstractmethod
    async def instances(self, process: str, ids: Sequence[str]) -> dict[str, InstanceRow]: ...

    @abc.abstractmethod
    async def list_instances(
        self, process: str, status: str | None, limit: int, offset: int
    ) -> list[InstanceRow]: ...

    @abc.abstractmethod
    async def save(
        self,
        tx: StoreTransaction,
        rows: Iterable[InstanceRow],
        scheduled: Iterable[TimeoutRow],
        cancelled: Iterable[uuid.UUID],
    ) -> None:
        """Upsert instances, add deadlines and remove others, in `tx`."""

    @abc.abstractmethod
    async def due(self, process: str, now: datetime, limit: int) -> list[TimeoutRow]:
        """Deadlines of `process` due at `now` and not fired yet, earliest first."""

    @abc.abstractmethod
    async def mark_fired(self, timeout_id: uuid.UUID) -> None: ...


def process_storage_for(store: EventStore) -> ProcessStorage:
    if isinstance(store, MemoryStore):
        return MemoryProcessStorage(store)
    return SqlProcessStorage(store)


_INSTANCE_COLUMNS = "process, instance_id, status, state, bookkeeping, started_at, updated_at"


class SqlProcessStorage(ProcessStorage, SqlDialect):
    def _instance(self, row: Any) -> InstanceRow:
        return InstanceRow(
            row[0],
            row[1],
            row[2],
            self.json_value(row[3]),
            self.json_value(row[4]),
            self.time_value(row[5]) or EPOCH,
            self.time_value(row[6]) or EPOCH,
        )

    async def instances(self, process: str, ids: Sequence[str]) -> dict[str, InstanceRow]:
        found: dict[str, InstanceRow] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            args: list[Any]
            if self.postgres:
                condition, args = "instance_id = ANY($2::text[])", [chunk]
            else:
                condition, args = f"instance_id IN ({', '.join('?' * len(chunk))})", list(chunk)
            rows = await self.store.fetch(
                f"SELECT {_INSTANCE_COLUMNS} FROM {self.t('process_instances')}"
                f" WHERE process = {self.p(1)} AND {condition}",
                process,
                *args,
            )
            for row in rows:
                found[row[1]] = self._instance(row)
        return found

    async def list_instances(
        self, process: str, status: str | None, limit: int, offset: int
    ) -> list[InstanceRow]:
        args: list[Any] = [process]
        condition = ""
        if status is not None:
            args.append(status)
            condition = f" AND status = {self.p(2)}"
        args += [limit, offset]
        rows = await self.store.fetch(
            f"SELECT {_INSTANCE_COLUMNS} FROM {self.t('process_instances')}"
            f" WHERE process = {self.p(1)}{condition} ORDER BY updated_at DESC, instance_id"
            f" LIMIT {self.p(len(args) - 1)} OFFSET {self.p(len(args))}",
            *args,
        )
        return [self._instance(row) for row in rows]

    async def save(
        self,
        tx: StoreTransaction,
        rows: Iterable[InstanceRow],
        scheduled: Iterable[TimeoutRow],
        cancelled: Iterable[uuid.UUID],
    ) -> None:
        instances = [
            (
                r.process,
                r.instance_id,
                r.status,
                self.json_param(r.state),
                self.json_param(r.bookkeeping),
                self.time_param(r.started_at),
                self.time_param(r.updated_at),
            )
            for r in rows
        ]
        if instances:
            await tx.executemany(
                f"INSERT INTO {self.t('process_instances')} ({_INSTANCE_COLUMNS})"
                f" VALUES ({self.marks(7)}) ON CONFLICT (process, instance_id) DO UPDATE SET"
                " status = excluded.status, state = excluded.state,"
                " bookkeeping = excluded.bookkeeping, updated_at = excluded.updated_at",
                instances,
            )
        removed = [(self.uuid_param(i),) for i in cancelled]
        if removed:
            await tx.executemany(
                f"DELETE FROM {self.t('process_timeouts')} WHERE id = {self.p(1)}", removed
            )
        added = [
            (
                self.uuid_param(t.id),
                t.process,
                t.instance_id,
                t.name,
                self.time_param(t.due_at),
                self.json_param(t.metadata),
            )
            for t in scheduled
        ]
        if added:
            await tx.executemany(
                f"INSERT INTO {self.t('process_timeouts')}"
                " (id, process, instance_id, name, due_at, metadata)"
                f" VALUES ({self.marks(6)}) ON CONFLICT (id) DO NOTHING",
                added,
            )

    async def due(self, process: str, now: datetime, limit: int) -> list[TimeoutRow]:
        not_fired = "NOT fired" if self.postgres else "fired = 0"
        rows = await self.store.fetch(
            "SELECT id, process, instance_id, name, due_at, metadata"
            f" FROM {self.t('process_timeouts')}"
            f" WHERE process = {self.p(1)} AND {not_fired} AND due_at <= {self.p(2)}"
            f" ORDER BY due_at LIMIT {self.p(3)}",
            process,
            self.time_param(now),
            limit,
        )
        return [
            TimeoutRow(
                self.uuid_value(r[0]),
                r[1],
                r[2],
                r[3],
                self.time_value(r[4]) or EPOCH,
                self.json_value(r[5]),
            )
            for r in rows
        ]

    async def mark_fired(self, timeout_id: uuid.UUID) -> None:
        fired = "true" if self.postgres else "1"
        async with self.store.transaction() as tx:
            await tx.execute(
                f"UPDATE {self.t('process_timeouts')} SET fired = {fired} WHERE id = {self.p(1)}",
                self.uuid_param(timeout_id),
            )


class MemoryProcessStorage(ProcessStorage):
    def __init__(self, store: MemoryStore) -> None:
        self.log = store.log

    async def instances(self, process: str, ids: Sequence[str]) -> dict[str, InstanceRow]:
        with self.log.lock:
            found = {i: self.log.process_instances.get((process, i)) for i in ids}
        return {i: dataclasses.replace(row) for i, row in found.items() if row is not None}

    async def list_instances(
        self, process: str, status: str | None, limit: int, offset: int
    ) -> list[InstanceRow]:
        with self.log.lock:
            rows: list[InstanceRow] = [
                r
                for (name, _), r in self.log.process_instances.items()
                if name == process and (status is None or r.status == status)
            ]
        rows.sort(key=lambda r: (-r.updated_at.timestamp(), r.instance_id))
        return [dataclasses.replace(r) for r in rows[offset : offset + limit]]

    async def save(
        self,
        tx: StoreTransaction,
        rows: Iterable[InstanceRow],
        scheduled: Iterable[TimeoutRow],
        cancelled: Iterable[uuid.UUID],
    ) -> None:
        assert isinstance(tx, MemoryTransaction)
        instances = [dataclasses.replace(r) for r in rows]
        added, removed = list(scheduled), list(cancelled)

        def change() -> None:
            for row in instances:
                self.log.process_instances[(row.process, row.instance_id)] = row
            for timeout_id in removed:
                self.log.process_timeouts.pop(timeout_id, None)
            for timeout in added:
                self.log.process_timeouts.setdefault(timeout.id, [timeout, False])

        tx.defer(change)

    async def due(self, process: str, now: datetime, limit: int) -> list[TimeoutRow]:
        with self.log.lock:
            entries = list(self.log.process_timeouts.values())
        due = [t for t, fired in entries if t.process == process and not fired and t.due_at <= now]
        return sorted(due, key=lambda t: t.due_at)[:limit]

    async def mark_fired(self, timeout_id: uuid.UUID) -> None:
        with self.log.lock:
            entry = self.log.process_timeouts.get(timeout_id)
            if entry is not None:
                entry[1] = True


def utc_now() -> datetime:
    return datetime.now(UTC)
