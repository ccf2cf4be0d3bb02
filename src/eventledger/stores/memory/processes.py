"""The memory backend's process-manager storage."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from eventledger.storage import InstanceRow, TimeoutRow
from eventledger.stores.base import StoreTransaction
from eventledger.stores.memory.log import MemoryLog, in_transaction

__all__ = ["MemoryProcessStorage"]


class MemoryProcessStorage:
    """:class:`~eventledger.storage.ProcessStorage` of a memory store."""

    def __init__(self, log: MemoryLog) -> None:
        self.log = log

    async def instances(self, process: str, ids: Sequence[str]) -> dict[str, InstanceRow]:
        with self.log.lock:
            found = {i: self.log.process_instances.get((process, i)) for i in ids}
        return {i: dataclasses.replace(row) for i, row in found.items() if row is not None}

    async def list_instances(
        self,
        process: str,
        status: str | None,
        limit: int,
        offset: int,
        *,
        after: tuple[datetime, str] | None = None,
    ) -> list[InstanceRow]:
        with self.log.lock:
            rows = [
                r
                for (name, _), r in self.log.process_instances.items()
                if name == process and (status is None or r.status == status)
            ]
        if after is not None:
            moment, last = after
            rows = [
                r
                for r in rows
                if r.updated_at < moment or (r.updated_at == moment and r.instance_id > last)
            ]
        rows.sort(key=lambda r: (-r.updated_at.timestamp(), r.instance_id))
        return [dataclasses.replace(r) for r in rows[offset : offset + limit]]

    async def count_instances(self, process: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self.log.lock:
            for (name, _), row in self.log.process_instances.items():
                if name == process:
                    counts[row.status] = counts.get(row.status, 0) + 1
        return counts

    async def save(
        self,
        tx: StoreTransaction,
        rows: Iterable[InstanceRow],
        scheduled: Iterable[TimeoutRow],
        cancelled: Iterable[uuid.UUID],
    ) -> None:
        instances = [dataclasses.replace(r) for r in rows]
        added, removed = list(scheduled), list(cancelled)

        def change() -> None:
            for row in instances:
                self.log.process_instances[(row.process, row.instance_id)] = row
            for timeout_id in removed:
                self.log.process_timeouts.pop(timeout_id, None)
            for timeout in added:
                self.log.process_timeouts.setdefault(timeout.id, (timeout, False))

        in_transaction(tx).defer(change)

    async def due(self, process: str, now: datetime, limit: int) -> list[TimeoutRow]:
        with self.log.lock:
            entries = list(self.log.process_timeouts.values())
        due = [t for t, fired in entries if t.process == process and not fired and t.due_at <= now]
        return sorted(due, key=lambda t: t.due_at)[:limit]

    async def mark_fired(self, timeout_id: uuid.UUID) -> None:
        with self.log.lock:
            entry = self.log.process_timeouts.get(timeout_id)
            if entry is not None:
                self.log.process_timeouts[timeout_id] = (entry[0], True)
